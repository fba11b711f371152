"""Big replies packed in blocks are the same bytes as one pack.  (The probe's socket under bad
clients is in integration/test_probe_wire.py.)"""
from __future__ import annotations

import pytest

from tasktop import wire


def test_replies_packed_in_blocks_are_the_same_bytes_as_one_pack():
    """Big replies are packed piece by piece (rows of a ``Stream`` made while packing, pieces
    coalesced into blocks); a client must read exactly what one ``packb`` would have given."""
    rows = [{"id": i, "name": f"task-{i}", "stack": [{"func": "f", "line": i}], "tags": (1, 2)}
            for i in range(10000)]
    reply = {"ok": True, "data": {"groups": list(range(100)), "tasks": rows, "note": {1, 2}}}
    streamed = {"ok": True, "data": {"groups": list(range(100)),
                                     "tasks": wire.Stream(len(rows), iter(rows)), "note": {1, 2}}}
    blocks = wire.encode_blocks(streamed)
    assert len(blocks) > 2  # a header and several blocks
    assert b"".join(blocks) == wire.encode(reply)
    with pytest.raises(ValueError):
        wire.encode_blocks({"tasks": wire.Stream(5, iter(rows[:4]))})
