"""Install ``tasktop.pth`` next to the packages.

The ``.pth`` file is the start-up hook behind ``TASKTOP=1 python app.py``: the
interpreter executes its single ``import`` line at start-up.  That line reads one
environment variable and imports nothing else unless it is set.  setuptools has
no declarative way to put a file at the root of site-packages, so ``build_py``
copies it into the build tree (the same trick pytest-cov and coverage use).
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "tasktop.pth"


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        self.copy_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe", PTH),
                       os.path.join(self.build_lib, PTH), preserve_mode=0)

    def get_outputs(self, *args, **kwargs):
        return super().get_outputs(*args, **kwargs) + [os.path.join(self.build_lib, PTH)]


setup(cmdclass={"build_py": build_py_with_pth})
