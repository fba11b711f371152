"""A task parked on a plain future is described from its chain's memo (3.11+): one walk of its
suspended coroutines and a lookup by their ids, without the general walk or the state's
rules.  What it finds must be what the general path finds, for every state, and only tasks
whose state the chain alone tells may take it."""
from __future__ import annotations

import asyncio
import gc
import sys

from support.parked import condition_wait, holding

from tasktop.probe import hooks, tasks as tasks_mod
from tasktop.probe.config import Options
from tasktop.probe.keys import Keys
from tasktop.probe.task_pass import TaskPasses


async def _two_awaits(ev):  # parked at its second suspension point: a line read, not known
    await asyncio.sleep(0)
    await ev.wait()


async def _bare_future(fut):
    await fut


async def _task_group():
    async with asyncio.TaskGroup() as group:
        group.create_task(asyncio.sleep(3600))


def _described(passes: TaskPasses, task: asyncio.Task, waiter: object) -> tuple:
    info = hooks.info_for(task)
    info.cache = info.target = None  # as the pass's visit leaves a task first seen
    described = passes.describe(task, info, None, waiter)
    target = info.target() if info.target is not None else None
    return described, target


def test_a_parked_task_is_described_from_the_memo_as_the_general_walk_describes_it():
    async def scenario() -> tuple:
        full = asyncio.Queue(maxsize=1)
        full.put_nowait("x")
        lock, ev, loop = asyncio.Lock(), asyncio.Event(), asyncio.get_running_loop()
        holder = asyncio.ensure_future(holding(lock))
        await asyncio.sleep(0)
        child = asyncio.ensure_future(asyncio.sleep(3600))
        made = {
            "Queue.get": asyncio.Queue().get(), "Queue.put": full.put("y"), "Event.wait": ev.wait(),
            "two awaits": _two_awaits(ev), "Lock.acquire": lock.acquire(),
            "Semaphore.acquire": asyncio.Semaphore(0).acquire(),
            "Condition.wait": condition_wait(asyncio.Condition()), "sleep": asyncio.sleep(3600),
            "future": _bare_future(loop.create_future()), "await task": _bare_future(child),
            "gather": _bare_future(asyncio.gather(asyncio.sleep(3600))), "wait": asyncio.wait([child]),
            "wait_for": asyncio.wait_for(asyncio.sleep(3600), 3600),
        }
        if sys.version_info >= (3, 11):
            made["TaskGroup"] = _task_group()
        tasks = {name: asyncio.ensure_future(coro) for name, coro in made.items()}
        await asyncio.sleep(0.01)
        passes = TaskPasses(None, Keys(Options()), None)
        # No waiter given: the general path (its state from the task's own ``_fut_waiter``).
        general = {name: _described(passes, task, None) for name, task in tasks.items()}
        walked = []
        real = tasks_mod.chain_of
        tasks_mod.chain_of = lambda task: walked.append(task) or real(task)
        try:
            memo = {name: _described(passes, task, task._fut_waiter) for name, task in tasks.items()}
        finally:
            tasks_mod.chain_of = real
        generally = sorted(name for name, task in tasks.items() if task in walked)
        everything = [*tasks.values(), holder, child]
        for task in everything:
            task.cancel()
        await asyncio.gather(*everything, return_exceptions=True)
        return general, memo, generally

    general, memo, generally = asyncio.run(scenario())
    gc.collect()  # the cancelled tasks' cycles: freed now, not in a later test that counts records
    assert memo == general
    states = {name: (d if not isinstance(d, tuple) else d[0]).state for name, (d, _t) in memo.items()}
    assert states["two awaits"] == "Event.wait" and states["future"] == "future"
    assert memo["Queue.get"][1] is not None and memo["Lock.acquire"][1] is not None
    if sys.version_info >= (3, 11):
        # What the chain alone cannot tell (no primitive, tasks in a frame's locals, a task or
        # a gathering future awaited) goes the general way; every task parked on a primitive's
        # or sleep's plain future does not.
        # (3.12+: wait_for awaits a coroutine in its own frame, parked on that one's future.)
        expected = ["future", "await task", "gather", "wait", "TaskGroup"]
        assert generally == sorted(expected + ["wait_for"] * (sys.version_info < (3, 12)))
    else:
        assert generally == sorted(general)
