"""Target scripts more than one test file runs (with the ``spawn`` fixture)."""
from __future__ import annotations

#: Three tasks parked on one referenced ``asyncio.Event``; "ready" once they wait on it.
EVENT_WAITERS = r'''
import asyncio
EVENT = None
async def main():
    global EVENT
    EVENT = asyncio.Event()  # referenced, so its waiters are not garbage
    for _ in range(3):
        asyncio.create_task(EVENT.wait())
    await asyncio.sleep(0)  # they are waiting on it: the state under test is set before "ready"
    print("ready", flush=True)
    await asyncio.sleep(1000)
asyncio.run(main())
'''
