"""Writing a command's result: the one JSON layout of every ``--json`` option (``json_pieces``)."""
from __future__ import annotations

import sys
from typing import Any

from tasktop.render.text import json_pieces


def print_json(document: Any) -> None:
    """``document`` as JSON on standard output (see ``json_pieces``)."""
    for piece in json_pieces(document):
        sys.stdout.write(piece)
