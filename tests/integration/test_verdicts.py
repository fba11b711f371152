"""Leak verdicts: proven leaks (nothing but the waiters can reach what they wait on), and
no verdict where something alive could still wake the waiters.  (Proofs run in this process,
without a target, are in unit/test_verdict_proofs.py.)"""
from __future__ import annotations

import pytest
from conftest import tasktop, wait_until

from tasktop.probe.verdicts import THREAD_PROOFS

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
    if THREAD_PROOFS:  # 3.11-3.13: every reference a blocked thread's frames hold is seen
        assert found["lost_thread"]["verdict"] == "unreachable" and found["lost_thread"]["kind"] == "thread"
    else:  # a caller's stack (3.9, 3.10) or a borrowed local (3.14+) could hide a holder
        assert "lost_thread" not in found
    # Something alive can still reach these: no verdict.
    assert "waits_on_global" not in found
    assert all(v["count"] != 5 for v in verdicts if v["verdict"] == "unreachable")
    assert not any(v["kind"] == "thread" and v["state"] == "Event.wait" for v in verdicts)


# A history point every half second and growth judged over 3 s, not 5 s and 20 s: the rule is
# the same, the test 15 s shorter.
GROWING = r'''
import tasktop.probe.state as state
import tasktop.probe.verdicts as verdicts
state.HISTORY_STEP = 0.5
verdicts.growth.__defaults__ = (3.0,)
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


CROWDS = r'''
import asyncio

SHARED = []          # reachable from the module: whoever reaches them may still wake the waiters

class Consumer:
    def __init__(self):
        self.inbox = asyncio.Queue()     # held only through the instance
    async def run(self):
        await self.inbox.get()

async def orphan(q):
    await q.get()

async def crowd(q):
    await q.get()

async def gate(ev):
    await ev.wait()

async def locked(lock):
    async with lock:                     # the frame keeps a bound __aexit__ of the lock
        pass

async def main():
    keep = []
    shared_q, shared_ev = asyncio.Queue(), asyncio.Event()
    SHARED.extend([shared_q, shared_ev])
    keep += [asyncio.create_task(crowd(shared_q)) for _ in range(3000)]
    keep += [asyncio.create_task(gate(shared_ev)) for _ in range(3000)]
    for _ in range(60):                  # 60 queues, each held only by its 3 waiters
        q = asyncio.Queue()
        keep += [asyncio.create_task(orphan(q)) for _ in range(3)]
    del q
    lost = asyncio.Queue()               # a crowd on a queue nothing else holds
    keep += [asyncio.create_task(crowd(lost)) for _ in range(2000)]
    del lost
    keep += [asyncio.create_task(Consumer().run()) for _ in range(20)]
    registered = [Consumer() for _ in range(20)]
    SHARED.extend(registered)            # these consumers are still reachable
    keep += [asyncio.create_task(c.run()) for c in registered]
    del registered
    held, lost_lock = asyncio.Lock(), asyncio.Lock()
    await held.acquire()                 # held by main, which sleeps: may still release it
    keep += [asyncio.create_task(locked(held)) for _ in range(100)]
    await lost_lock.acquire()            # then dropped: nobody can release it
    keep += [asyncio.create_task(locked(lost_lock)) for _ in range(100)]
    del lost_lock
    keep.append(asyncio.create_task(gate(asyncio.Event())))     # an event only its waiter holds
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(1000)
    held.release()

