"""Writing a command's result: the one JSON layout of every ``--json`` option."""
from __future__ import annotations

import json
import sys
from typing import Any


def print_json(document: Any) -> None:
    """``document`` as indented JSON on standard output, ending in a newline."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
