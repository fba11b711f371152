"""Writing a command's result: the one JSON layout of every ``--json`` option."""
from __future__ import annotations

import itertools
import json
import sys
from typing import Any, Iterator

from tasktop.wire import Rows


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
    if isinstance(rows, Rows) and not len(rows):
        document, rows = {**document, ROWS: []}, []
    if not isinstance(rows, (list, Rows)) or not len(rows):
        yield json.dumps(document, indent=2) + "\n"
        return
    marker = "\x00rows\x00"  # a string no document holds: where the rows go
    head, tail = json.dumps({**document, ROWS: marker}, indent=2).split(json.dumps(marker), 1)
    yield head + "[\n"
    encode = json.JSONEncoder().encode
    items = iter(rows)  # (``wire.Rows``: unpacked as they are read)
    joint = "    "
    for piece in iter(lambda: [encode(row) for row in itertools.islice(items, ROWS_AT_ONCE)], []):
        yield joint + ",\n    ".join(piece)
        joint = ",\n    "
    yield "\n  ]" + tail + "\n"
