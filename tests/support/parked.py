"""Coroutines that park a task inside a primitive, for the tests of what a pass finds."""
from __future__ import annotations

import asyncio


async def holding(lock: asyncio.Lock) -> None:
    """Holds ``lock`` for an hour: a task that awaits it then waits in ``Lock.acquire``."""
    async with lock:
        await asyncio.sleep(3600)


async def condition_wait(cond: asyncio.Condition) -> None:
    async with cond:
        await cond.wait()
