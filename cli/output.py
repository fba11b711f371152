"""Writing a command's result: the one JSON layout of every ``--json`` option."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterator


#: The list of a document that may hold a million rows (``dump --full``'s tasks).
ROWS = "tasks"
ROWS_AT_ONCE = 1000  # rows encoded into one piece


def print_json(document: Any) -> None:
    """``document`` as JSON on standard output (see ``json_pieces``)."""
    for piece in json_pieces(document):
        sys.stdout.write(piece)


def json_pieces(document: Any) -> Iterator[str]:
    """``document`` as indented JSON ending in a newline, a piece at a time, except that each
    row of its ``tasks`` list is one line of compact JSON.  An indented document goes through
    the json module's pure-Python encoder and compact rows through its C one, several times as
    fast (a million rows in ``dump --full --json``); the pieces are written as they come, so
    that no string of the whole output (1.4 GB there) is ever made."""
    rows = document.get(ROWS) if isinstance(document, dict) else None
    if not isinstance(rows, list) or not rows:
        yield json.dumps(document, indent=2) + "\n"
        return
    marker = "\x00rows\x00"  # a string no document holds: where the rows go
    head, tail = json.dumps({**document, ROWS: marker}, indent=2).split(json.dumps(marker), 1)
    yield head + "[\n"
    encode = json.JSONEncoder().encode
    for start in range(0, len(rows), ROWS_AT_ONCE):
        last = start + ROWS_AT_ONCE >= len(rows)
        yield ",\n".join("    " + encode(row) for row in rows[start:start + ROWS_AT_ONCE]) + ("\n" if last else ",\n")
    yield "  ]" + tail + "\n"
