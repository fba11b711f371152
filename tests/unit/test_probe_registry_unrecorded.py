"""The tasks asyncio's registry holds and no factory of ours saw (every task, when the probe
attaches to a running process): each live, not-done one found once, a slice at a time."""
from __future__ import annotations

import asyncio
import types
import weakref

from tasktop.probe import registry


def test_each_unrecorded_live_task_once_and_the_gil_given_away_as_they_are_gathered():
    loop = asyncio.new_event_loop()

    async def parked() -> None:
        await asyncio.sleep(3600)

    tasks = [loop.create_task(parked()) for _ in range(5000)]
    eager_only = loop.create_task(parked())  # in the eager set only
    try:
        recorded = {id(task): types.SimpleNamespace(seq=n) for n, task in enumerate(tasks[:1000])}
        done = loop.create_future()
        done.set_result(None)  # a done one is left out (any object with done())
        both = tasks[4999]  # an eager task can be in both sets for a moment

        def record_of(ref_or_task):
            task = ref_or_task() if isinstance(ref_or_task, weakref.ref) else ref_or_task
            return recorded.get(id(task))

        refs = [weakref.ref(task) for task in tasks] + [weakref.ref(done)]
        paced = []
        out, complete = registry.unrecorded(record_of, refs, [both, eager_only, tasks[0]], 999,
                                            lambda: paced.append(1))
        assert not complete
        assert sorted(map(id, out)) == sorted(map(id, tasks[1000:] + [eager_only]))
        # The look-up a slice of LOOKUP_CHUNK at a time, then the 4,000 found one of 512 at a time.
        assert len(paced) >= len(refs) // registry.LOOKUP_CHUNK + 4000 // 512
    finally:
        for task in tasks + [eager_only]:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, eager_only, return_exceptions=True))
        loop.close()


def test_nothing_missing_is_complete():
    loop = asyncio.new_event_loop()
    try:
        future = loop.create_future()
        record = types.SimpleNamespace(seq=7)
        out, complete = registry.unrecorded(lambda ref: record, [weakref.ref(future)], [], 7, lambda: None)
        assert (out, complete) == ([], True)
    finally:
        loop.close()
