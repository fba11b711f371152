"""A background pass that gives way to a client (``task_pass.Preempted``) leaves nothing behind
that a client's reply or a later pass would pay for: asked before it starts, it leaves the last
pass (which a dump's later requests share) as it was; asked midway, it lets go of the tasks it
copied from asyncio's registry at once, and leaves its first look at them to the next pass."""
from __future__ import annotations

import asyncio
import gc

import pytest

from tasktop.probe import hooks, record_lists
from tasktop.probe.config import Options
from tasktop.probe.keys import Keys
from tasktop.probe.loops import LoopWatches
from tasktop.probe.task_pass import Preempted, TaskPasses


def _passes() -> TaskPasses:
    return TaskPasses(LoopWatches(Options(), None), Keys(Options()), None)


def test_a_background_pass_asked_before_it_starts_leaves_the_last_pass_as_it_was():
    async def scenario() -> None:
        passes = _passes()
        last = passes.run(grouping=True)  # a client's pass: never gives way
        number = passes.number
        passes.asking = lambda: True
        with pytest.raises(Preempted):
            passes.run(grouping=True, background=True)
        assert passes.number == number  # what tells a pass may still be shared (State.collect)
        assert last.groups is not None
        passes.run(grouping=True)  # a client's pass runs all the same

    asyncio.run(scenario())


def test_a_pass_that_gives_way_midway_lets_go_of_the_registry_and_leaves_its_first_look():
    async def scenario() -> tuple:
        ev = asyncio.Event()
        tasks = [asyncio.ensure_future(ev.wait()) for _ in range(30000)]
        await asyncio.sleep(0.01)
        for task in tasks:
            hooks.info_for(task)
        record_lists.take_made(lambda: None)  # where a pass visits them
        passes = _passes()
        asked = iter([False])  # not before it starts; then, at its first hand-off, asked
        passes.asking = lambda: next(asked, True)
        try:
            passes.run(grouping=True, background=True)
            gave_way = False
        except Preempted:
            gave_way = True
        refs = passes.lists._used.get("refs")
        result = (gave_way, passes._first, refs)
        ev.set()
        await asyncio.gather(*tasks)
        return result

    gave_way, first, refs = asyncio.run(scenario())
    gc.collect()
    assert gave_way
    assert first  # the next pass makes the first pass's look (3.14+: C's task lists)
    assert refs == []  # the registry's copy: emptied when it gave way, not at the next pass
