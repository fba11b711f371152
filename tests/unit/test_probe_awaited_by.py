"""Who awaits each task, for rows of a full dump, a group's page and a task's detail: kept in
dicts sharded by the awaited task's seq (one dict of 50,000 held the event loop up as it grew),
and emptied a shard at a time once the reply is made."""
from __future__ import annotations

import os
import random
import types

from tasktop.probe import shards
from tasktop.probe.config import Options
from tasktop.probe.parts import Parts
from tasktop.probe.replies import Replies, awaiters
from tasktop.probe.state import State


def test_every_awaiter_is_found_in_its_awaited_tasks_shard():
    rng = random.Random(7)
    rows, expected = Parts(), {}
    for seq in range(1, 5001):
        awaiting = rng.choice([None, None, rng.randrange(1, 5001), 17])  # 17: awaited by a crowd
        children = tuple(rng.sample(range(1, 5001), rng.choice([0, 0, 0, 3])))
        rows.append(types.SimpleNamespace(seq=seq, cache=(None, awaiting, children)))
        for awaited in ((awaiting,) if awaiting is not None else ()) + children:
            expected.setdefault(awaited, []).append(seq)
    awaited_by = Replies(State(Options(), None), os.getpid())._awaited_by(rows)
    assert len(awaited_by) == shards.SHARDS
    assert all(key & shards.MASK == n for n, shard in enumerate(awaited_by) for key in shard)
    assert shards.size(awaited_by) == len(expected) > 1000
    assert len(expected[17]) > 1000
    for seq in range(1, 5002):
        assert awaiters(awaited_by, seq) == sorted(expected.get(seq, ()))
