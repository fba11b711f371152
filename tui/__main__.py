"""``python -m tasktop.tui`` is the ``tasktop`` command."""
import sys

from tasktop.tui.cli import main

sys.exit(main())
