"""``python -m tasktop.exporter`` is ``tasktop exporter``."""
import sys

from .metrics import main

sys.exit(main())
