"""What a task waits on is found by the pass that walks its chain, and kept in its record: the
same object the waits and the proof would find by walking the chain once more, for every
primitive and however deep the chain; nothing for a task whose state has no primitive."""
from __future__ import annotations

import asyncio
import sys
import weakref

from support.parked import condition_wait, holding, unseen

from tasktop.probe import hooks, positions
from tasktop.probe.config import Options
from tasktop.probe.keys import Keys
from tasktop.probe.task_pass import TaskPasses
from tasktop.probe.waiters import task_target


async def _deep(awaitable_of, obj):  # two frames of the application above the primitive's
    async def inner():
        return await awaitable_of(obj)
    return await inner()


def test_a_walked_task_keeps_what_it_waits_on():
    async def scenario() -> list:
        full = asyncio.Queue(maxsize=1)
        full.put_nowait("x")
        lock, sem = asyncio.Lock(), asyncio.Semaphore(0)
        expected = {
            "Queue.get": asyncio.Queue(), "Queue.put": full, "Event.wait": asyncio.Event(),
            "Lock.acquire": lock, "Semaphore.acquire": sem, "Condition.wait": asyncio.Condition(),
        }
        holder = asyncio.ensure_future(holding(lock))
        await asyncio.sleep(0)
        waiting = {
            "Queue.get": _deep(lambda q: q.get(), expected["Queue.get"]),
            "Queue.put": _deep(lambda q: q.put("y"), full),
            "Event.wait": _deep(lambda e: e.wait(), expected["Event.wait"]),
            "Lock.acquire": _deep(lambda lk: lk.acquire(), lock),
            "Semaphore.acquire": _deep(lambda s: s.acquire(), sem),
            "Condition.wait": _deep(condition_wait, expected["Condition.wait"]),
        }
        tasks = {state: asyncio.ensure_future(coro) for state, coro in waiting.items()}
        tasks["sleep"] = asyncio.ensure_future(_deep(asyncio.sleep, 3600))
        await asyncio.sleep(0.01)
        passes = TaskPasses(None, Keys(Options()), None)
        out = []
        for state, task in tasks.items():
            info = hooks.info_for(task)
            info.cache = info.target = None  # as the pass's visit leaves a task first seen
            key = passes.describe(task, info, None, task._fut_waiter)
            key = key if not isinstance(key, tuple) else key[0]
            target = info.target() if info.target is not None else None
            out.append((state, key.state, target is expected.get(state),
                        target is task_target(task, key.state)))
        for task in [*tasks.values(), holder]:
            task.cancel()
        await asyncio.gather(*tasks.values(), holder, return_exceptions=True)
        return out

    found = asyncio.run(scenario())
    assert [(state, key_state) for state, key_state, _same, _agrees in found] == [
        (state, state) for state, *_ in found]
    assert all(same for state, _k, same, _a in found if state != "sleep"), found
    assert all(agrees for *_rest, agrees in found), found
    sleeping = next(row for row in found if row[0] == "sleep")
    assert sleeping[2] is True  # expected.get("sleep") is None, and so is the target



def test_waiters_of_a_few_primitives_are_told_theirs_by_address_and_never_another():
    async def scenario() -> tuple:
        queues = [asyncio.Queue() for _ in range(3)]
        events = [asyncio.Event() for _ in range(2)]
        expected = [queues[n % 3] for n in range(150)] + [events[n % 2] for n in range(100)]
        tasks = [asyncio.ensure_future(_deep(lambda o: o.get() if isinstance(o, asyncio.Queue) else o.wait(), obj))
                 for obj in expected]
        await asyncio.sleep(0.01)
        records, passes = unseen(tasks)
        for task, info in zip(tasks, records):
            passes.describe(task, info, None, task._fut_waiter)
        first = [info.target() if info.target is not None else None for info in records]
        known = set(passes._targets)
        # An address taken to be another live queue's (as if that one had been freed and a new
        # one made where it was): still the queue the task waits on.
        decoy = asyncio.Queue()
        for address in list(passes._targets):
            passes._targets[address] = weakref.ref(decoy)
        records, _ = unseen(tasks)
        for task, info in zip(tasks, records):
            passes.describe(task, info, None, task._fut_waiter)
        second = [info.target() if info.target is not None else None for info in records]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return expected, first, second, known

    expected, first, second, known = asyncio.run(scenario())
    assert all(found is obj for found, obj in zip(first, expected))
    assert all(found is obj for found, obj in zip(second, expected))
    if sys.version_info >= (3, 11):  # calibrated on every version whose frames live in the coroutine
        assert positions.FIRST_LOCAL is not None
        assert known == {id(obj) for obj in expected}
