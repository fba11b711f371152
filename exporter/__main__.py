"""``python -m tasktop.exporter`` is ``tasktop exporter``."""
import sys

from .server import main

sys.exit(main())
