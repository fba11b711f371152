"""What tasktop tells about a process from /proc alone: its Python from the executable's name or
the files it maps, whether remote debugging is off, and each refusal of ``tasktop attach``."""
from __future__ import annotations

import os

import pytest

from tasktop.client import processes
from tasktop.client.processes import PythonProcess


@pytest.mark.parametrize("exe, maps, expected", [
    ("/usr/bin/python3.12", "", ("CPython", (3, 12))),
    ("/opt/py/bin/python3.13t", "", ("CPython", (3, 13))),
    ("/usr/sbin/uwsgi", "7f00 r-xp /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0\n", ("CPython", (3, 11))),
    ("/usr/bin/python3", "7f00 r-xp /usr/lib/python3.10/lib-dynload/_json.cpython-310-x86_64-linux-gnu.so\n",
     ("CPython", (3, 10))),
    ("/opt/pypy/bin/pypy3.10", "", ("PyPy", None)),
    ("/usr/bin/sleep", "7f00 r-xp /usr/lib/x86_64-linux-gnu/libc.so.6\n", ("", None)),
])
def test_the_python_of_a_process_from_its_executable_and_maps(exe, maps, expected):
    assert processes._version_from(exe, maps) == expected


def test_interpreter_options_stop_at_the_script():
    argv = ["python3.14", "-X", "dev", "-u", "app.py", "-X", "disable-remote-debug"]
    assert processes._interpreter_options(argv) == ["-Xdev", "-u"]
    assert processes._interpreter_options(["python3", "-c", "x", "-E"]) == []


def proc(**fields) -> PythonProcess:
    base = dict(pid=42, uid=os.getuid(), user="me", argv=["python3.12", "app.py"], exe="/usr/bin/python3.12",
                implementation="CPython", version=(3, 12))
    base.update(fields)
    return PythonProcess(**base)


@pytest.mark.parametrize("fields, words", [
    (dict(implementation="", version=None, exe="/usr/sbin/nginx"), "process 42 (nginx) is not a Python process"),
    (dict(implementation="PyPy", version=None), "runs PyPy, not CPython"),
    (dict(version=(3, 8)), "runs Python 3.8; the probe needs 3.9 or newer (threads alone: tasktop dump 42)"),
    (dict(version=(3, 16)), "newer than this tasktop knows (up to 3.15): upgrade tasktop"),
    (dict(version=(3, 14), remote_debug_off="-X disable-remote-debug"),
     "has remote debugging switched off (-X disable-remote-debug): restart it without -X disable-remote-debug"),
])
def test_each_refusal_names_its_remedy(fields, words):
    assert words in processes.refusal(proc(**fields), 42)


def test_a_process_that_is_gone_is_refused():
    assert processes.refusal(None, 42) == "no process with pid 42 (it has exited)"


def test_a_python_of_the_right_version_is_not_refused_for_what_it_is():
    assert processes.refusal(proc(), 42) == processes.ptrace_refusal(proc())


def test_the_reader_mark_is_for_cpython_3_14_and_newer():
    assert [proc(version=v).readable for v in ((3, 13), (3, 14), (3, 15))] == [False, True, True]
    assert not proc(implementation="PyPy", version=(3, 14)).readable
