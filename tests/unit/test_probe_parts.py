"""A pass keeps each group's members, and the rows of every task, in lists of about
``parts.PART`` (never one list of a whole big group, which is copied into fresh memory whenever
it outgrows its block), and every item is in exactly one part, in the order the pass met it."""
from __future__ import annotations

import asyncio
import gc
import time

from support.parked import unseen

from tasktop.probe import parts
from tasktop.probe.task_pass import _Walk

PART = 64


def test_a_pass_keeps_big_groups_in_parts(monkeypatch):
    monkeypatch.setattr(parts, "PART", PART)

    async def scenario() -> tuple:
        ev, q = asyncio.Event(), asyncio.Queue()
        # Records that alternate between two groups, then a long run of one group.
        tasks = []
        for _ in range(1000):
            tasks += [asyncio.ensure_future(ev.wait()), asyncio.ensure_future(q.get())]
        tasks += [asyncio.ensure_future(ev.wait()) for _ in range(3000)]
        await asyncio.sleep(0.01)
        records, passes = unseen(tasks)
        loop = asyncio.get_running_loop()
        walk = _Walk(passes, time.monotonic(), {id(loop)}, True, False, lambda: None)
        walk.visit(records)
        by_state = {}
        for group in walk.groups.values():
            group.tally(time.monotonic(), passes.keys.site_key, lambda: None)
            sizes = [len(part) for part in group.members.lists]
            by_state[group.key.state] = (sizes, list(group.members), group.count)
        # A pass that lists rows: every record once, in order, in parts, read by index too.
        listing = _Walk(passes, time.monotonic(), {id(loop)}, True, True, lambda: None)
        listing.visit(records)
        rows = listing.infos
        row_sizes = [len(part) for part in rows.lists]
        by_index = [rows[i] for i in range(len(rows))] + [rows[-1]]
        expected = {"Event.wait": [r for r, t in zip(records, tasks) if t._fut_waiter is not None
                                   and "wait" in repr(t.get_coro())],
                    "Queue.get": [r for r, t in zip(records, tasks) if "get" in repr(t.get_coro())]}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return by_state, expected, (records, list(rows), by_index, row_sizes)

    by_state, expected, (records, rows, by_index, row_sizes) = asyncio.run(scenario())
    gc.collect()
    assert sorted(by_state) == ["Event.wait", "Queue.get"]
    for state, (sizes, members, count) in by_state.items():
        assert members == expected[state]  # each once, in the order met
        assert count == len(members) == sum(sizes)
        # A part is looked at again every 512 records and whenever the group changes: it may
        # pass PART by at most 511 in a run of one group.
        assert max(sizes) < PART + 512
        assert len(sizes) > 1
    event_sizes = by_state["Event.wait"][0]
    assert len(event_sizes) >= 4000 // (PART + 512)
    # Alternating records check their group's part at every switch: no part passes PART there.
    assert all(size <= PART for size in by_state["Queue.get"][0])
    assert rows == records and by_index == records + records[-1:]
    assert len(row_sizes) > 1 and max(row_sizes) < PART + 512
