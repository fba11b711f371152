"""How tasks end, and what they wait on, read from real targets on every Python: outcomes and
lifetimes per group, who cancelled (asyncio's own cancellers; direct cancel() calls on 3.12+, and
before 3.12 with TASKTOP_CANCELLERS=profile),
unretrieved exceptions left for asyncio to report, the rings' bounds, and the objects tasks and
threads wait on with their numbers and movement.  Each target runs on asyncio's loop, on uvloop, with eager tasks (3.12+)
and under the application's own task factory."""
from __future__ import annotations

import sys

import pytest

from conftest import wait_until

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the test extra except on Windows
    uvloop = None

MODES = ["asyncio", "uvloop", "eager", "factory"]

PRELUDE = '''
import asyncio, sys, threading, queue
MODE = sys.argv[1]

def app_factory(loop, coro, **kwargs):
    return asyncio.Task(coro, loop=loop, **kwargs)

def run(main):
    if MODE == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    if MODE == "eager":
        loop.set_task_factory(asyncio.eager_task_factory)
    elif MODE == "factory":
        loop.set_task_factory(app_factory)
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main())
'''


def _skip_mode(mode: str) -> None:
    if mode == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed for this Python")
    if mode == "eager" and not hasattr(__import__("asyncio"), "eager_task_factory"):
        pytest.skip("eager tasks need Python 3.12+")


def _rings(target) -> list:
    return target.request("ends")["rings"]


def _endings(target) -> list:
    return [e for ring in _rings(target) for e in ring["recent"]]


ENDINGS = PRELUDE + '''
async def returns():
    await asyncio.sleep(0.01)
    return 1

async def raises():
    await asyncio.sleep(0)
    raise KeyError("lost")

async def forever():
    await asyncio.Event().wait()

def stop(task):
    task.cancel()                                                       # LINE cancel call

async def main():
    ts = [asyncio.ensure_future(returns()) for _ in range(30)]           # LINE returns
    await asyncio.gather(*ts)
    asyncio.ensure_future(raises())                                     # LINE raises
    direct = asyncio.ensure_future(forever())                           # LINE direct
    await asyncio.sleep(0.01)
    stop(direct)                                                        # LINE stop
    try:
        await asyncio.wait_for(asyncio.ensure_future(forever()), 0.01)  # LINE wait_for
    except asyncio.TimeoutError:
        pass
    if hasattr(asyncio, "TaskGroup"):
        async def failing():
            await asyncio.sleep(0.01)
            raise ValueError("one failed")
        try:
            async with asyncio.TaskGroup() as tg:                       # LINE taskgroup
                tg.create_task(forever())                               # LINE tg child
                tg.create_task(failing())
        except BaseException:
            pass
        try:
            async with asyncio.timeout(0.01):                           # LINE timeout
                await asyncio.ensure_future(forever())                  # LINE timeout child
        except TimeoutError:
            pass
    g = asyncio.gather(asyncio.ensure_future(forever()))                # LINE gather
    await asyncio.sleep(0)
    g.cancel()
    try:
        await g
    except asyncio.CancelledError:
        pass
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.Event().wait()

run(main)
'''


def _line(source: str, tag: str) -> int:
    return next(i for i, text in enumerate(source.splitlines(), 1) if text.rstrip().endswith(f"# LINE {tag}"))


def _created_at(ending: dict, ring: dict) -> int | None:
    stack = ending.get("created_by") or ring.get("created_by") or []
    return stack[0]["line"] if stack else None