asyncio.run(main())
'''


# Groups kept in parts of 64 members (``groups.PART``, 65,536 otherwise): a crowd of 3,000 spans
# 47 of them, the orphans' group 3 and the lost crowd 32, as a million tasks' groups span theirs.
SMALL_PARTS = "import tasktop.probe.groups\ntasktop.probe.groups.PART = 64\n"


@pytest.mark.parametrize("parts", ["default", "small"])
def test_every_orphan_is_proven_among_crowds_and_nothing_reachable_is(spawn, parts):
    """Crowds of thousands on reachable objects, a crowd on an orphaned queue, queues held only
    through an instance its waiter owns: with the default budget, all orphans are proven (a
    full count each) and nothing reachable is (crowds judged from a sample)."""
    target = spawn((SMALL_PARTS if parts == "small" else "") + CROWDS)
    reply = target.request("verdicts", budget_s=2.0)
    assert reply["unsettled"] is None
    proven = [v for v in reply["verdicts"] if v["verdict"] == "unreachable"]
    by_where = {}
    for v in proven:
        key = (v["frame"]["func"].split(".")[-1], v["state"])
        by_where[key] = by_where.get(key, 0) + v["count"]
    assert by_where.pop(("orphan", "Queue.get")) == 180
    assert by_where.pop(("crowd", "Queue.get")) == 2000          # the lost crowd, not the shared one
    assert by_where.pop(("run", "Queue.get")) == 20               # not the 20 registered consumers
    assert by_where.pop(("gate", "Event.wait")) == 1              # not the 3000 on the shared event
    assert by_where.pop(("locked", "Lock.acquire")) == 100        # through the frames' bound __aexit__
    assert not by_where, by_where
    reasons = {v["frame"]["func"].split(".")[-1]: v["reason"] for v in proven}
    assert "each of the 60 queues is referenced only by the tasks waiting on it" in reasons["orphan"]
    assert "the queue is referenced only by the 2000 tasks waiting on it" in reasons["crowd"]
    if parts == "small":
        _listed_whole(target)


def _listed_whole(target) -> None:
    """A group in many parts is counted, paged and waited on as one."""
    groups = target.request("summary")["groups"]
    gates = [g for g in groups if g["state"] == "Event.wait"]  # the shared event's 3000 and the lone one
    assert [g["count"] for g in gates] == [3001], [(g["state"], g["count"]) for g in groups]
    seen: list = []
    for offset in range(0, 3001, 700):
        page = target.request("group", id=gates[0]["id"], offset=offset, limit=700)
        assert page["total"] == 3001
        order = [(-t["blocked_s"], t["id"]) for t in page["items"]]  # longest blocked, then by id
        assert order == sorted(order)
        seen += [t["id"] for t in page["items"]]
    assert len(seen) == len(set(seen)) == 3001
    waits = target.request("waits")["waits"]
    events = sorted(w["waiting"] for w in waits if w["kind"] == "asyncio.locks.Event")
    assert events[-1] == 3000


def test_the_dump_says_what_the_budget_left_unsettled(spawn, sockdir):
    target = spawn(CROWDS)
    text = tasktop("dump", str(target.pid), "--budget", "0", sockdir=sockdir)
    assert text.returncode == 0, text.stderr
    assert "NOT SETTLED" in text.stdout
    assert "ran out of its 0s budget" in text.stdout
    assert "PROVEN LEAK" not in text.stdout


AWAITERS = r'''
import asyncio

SHARED = asyncio.Event()     # reachable from the module: its waiters may still be woken

async def child():
    await SHARED.wait()

async def supervisor():      # only awaits another task: its fate is its child's
    await asyncio.create_task(child())

async def orphan(q):
    await q.get()

async def main():
    keep = [asyncio.create_task(supervisor()) for _ in range(100000)]
    for _ in range(10):      # 10 queues, each held only by its 3 waiters
        q = asyncio.Queue()
        keep += [asyncio.create_task(orphan(q)) for _ in range(3)]
    del q
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def test_orphans_among_a_hundred_thousand_tasks_that_only_await_others(spawn):
    """At scale, 100,000 supervisors each awaiting a child on a shared Event, and 10 queues
    held only by their 3 waiters: the 30 orphans are proven (and main, on an Event only it
    holds), nothing reachable is.  That the supervisors are counted after the orphans, so a
    short budget still proves these, is test_verdict_proofs' unit test: a 2 s budget here was
    a race with the machine's load."""
    target = spawn(AWAITERS)
    reply = target.request("verdicts", budget_s=60.0)
    proven = {}
    for v in reply["verdicts"]:
        if v["verdict"] == "unreachable":
            func = v["frame"]["func"].split(".")[-1]
            proven[func] = proven.get(func, 0) + v["count"]
    # main's own Event is held by nothing but main: it is a leak too
    assert proven == {"orphan": 30, "main": 1}, reply["unsettled"]


NESTED = r'''
import asyncio

SHARED = asyncio.Queue()     # reachable from the module: its waiters may still be woken

async def waiter(q):
    await q.get()

async def middle(q):         # only awaits another task
    await asyncio.create_task(waiter(q))

async def top(q):            # only awaits a task that only awaits another
    await asyncio.create_task(middle(q))

async def main():
    keep = [asyncio.create_task(top(SHARED)) for _ in range(20)]
    for _ in range(4):       # chains over a queue nothing else holds, among the shared ones
        keep.append(asyncio.create_task(top(asyncio.Queue())))
    keep += [asyncio.create_task(top(SHARED)) for _ in range(20)]
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def test_a_task_awaiting_a_task_that_awaits_a_leak_is_proven_with_it(spawn):
    """Each waiter's fate decides its awaiter's, and that one's its own: of the chains over a
    queue only their waiter holds, every link is proven, and none of those over the shared one."""
    target = spawn(NESTED)
    verdicts = target.request("verdicts", budget_s=30.0)["verdicts"]
    proven = {v["frame"]["func"].split(".")[-1]: v["count"] for v in verdicts if v["verdict"] == "unreachable"}
    assert proven == {"waiter": 4, "middle": 4, "top": 4}, verdicts
