"""Leak verdicts: proven leaks (nothing but the waiters can reach what they wait on), and
no verdict where something alive could still wake the waiters."""
from __future__ import annotations

from conftest import wait_until

LEAKS = r'''
import asyncio, threading, queue

GLOBAL_Q = None
KEEP = []

async def consume(q):
    await q.get()

async def orphan_consumers():
    q = asyncio.Queue()               # nobody else will ever see this queue
    await asyncio.gather(*(consume(q) for _ in range(3)))

async def waits_forever():
    await asyncio.get_running_loop().create_future()

async def waits_on_global():
    await GLOBAL_Q.get()

async def main():
    global GLOBAL_Q
    GLOBAL_Q = asyncio.Queue()
    for _ in range(4):
        KEEP.append(asyncio.create_task(waits_on_global()))     # reachable from a module
    local_q = asyncio.Queue()
    for _ in range(5):
        KEEP.append(asyncio.create_task(consume(local_q)))      # main still holds local_q
    for _ in range(2):
        KEEP.append(asyncio.create_task(waits_forever()))       # futures nobody holds
    KEEP.append(asyncio.create_task(orphan_consumers()))
    def lost_thread():
        queue.Queue().get()
    threading.Thread(target=lost_thread, name="lost", daemon=True).start()
    ev = threading.Event()
    threading.Thread(target=ev.wait, name="held", daemon=True).start()   # main holds ev
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    await asyncio.sleep(1000)
    ev.set()

asyncio.run(main())
'''


def _by_func(verdicts: list[dict]) -> dict:
    return {v["frame"]["func"].split(".")[-1]: v for v in verdicts}


def test_proven_leaks_and_reachable_waits(spawn):
    target = spawn(LEAKS)
    verdicts = target.request("verdicts", budget_s=5.0)["verdicts"]
    found = _by_func(verdicts)
    assert found["waits_forever"]["verdict"] == "unreachable"
    assert found["waits_forever"]["count"] == 2
    assert "each of the 2 futures is referenced only by the tasks waiting on it" in found["waits_forever"]["reason"]
    assert found["consume"]["verdict"] == "unreachable" and found["consume"]["count"] == 3
    assert "the queue is referenced only by the 3 tasks waiting on it" in found["consume"]["reason"]
    assert "nothing else can ever put to it" in found["consume"]["reason"]
    assert found["lost_thread"]["verdict"] == "unreachable" and found["lost_thread"]["kind"] == "thread"
    # Something alive can still reach these: no verdict.
    assert "waits_on_global" not in found
    assert all(v["count"] != 5 for v in verdicts if v["verdict"] == "unreachable")
    assert not any(v["kind"] == "thread" and v["state"] == "Event.wait" for v in verdicts)


GROWING = r'''
import asyncio
PENDING = []
async def handle():
    await asyncio.Event().wait()
async def main():
    print("ready", flush=True)
    while True:
        PENDING.append(asyncio.create_task(handle()))
        await asyncio.sleep(0.05)
asyncio.run(main())
'''


def test_growing_group_verdict(spawn):
    target = spawn(GROWING)

    def growing():
        verdicts = target.request("verdicts", budget_s=1.0)["verdicts"]
        return [v for v in verdicts if v["verdict"] == "growing"]
    found = wait_until(growing, timeout=60, interval=1.0, message="a growing verdict")
    assert found[0]["frame"]["func"] == "handle"
    assert found[0]["growth"]["rate_per_min"] > 100
    assert "grew from" in found[0]["reason"]


HOLDERS = r'''
import asyncio

RELEASE = None   # a module global: whoever holds this may still set it

async def holder(lock, wait_for):
    async with lock:
        await wait_for()

async def lock_waiter(lock):
    async with lock:
        pass

async def main():
    global RELEASE
    RELEASE = asyncio.Event()
    keep = []
    # The holder of lock A waits on a reachable event: A may be released, no verdict.
    a = asyncio.Lock()
    keep.append(asyncio.create_task(holder(a, RELEASE.wait)))
    # The holder of lock B waits on a future nobody else holds: B never will be.
    b = asyncio.Lock()
    keep.append(asyncio.create_task(holder(b, lambda: asyncio.get_running_loop().create_future())))
    await asyncio.sleep(0.05)
    for lock, n in ((a, 2), (b, 3)):
        for _ in range(n):
            keep.append(asyncio.create_task(lock_waiter(lock)))
    del a, b, lock
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def test_a_lock_held_by_a_live_task_is_not_a_proven_leak(spawn):
    target = spawn(HOLDERS)
    verdicts = target.request("verdicts", budget_s=5.0)["verdicts"]
    proven = {(v["state"], v["count"]) for v in verdicts if v["verdict"] == "unreachable"}
    # lock B's three waiters and B's holder (waiting on an unreachable future) are dead ...
    assert ("future", 1) in proven
    lock_verdicts = [v for v in verdicts if v["verdict"] == "unreachable" and v["state"] == "Lock.acquire"]
    assert len(lock_verdicts) == 1 and lock_verdicts[0]["count"] == 3
    assert "3 of the 5" in lock_verdicts[0]["reason"]
    # ... lock A's two waiters are not: its holder may still be woken through RELEASE.
    assert not any(v["state"] == "Event.wait" and v["verdict"] == "unreachable" for v in verdicts)