@pytest.mark.parametrize("profile", [False, True], ids=["", "profile"])
@pytest.mark.parametrize("mode", MODES)
def test_endings_say_how_each_task_ended_and_who_cancelled(spawn, mode, profile):
    _skip_mode(mode)
    if profile and sys.version_info >= (3, 12):
        pytest.skip("3.12+ sees direct cancel() calls without it")
    target = spawn(ENDINGS, args=(mode,), **({"TASKTOP_CANCELLERS": "profile"} if profile else {}))
    found = wait_until(lambda: [(e, r) for r in _rings(target) for e in r["recent"]], message="endings")
    by_line: dict = {}
    for ending, ring in found:
        by_line.setdefault(_created_at(ending, ring), []).append(ending)
    returned = by_line[_line(ENDINGS, "returns")]
    assert {e["outcome"] for e in returned} == {"returned"}
    assert all(e["lived_s"] is not None and e["lived_s"] >= 0.005 for e in returned), [(e["id"], e["lived_s"]) for e in returned]
    # A task a pass saw alive ends in the ring of the group it was seen in, the others in their
    # creation site's: the 30 may be in more than one ring.
    rings = [r for r in _rings(target) if any(_created_at(e, r) == _line(ENDINGS, "returns") for e in r["recent"])]
    assert sum(r["returned"] for r in rings) == 30  # counted all
    for ring in rings:  # kept a bounded few
        assert len(ring["recent"]) <= 20
        assert ring["lifetimes"]["count"] == len(ring["recent"]) and ring["lifetimes"]["longest_s"] >= 0.005

    [raised] = by_line[_line(ENDINGS, "raises")]
    assert (raised["outcome"], raised["error"]) == ("raised", "KeyError")

    [direct] = by_line[_line(ENDINGS, "direct")]
    assert direct["outcome"] == "cancelled"
    if sys.version_info >= (3, 12) or profile:  # sys.monitoring, or sys.setprofile when asked for
        by = direct["cancelled_by"]
        assert by["how"] == "cancel()" and by["task"] is not None
        assert [f["line"] for f in by["stack"][:2]] == [_line(ENDINGS, "cancel call"), _line(ENDINGS, "stop")]
    else:  # not seen before 3.12 by default
        assert direct["cancelled_by"] is None

    [timed_out] = by_line[_line(ENDINGS, "wait_for")]
    assert timed_out["outcome"] == "cancelled"
    assert timed_out["cancelled_by"]["how"] == "wait_for"
    assert timed_out["cancelled_by"]["task"] is not None

    if sys.version_info >= (3, 11):
        [child] = by_line[_line(ENDINGS, "tg child")]
        how = child["cancelled_by"]
        assert (child["outcome"], how["how"]) == ("cancelled", "TaskGroup")
        assert "ValueError" in how["reason"]
        assert any(f["line"] == _line(ENDINGS, "taskgroup") for f in how["stack"])
        [inner] = by_line[_line(ENDINGS, "timeout child")]
        assert inner["cancelled_by"]["how"] == "timeout()"
        assert any(f["line"] == _line(ENDINGS, "timeout child") for f in inner["cancelled_by"]["stack"])

    [gathered] = by_line[_line(ENDINGS, "gather")]
    assert gathered["cancelled_by"]["how"] == "gather()"

    one = target.request("ends", task=raised["id"])["ended"]
    assert one["id"] == raised["id"] and one["outcome"] == "raised"
    assert target.request("ends", task=10**9)["ended"] is None
    out, err = target.stop()
    # The probe read the exception without retrieving it: asyncio still reports it.
    assert "Task exception was never retrieved" in err and "KeyError" in err


BOUNDED = PRELUDE + '''
async def quick(i):
    return i

async def main():
    for _ in range(200):
        await asyncio.gather(*[asyncio.ensure_future(quick(i)) for i in range(100)])
    print("ready", flush=True)
    await asyncio.Event().wait()

run(main)
'''


def test_endings_stay_bounded_whatever_the_rate(spawn):
    target = spawn(BOUNDED, args=("asyncio",))
    ends = wait_until(lambda: (lambda e: e if sum(r["returned"] for r in e["rings"]) + e["dropped"] + e["unfollowed"]
                               >= 20_000 else None)(target.request("ends")), message="20,000 tasks accounted for")
    # 20,000 tasks in well under a second: the first second's 1,000 are followed, the rest
    # are counted as made while over the rate limit.
    assert ends["follow_per_s"] == 1000
    assert ends["ended_total"] >= 900 and ends["unfollowed"] > 0  # (the main task has a token too)
    assert all(len(r["recent"]) <= 20 for r in ends["rings"])


WAITS = PRELUDE + '''
async def consumer(q):
    await q.get()

async def main():
    empty = asyncio.Queue()
    consumers = [asyncio.ensure_future(consumer(empty)) for _ in range(4)]
    full = asyncio.Queue(maxsize=3)
    for i in range(3):
        full.put_nowait(i)
    producers = [asyncio.ensure_future(full.put(9)) for _ in range(2)]
    lock = asyncio.Lock()
    await lock.acquire()
    lockers = [asyncio.ensure_future(lock.acquire()) for _ in range(2)]
    sem = asyncio.Semaphore(0)
    sems = [asyncio.ensure_future(sem.acquire())]
    event = asyncio.Event()
    events = [asyncio.ensure_future(event.wait()) for _ in range(3)]
    tq = queue.Queue()
    threading.Thread(target=tq.get, daemon=True, name="getter").start()
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    full.get_nowait()  # one producer moves in
    while full.qsize() < 3:  # once it has run: its put lands after the woken task's next step
        await asyncio.sleep(0)
    print("moved", flush=True)
    await asyncio.Event().wait()

run(main)
'''


