"""The waits count each object's waiters from what the passes kept in the records, a slice of a
group at a time in C calls, and look a record up one at a time only where a slice has a task
whose target no pass kept: the counts are the same either way."""
from __future__ import annotations

import asyncio
import types

from support.parked import unseen

from tasktop.probe.groups import Group
from tasktop.probe.registry import CHUNK
from tasktop.probe.waits import Waits


def _look(forget: int) -> tuple[dict, list, list]:
    """Waiters on three queues, in one group of more than a slice; the targets of the first
    ``forget`` records of the second slice cleared, as if no pass had kept them."""
    async def scenario():
        queues = [asyncio.Queue() for _ in range(3)]
        tasks = [asyncio.ensure_future(queues[n % 3].get()) for n in range(CHUNK + 200)]
        await asyncio.sleep(0)
        records, passes = unseen(tasks)
        keys = {passes.describe(task, info, None, task._fut_waiter) for task, info in zip(tasks, records)}
        assert len(keys) == 1
        forgotten = records[CHUNK:CHUNK + forget]
        for info in forgotten:
            info.target = None
        found = types.SimpleNamespace(groups={key: Group(key, list(records)) for key in keys}, thread_rows=[])
        reply = Waits().look(found, lambda: None)
        waiting = {w["id"]: w["waiting"] for w in reply["waits"]}
        expected = {f"{id(q):x}": len(q._getters) for q in queues}
        kept = [info.target() is queues[(CHUNK + n) % 3] for n, info in enumerate(forgotten)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return waiting, expected, kept

    return asyncio.run(scenario())


def test_every_waiter_is_counted_once_whether_its_target_was_kept_or_not():
    waiting, expected, kept = _look(forget=0)
    assert waiting == expected and sum(waiting.values()) == CHUNK + 200
    waiting, expected, kept = _look(forget=7)
    assert waiting == expected and sum(waiting.values()) == CHUNK + 200
    assert kept == [True] * 7  # looked up, and kept for the next look
