"""A task's record is found among a listing pass's rows by halving them (they are in creation
order), around that place for the few a race between two threads making tasks left out of
place, and by a scan only for the task asked about, never for each related one."""
from __future__ import annotations

import os
import types

from tasktop.probe import parts
from tasktop.probe.config import Options
from tasktop.probe.parts import Parts
from tasktop.probe.replies import Replies
from tasktop.probe.state import State


def _rows(seqs: list) -> Parts:
    rows = Parts()
    for seq in seqs:
        rows.append(types.SimpleNamespace(seq=seq))
    return rows


def test_records_in_order_and_a_little_out_of_it_are_found(monkeypatch):
    monkeypatch.setattr(parts, "PART", 100)  # several parts
    seqs = list(range(1, 1001))
    seqs[500], seqs[501] = seqs[501], seqs[500]  # two threads made these at once
    seqs[700:703] = [703, 701, 702]
    far = seqs.pop(10)  # a record appended far from its place
    seqs.append(far)
    seqs.remove(301)  # a task that ended
    rows = _rows(seqs)
    replies = Replies(State(Options(), None), os.getpid())
    for seq in (1, 2, 500, 501, 502, 701, 702, 703, 1000):
        assert rows[replies._index(rows, seq)].seq == seq
    assert replies._index(rows, 301) is None and replies._index(rows, 301, scan=False) is None
    assert replies._index(rows, 2000) is None
    assert rows[replies._index(rows, far)].seq == far  # found by the scan ...
    assert replies._index(rows, far, scan=False) is None  # ... which a related task does not get