@pytest.mark.parametrize("mode", MODES)
def test_waits_list_what_is_waited_on_with_its_numbers(spawn, mode, sockdir, tmp_path):
    _skip_mode(mode)
    import subprocess
    from conftest import Target, target_env

    script = tmp_path / "waits.py"
    script.write_text(WAITS)
    proc = subprocess.Popen([sys.executable, str(script), mode], env=target_env(sockdir), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = Target(proc, sockdir, str(script)).wait_ready()
    try:
        def kinds():
            waits = target.request("waits")["waits"]
            found = {w["kind"]: w for w in waits}
            return found if len(waits) >= 6 else None
        waits = wait_until(kinds, message="six objects waited on")
        by_kind: dict = {}
        for w in target.request("waits")["waits"]:
            by_kind.setdefault(w["kind"], []).append(w)
        queues = sorted(by_kind["asyncio.queues.Queue"], key=lambda w: -w["waiting"])
        assert queues[0]["numbers"]["getters"] == 4 and queues[0]["states"] == {"Queue.get": 4}
        assert queues[0]["frame"]["func"] == "consumer"
        assert queues[1]["numbers"]["putters"] == 2 and queues[1]["numbers"]["size"] == 3
        assert queues[1]["numbers"]["maxsize"] == 3
        [lock] = by_kind["asyncio.locks.Lock"]
        assert lock["numbers"] == {"locked": True, "waiters": 2}
        [sem] = by_kind["asyncio.locks.Semaphore"]
        assert sem["numbers"]["value"] == 0 and sem["numbers"]["waiters"] == 1
        [event] = by_kind["asyncio.locks.Event"]
        assert event["numbers"] == {"set": False, "waiters": 3}
        [tq] = by_kind["queue.Queue"]
        assert tq["numbers"]["getters"] == 1 and tq["states"] == {"Queue.get": 1}
        listed = target.request("waits")["waits"]  # one reply: what waits may change between two
        assert [w["waiting"] for w in listed] == sorted((w["waiting"] for w in listed), reverse=True)

        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert "moved" in proc.stdout.readline()

        def moved():
            for w in target.request("waits")["waits"]:
                if w["kind"] == "asyncio.queues.Queue" and w["numbers"].get("maxsize") == 3 and w["moved"]:
                    if w["moved"].get("putters") == -1:
                        return w
            return None
        w = wait_until(moved, message="the full queue's putters to move")
        assert w["numbers"]["putters"] == 1 and w["numbers"]["size"] == 3
    finally:
        target.stop()


SPREAD_WAITERS = r'''
import asyncio

async def consumer(q):
    await q.get()

async def other(q):
    await q.get()

async def notified(condition):
    async with condition:
        await condition.wait()

async def main():
    queues = [asyncio.Queue() for _ in range(12)]
    kept = [asyncio.create_task(consumer(queues[i % 12])) for i in range(12 * 30 + 5)]  # round robin
    kept += [asyncio.create_task(other(queues[0])) for _ in range(7)]  # another group, the same queue
    condition = asyncio.Condition()
    kept += [asyncio.create_task(notified(condition)) for _ in range(4)]
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def test_waits_count_each_object_of_a_group_spread_over_many(spawn):
    """One group's waiters spread over twelve queues (more than the probe keeps at hand while
    it matches waiters to the objects found for the group before them), one queue waited on
    by a second group too, and a Condition's waiters: each object gets its own count, by state
    and by group."""
    target = spawn(SPREAD_WAITERS)
    for _ in range(2):  # the first look finds the objects; the second reads what it kept
        waits = target.request("waits")["waits"]
        queues = [w for w in waits if w["kind"] == "asyncio.queues.Queue"]
        waiting = sorted(w["waiting"] for w in queues)
        assert waiting == [30] * 7 + [31] * 4 + [31 + 7], str(waiting)  # 365 round robin, and 7
        [shared] = [w for w in queues if w["waiting"] == 38]
        assert shared["states"] == {"Queue.get": 38} and len(shared["groups"]) == 2
        conditions = [w for w in waits if w["kind"] == "asyncio.locks.Condition"]
        assert [(w["waiting"], w["states"]) for w in conditions] == [(4, {"Condition.wait": 4})]


MOVING_WAITERS = r'''
import asyncio, signal

async def consumer(queues):
    for q in queues:  # the same line waits on each queue in turn: the same group, another waiter
        await q.get()
    await asyncio.Event().wait()

async def main():
    first, second = asyncio.Queue(), asyncio.Queue()
    first.name, second.name = "first", "second"
    tasks = [asyncio.create_task(consumer([first, second])) for _ in range(3)]
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: [first.put_nowait(i) for i in range(3)])
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


