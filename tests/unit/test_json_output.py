"""The one JSON layout of every ``--json`` option (``render.text.json_pieces``): indented, except
the rows of a ``tasks`` list, one line of compact JSON each, written a piece at a time."""
from __future__ import annotations

import json

import pytest

from tasktop.render import text as output


def document(rows: int) -> dict:
    return {
        "schema": 1,
        "totals": {"tasks": rows, "threads": 1},
        "tasks": [{"id": n, "name": f"worker-{n}", "state": "Queue.get", "blocked_s": 1.5,
                   "stack": [{"func": "consume", "file": "/srv/shop/app.py", "line": 12}],
                   "awaited_by": [], "note": "café"} for n in range(rows)],
        "threads": [{"name": "MainThread", "stack": []}],
    }


@pytest.mark.parametrize("rows, at_once", [(1, 1000), (5, 2), (6, 2), (7, 3)])
def test_rows_one_line_each_and_the_same_document(monkeypatch, rows, at_once):
    monkeypatch.setattr(output, "ROWS_AT_ONCE", at_once)  # rows split across pieces, and not
    doc = document(rows)
    pieces = list(output.json_pieces(doc))
    printed = "".join(pieces)
    assert json.loads(printed) == doc
    assert printed.endswith("}\n")
    lines = printed.splitlines()
    row_lines = [line for line in lines if line.startswith('    {"id": ')]
    assert [json.loads(line.rstrip(",")) for line in row_lines] == doc["tasks"]
    assert lines[lines.index('  "tasks": [') + rows + 1] == "  ],"  # the rows, then the list ends
    assert '      "name": "MainThread",' in lines  # the other lists stay indented
    assert len(pieces) >= 2 + (rows + at_once - 1) // at_once


@pytest.mark.parametrize("doc", [{"schema": 1, "totals": {"tasks": 3}}, {"tasks": []}, [1, 2], {"tasks": 3}])
def test_without_rows_it_is_indented_json(doc):
    assert "".join(output.json_pieces(doc)) == json.dumps(doc, indent=2) + "\n"
