"""``python -m tasktop.demo`` runs the demo target."""
import sys

from .target import main

sys.exit(main())
