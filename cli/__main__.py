"""``python -m tasktop.cli`` is the ``tasktop`` command."""
import sys

from .main import main

sys.exit(main())
