"""A budgeted pass puts off the records before where the last one stopped walking (``resume``)
and walks them last, if time is left: no weak reference to a waiter is made for one it then
does not walk (at a million tasks those references cost most of a cold pass), and one it walks
gets its reference."""
from __future__ import annotations

import asyncio
import gc
import time
import weakref

from support.parked import unseen

from tasktop.probe.task_pass import _Walk


def _pass(budget: float, resume_at: int) -> list:
    async def scenario() -> list:
        ev = asyncio.Event()
        tasks = [asyncio.ensure_future(ev.wait()) for _ in range(100)]
        await asyncio.sleep(0.01)
        records, passes = unseen(tasks)
        loop = asyncio.get_running_loop()
        walk = _Walk(passes, time.monotonic(), {id(loop)}, True, False, lambda: None, budget,
                     resume=records[resume_at].seq)
        walk.visit(records)
        walk.walk_later()
        found = [(info.cache is not None,  # walked; referred to its waiter:
                  type(info.waiter) is weakref.ReferenceType and info.waiter() is task._fut_waiter)
                 for info, task in zip(records, tasks)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return found

    found = asyncio.run(scenario())
    gc.collect()
    return found


def test_records_put_off_and_not_walked_get_no_reference():
    # A budget the first walk uses up: the 50 records put off are not walked at all.
    found = _pass(1e-9, 50)
    put_off = found[:50]
    assert put_off == [(False, False)] * 50
    assert all(walked == referred for walked, referred in found)


def test_records_put_off_and_walked_get_their_reference():
    found = _pass(60.0, 50)
    assert found == [(True, True)] * 100