@pytest.mark.parametrize("many", [False, True])
def test_waits_follow_a_task_to_what_it_waits_on_next(spawn, many):
    """What a task waits on is kept until a pass sees its waiter change: tasks that move from
    one queue to the next at the same line are found on the second.  ``many``: the passes of
    more than a quarter of a million tasks (their records kept from pass to pass)."""
    import os
    import signal

    setup = "import tasktop.probe.task_pass as task_pass; task_pass.SPLIT_COPIES = 0\n" if many else ""
    target = spawn(setup + MOVING_WAITERS)

    def queues() -> list:
        return [(w["id"], w["numbers"]["getters"], w["waiting"])
                for w in target.request("waits")["waits"] if w["kind"] == "asyncio.queues.Queue"]

    [(first, _, _)] = wait_until(lambda: queues() if queues() and queues()[0][1:] == (3, 3) else None,
                                 message="three consumers on the first queue")
    assert queues() == [(first, 3, 3)]  # a second look, from what the first one kept
    os.kill(target.pid, signal.SIGUSR1)
    [(second, _, _)] = wait_until(lambda: [q for q in queues() if q[0] != first],
                                  message="the consumers waiting on the second queue")
    assert queues() == [(second, 3, 3)]


GROUP_LIFETIMES = PRELUDE + '''
async def parked():
    await asyncio.Event().wait()

async def main():
    ts = [asyncio.ensure_future(parked()) for _ in range(5)]
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.Event().wait()

run(main)
'''


def test_a_group_reply_has_its_members_lifetimes(spawn):
    target = spawn(GROUP_LIFETIMES, args=("asyncio",))
    group = wait_until(lambda: next((g for g in target.groups() if g["count"] == 5), None), message="the group")
    page = target.request("group", id=group["id"])
    live = page["lifetimes"]["live"]
    assert live["count"] == 5 and live["longest_s"] >= live["median_s"] >= 0.3


EXPORTED = '''
import asyncio

async def consumer(q):
    await q.get()

async def done():
    return 1

async def main():
    q = asyncio.Queue()
    for i in range(7):
        q.put_nowait(i)
    big = asyncio.Queue()
    consumers = [asyncio.create_task(consumer(big)) for _ in range(3)]
    await asyncio.gather(*[asyncio.create_task(done()) for _ in range(4)])
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def test_the_exporter_has_endings_and_the_most_waited_on_objects(spawn, sockdir):
    from tasktop.exporter import collector

    target = spawn(EXPORTED)
    wait_until(lambda: (target.summary().get("ended") or {}).get("returned", 0) >= 4, message="endings drained")
    families = {f.name: f for f in collector.FleetCollector([sockdir], timeout=10).collect()}
    ended = {s.labels["outcome"]: s.value for s in families["tasktop_tasks_ended"].samples
             if s.labels["pid"] == str(target.pid) and s.name == "tasktop_tasks_ended_total"}
    assert ended["returned"] >= 4 and ended["cancelled"] == 0
    mine = [s for s in families["tasktop_wait_waiters"].samples if s.labels["pid"] == str(target.pid)]
    assert [(s.labels["kind"], s.value) for s in mine] == [("asyncio.Queue", 3), ("asyncio.Event", 1)]
    waiters = mine[0]
    assert waiters.labels["where"].startswith("consumer (")
    [items] = [s for s in families["tasktop_wait_queue_items"].samples if s.labels["pid"] == str(target.pid)]
    assert items.labels["object"] == waiters.labels["object"]
    assert items.value == 0  # the queue with items has no waiter: only waited-on objects are listed
