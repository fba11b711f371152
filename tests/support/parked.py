"""Coroutines that park a task inside a primitive, and records no pass has seen, for the tests
of what a pass finds."""
from __future__ import annotations

import asyncio

from tasktop.probe import hooks
from tasktop.probe.config import Options
from tasktop.probe.keys import Keys
from tasktop.probe.task_pass import TaskPasses


async def holding(lock: asyncio.Lock) -> None:
    """Holds ``lock`` for an hour: a task that awaits it then waits in ``Lock.acquire``."""
    async with lock:
        await asyncio.sleep(3600)


async def condition_wait(cond: asyncio.Condition) -> None:
    async with cond:
        await cond.wait()


def unseen(tasks: list) -> tuple[list, TaskPasses]:
    """The records of ``tasks`` as no pass has seen them, and passes that have seen none."""
    records = [hooks.info_for(task) for task in tasks]
    for info in records:
        info.waiter = info.cache = info.target = None
    return records, TaskPasses(None, Keys(Options()), None)
