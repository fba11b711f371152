"""The probe names what every task and thread is blocked on, counts them exactly, and says
where each was created and for how long it has been blocked."""
from __future__ import annotations

import os
import signal
import sys

import pytest

from tasktop.wire.kernel import kernel_state
from tasktop.wire.stacks import is_unwalked

from conftest import wait_until

STATES_TARGET = r'''
import asyncio, os, socket, sys, threading, time, queue

def site(tag):  # the line numbers the test expects, found by marker
    for n, line in enumerate(open(__file__), 1):
        if line.rstrip().endswith("# site:" + tag):
            return n

async def consume(q):
    await q.get()

async def produce(q):
    await q.put("x")

async def sock_reader(loop, s):
    await loop.sock_recv(s, 100)

async def sock_acceptor(loop, s):
    await loop.sock_accept(s)

async def stream_reader(reader):
    await reader.read(100)

async def stream_writer(writer):
    writer.write(b"x" * 50_000_000)
    await writer.drain()

async def cond_waiter(cond):
    async with cond:
        await cond.wait()

async def sem_waiter(sem):
    async with sem:
        pass

async def lock_waiter(lock):
    async with lock:
        pass

async def child_proc():
    # It reads its stdin until we are gone, so it never outlives this target.
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import sys; sys.stdin.read()",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await proc.wait()

async def forever():
    await asyncio.get_running_loop().create_future()

async def awaiter(t):
    await t

async def gatherer():
    await asyncio.gather(forever(), forever())

async def waiter_for():
    await asyncio.wait_for(asyncio.get_running_loop().create_future(), 1000)

async def waiter_all(t):
    await asyncio.wait([t])

async def in_executor():
    await asyncio.get_running_loop().run_in_executor(None, time.sleep, 600)

KEEP = []  # asyncio holds tasks weakly: a cycle of tasks waiting on each other is garbage

async def main():
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()
    full = asyncio.Queue(maxsize=1)
    full.put_nowait(0)
    for _ in range(7):
        asyncio.create_task(consume(q))  # site:consume
    t0 = time.time()
    for _ in range(3):
        asyncio.create_task(produce(full))  # site:produce
    ev = asyncio.Event()
    for _ in range(4):
        asyncio.ensure_future(ev.wait())  # site:event
    lock = asyncio.Lock()
    await lock.acquire()
    for _ in range(2):
        loop.create_task(lock_waiter(lock))  # site:lock
    cond = asyncio.Condition()
    for _ in range(5):
        asyncio.create_task(cond_waiter(cond))
    sem = asyncio.Semaphore(0)
    for _ in range(6):
        asyncio.create_task(sem_waiter(sem))
    for _ in range(8):
        asyncio.create_task(asyncio.sleep(1000))  # site:sleep
    a, b = socket.socketpair()
    a.setblocking(False)
    asyncio.create_task(sock_reader(loop, a))
    lsock = socket.socket(); lsock.bind(("127.0.0.1", 0)); lsock.listen(); lsock.setblocking(False)
    asyncio.create_task(sock_acceptor(loop, lsock))
    c, d = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=c)
    asyncio.create_task(stream_reader(reader))
    e, f = socket.socketpair()
    e.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    _r2, writer2 = await asyncio.open_connection(sock=e)
    asyncio.create_task(stream_writer(writer2))
    asyncio.create_task(child_proc())
    target = asyncio.create_task(forever())
    KEEP.append(target)
    for _ in range(2):
        asyncio.create_task(awaiter(target))
    KEEP.append(asyncio.create_task(gatherer()))
    asyncio.create_task(waiter_for())
    asyncio.create_task(waiter_all(target))
    asyncio.create_task(in_executor())
    # threads
    tlock = threading.Lock(); tlock.acquire()
    threading.Thread(target=lambda: tlock.acquire(), name="t-lock", daemon=True).start()
    tq = queue.Queue()
    threading.Thread(target=tq.get, name="t-queue", daemon=True).start()
    tev = threading.Event()
    threading.Thread(target=tev.wait, name="t-event", daemon=True).start()
    g, h = socket.socketpair()
    threading.Thread(target=g.recv, args=(10,), name="t-recv", daemon=True).start()
    threading.Thread(target=time.sleep, args=(600,), name="t-sleep", daemon=True).start()
    for _ in range(20):
        await asyncio.sleep(0.01)
    print("ready", t0, flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def _group(data: dict, state: str, func: str | None = None, kind: str = "task") -> dict:
    found = [g for g in data["groups"] if g["kind"] == kind and g["state"] == state
             and (func is None or g["stack"][-1]["func"].split(".")[-1] == func)]
    assert len(found) == 1, (state, func, [(g["state"], g["count"], g["stack"][:2]) for g in data["groups"]])
    return found[0]


@pytest.fixture(scope="module")
def states_target(tmp_path_factory):
    # One target for all state checks: starting it is the slow part.
    import subprocess, tempfile, os, shutil
    from conftest import Target, target_env

    directory = tempfile.mkdtemp(prefix="tt-", dir="/tmp")
    script = tmp_path_factory.mktemp("states") / "states_target.py"
    script.write_text(STATES_TARGET)
    proc = subprocess.Popen([sys.executable, str(script)], env=target_env(directory),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = Target(proc, directory, str(script))
    line = proc.stdout.readline()
    assert "ready" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    target.ready_at = float(line.split()[1])
    wait_until(lambda: os.path.exists(target.path), message="socket")
    yield target
    target.stop()
    shutil.rmtree(directory, ignore_errors=True)


def _site(target, tag: str) -> int:
    for n, line in enumerate(open(target.script), 1):
        if line.rstrip().endswith("# site:" + tag):
            return n
    raise AssertionError(tag)


@pytest.mark.parametrize("state,func,count", [
    ("Queue.get", "consume", 7),
    ("Queue.put", "produce", 3),
    ("Event.wait", "wait", 4),
    ("Lock.acquire", "lock_waiter", 2),
    ("Condition.wait", "cond_waiter", 5),
    ("Semaphore.acquire", "sem_waiter", 6),
    ("sleep", "sleep", 8),
    ("socket read", "sock_reader", 1),
    ("socket accept", "sock_acceptor", 1),
    ("stream read", "stream_reader", 1),
    ("stream write", "stream_writer", 1),
    ("subprocess wait", "child_proc", 1),
    ("await task", "awaiter", 2),
    ("gather", "gatherer", 1),
    ("wait_for", "waiter_for", 1),
    ("wait", "waiter_all", 1),
    ("executor", "in_executor", 1),
    ("future", "forever", 3),  # the awaited target and gather's two children
])
def test_task_states_and_exact_counts(states_target, state, func, count):
    data = states_target.summary()
    group = _group(data, state, func)
    assert group["count"] == count


def test_thread_states(states_target):
    data = states_target.request("threads")
    by_name = {t["name"]: t for t in data}
    assert by_name["t-lock"]["state"] == "Lock.acquire"
    assert by_name["t-queue"]["state"] == "Queue.get"
    assert by_name["t-event"]["state"] == "Event.wait"
    assert by_name["t-recv"]["state"] == "socket read"
    assert by_name["t-sleep"]["state"] == "sleep"
    assert by_name["MainThread"]["state"] in ("idle loop", "running")
    assert "tasktop-probe" not in by_name  # the probe does not count itself
    assert all(t["cpu_s"] is not None and t["native_id"] for t in data)
    assert by_name["t-lock"]["kernel"]["syscall"] == "futex"


BUSY_THREAD = r'''
import asyncio, threading

def spin():
    while True:
        pass

async def main():
    lock = threading.Lock()
    lock.acquire()
    threading.Thread(target=lock.acquire, name="t-lock", daemon=True).start()
    threading.Thread(target=spin, name="t-busy", daemon=True).start()
    await asyncio.sleep(0.1)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def test_a_busy_thread_is_running_though_it_waits_for_the_gil_while_the_probe_looks(spawn):
    """While the probe looks it holds the GIL, so a thread running Python waits for it in a
    futex, as a thread parked on a lock does: seen again after it was scheduled, it is running;
    the parked one is on its lock."""
    target = spawn(BUSY_THREAD)
    states = []
    for _ in range(10):
        by_name = {t["name"]: t for t in target.request("threads")}
        busy = by_name["t-busy"]
        states.append((busy["state"], by_name["t-lock"]["state"]))
        # It has run since this look (its CPU time moved on): the next look must tell.
        wait_until(lambda: kernel_state(busy["native_id"], target.pid)["cpu_s"] > busy["cpu_s"],
                   message="t-busy running")
    assert states[1:] == [("running", "Lock.acquire")] * 9, states


def test_creation_sites_and_parent(states_target):
    data = states_target.full()
    for state, func, tag in [("Queue.get", "consume", "consume"), ("Queue.put", "produce", "produce"),
                             ("Event.wait", "wait", "event"), ("Lock.acquire", "lock_waiter", "lock"),
                             ("sleep", "sleep", "sleep")]:
        group = _group(data, state, func)
        assert len(group["created_by"]) == 1, group["created_by"]
        site = group["created_by"][0]
        assert site["count"] == group["count"]
        assert site["stack"][0]["func"] == "main"
        assert site["stack"][0]["line"] == _site(states_target, tag)
        assert site["stack"][0]["file"] == states_target.script
    main = [t for t in data["tasks"] if t["stack"] and t["stack"][-1]["func"] == "main"]
    assert len(main) == 1
    consumers = [t for t in data["tasks"] if t["group"] == _group(data, "Queue.get", "consume")["id"]]
    assert len(consumers) == 7
    assert {t["created_in"] for t in consumers} == {main[0]["id"]}
    assert all(t["created_by"][0]["line"] == _site(states_target, "consume") for t in consumers)


def test_awaiter_graph(states_target):
    data = states_target.full()
    tasks = {t["id"]: t for t in data["tasks"]}
    awaiters = [t for t in data["tasks"] if t["state"] == "await task"]
    target_id = awaiters[0]["awaiting"]
    assert {t["awaiting"] for t in awaiters} == {target_id}
    assert set(tasks[target_id]["awaited_by"]) >= {t["id"] for t in awaiters}
    gatherer = [t for t in data["tasks"] if t["state"] == "gather"][0]
    assert len(gatherer["awaiting_all"]) == 2
    for child in gatherer["awaiting_all"]:
        assert gatherer["id"] in tasks[child]["awaited_by"]
    detail = states_target.request("task", id=awaiters[0]["id"])
    assert detail["awaiting_chain"][0]["id"] == target_id
    assert detail["stack"][0]["source"] == "await t"


def test_totals_match_lists(states_target):
    data = states_target.full()
    assert data["totals"]["tasks"] == len(data["tasks"]) == sum(
        g["count"] for g in data["groups"] if g["kind"] == "task")
    assert data["totals"]["threads"] == len(data["threads"]) == sum(
        g["count"] for g in data["groups"] if g["kind"] == "thread")
    # 7+3+4+2+5+6+8, then sock, accept, stream r/w, subprocess, target, 2 awaiters, gatherer,
    # wait_for, wait, executor; the gatherer's 2 children; and main itself
    assert data["totals"]["tasks"] == 35 + 12 + 2 + 1
    group_ids = {g["id"] for g in data["groups"]}
    assert all(t["group"] in group_ids for t in data["tasks"])


def test_blocked_durations_within_one_interval(states_target):
    # Long enough after t0 that a blocked time counted from a later pass than the first one
    # to see the tasks waiting falls outside the slack (0.6 s: the passes of a loaded machine
    # come late; one in CI was 0.3 s late).
    data = wait_until(lambda: (lambda d: d if d["time"] - states_target.ready_at >= 2.0 else None)(
        states_target.summary()), message="two seconds since the consumers began to wait")
    interval = data["probe"]["interval_s"]
    expected = data["time"] - states_target.ready_at
    group = _group(data, "Queue.get", "consume")
    # Blocked since just after t0; seen so within one sampling interval (plus scheduling slack).
    assert expected - interval - 0.6 <= group["blocked_min_s"] <= group["blocked_max_s"] <= expected + 0.05


def test_group_ids_stable_and_group_paging(states_target):
    first = states_target.summary()
    second = states_target.summary()
    ids = lambda d: {(g["state"], g["count"]): g["id"] for g in d["groups"] if g["kind"] == "task"}
    assert ids(first) == ids(second)
    gid = _group(first, "sleep", "sleep")["id"]
    page1 = states_target.request("group", id=gid, offset=0, limit=5)
    page2 = states_target.request("group", id=gid, offset=5, limit=5)
    assert page1["total"] == 8 and len(page1["items"]) == 5 and len(page2["items"]) == 3
    assert not {t["id"] for t in page1["items"]} & {t["id"] for t in page2["items"]}
    assert page1["group"]["stack"][0]["source"].startswith(("return await future", "await future",
                                                            "return await", "await"))


RUNNING_TARGET = r'''
import asyncio, time

async def hog():
    while True:
        time.sleep(0.05)      # busy: the task stays current while the probe looks
        await asyncio.sleep(0)

async def yielder():
    while True:
        await asyncio.sleep(0)

async def main():
    asyncio.create_task(hog())
    for _ in range(3):
        asyncio.create_task(yielder())
    await asyncio.sleep(0.1)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def test_running_and_ready(spawn):
    target = spawn(RUNNING_TARGET)

    def seen():
        data = target.summary()
        states = {(g["state"], g["stack"][-1]["func"].split(".")[-1]) for g in data["groups"] if g["kind"] == "task"}
        return ("running", "hog") in states and ("ready", "yielder") in states
    wait_until(seen, message="a running hog and ready yielders")


UNHOOKED_TARGET = r'''
import asyncio, signal

async def direct():  # made by asyncio.Task(...), which no task factory sees
    await asyncio.Event().wait()

async def done_at_once():
    return 1

async def hooked(awaited=None):
    await (awaited if awaited is not None else asyncio.Event().wait())

async def main():
    loop = asyncio.get_running_loop()
    made = [asyncio.Task(direct()) for _ in range(4)]
    # One more such task, first met by the probe as the task a recorded task awaits.
    made.append(asyncio.Task(direct()))
    kept = [asyncio.create_task(hooked()) for _ in range(2)]  # only weakly held by asyncio
    kept.append(asyncio.create_task(hooked(made[-1])))
    held = []

    def more():
        made.extend(asyncio.Task(direct()) for _ in range(4))
        if hasattr(asyncio, "eager_task_factory"):
            # As many tasks recorded by us that asyncio no longer holds (they finished in
            # their eager first step): the two sets change size alike.
            loop.set_task_factory(asyncio.eager_task_factory)
            held.extend(loop.create_task(done_at_once()) for _ in range(4))
            loop.set_task_factory(None)

    loop.add_signal_handler(signal.SIGUSR1, more)
    loop.add_signal_handler(signal.SIGUSR2, lambda: [made.pop().cancel() for _ in range(2)])
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


@pytest.mark.parametrize("split", [False, True])
def test_tasks_no_factory_saw_are_counted_from_the_first_summary_on(spawn, split):
    """A pass walks the probe's own records, then looks in asyncio's registry for tasks they
    miss: tasks made without the loop's factory are found on the pass they appear in (also
    one that a recorded task awaits, whose record the pass itself makes), and tasks that end
    are gone from the next.  ``split``: the loop gets the GIL between the two copies, as
    above a quarter of a million tasks (the records kept in small lists, the registry copied
    a slice at a time)."""
    setup = ("import tasktop.probe.task_pass as task_pass; task_pass.SPLIT_COPIES = 0; "
             "import tasktop.probe.record_lists as record_lists; record_lists.KEPT_CHUNK = 4; "
             "import tasktop.probe.registry as registry; "
             "registry.CHUNK = registry.LOOKUP_CHUNK = 2\n") if split else ""
    target = spawn(setup + UNHOOKED_TARGET)

    def counts() -> dict:
        data = target.summary()
        assert data["totals"]["tasks"] == sum(g["count"] for g in target.groups(data))
        return target.task_counts(data)

    first = counts()
    assert (first["direct"], first["hooked"], first["main"]) == (5, 3, 1), first
    assert counts() == first  # the next pass finds them in its records
    os.kill(target.pid, signal.SIGUSR1)
    wait_until(lambda: counts()["direct"] == 9, message="four more tasks made without the factory")
    os.kill(target.pid, signal.SIGUSR2)
    wait_until(lambda: counts()["direct"] == 7, message="two of them cancelled")
    assert counts()["hooked"] == 3


ATTACHED_TARGET = r"""
import asyncio, signal
import tasktop.probe
import tasktop.probe.task_pass as task_pass

async def direct():  # made by asyncio.Task(...), which no task factory sees
    await asyncio.Event().wait()

async def marker():
    await asyncio.Event().wait()

async def main():
    made = [asyncio.Task(direct()) for _ in range(4)]  # before the probe: as when attaching
    await asyncio.sleep(0)
    # As if there were more tasks than C's task lists may be read for (3.14+).
    task_pass.LINKED_EVERY_PASS = task_pass.LINKED_MOST = 0
    task_pass.RECHECK = 0.0  # and no look-up left for later
    assert tasktop.probe.start(), tasktop.probe.last_error()

    def more():
        made.extend(asyncio.Task(direct()) for _ in range(4))
        made.append(asyncio.create_task(marker()))  # seen by a pass that can see the four

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, more)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_tasks_no_factory_saw_above_the_linked_limit(spawn):
    """An attached probe finds the tasks made before it on its first pass, on every Python.
    From 3.14 such tasks are only in C's task lists, read in one C call over every task, which
    is not done past LINKED_MOST tasks (224 ms at a million): made then, they go unseen (unless
    a recorded task awaits one); before 3.14 asyncio's own sets show them all."""
    target = spawn(ATTACHED_TARGET, TASKTOP="0")

    def count(func: str) -> int:
        return target.task_counts().get(func, 0)

    assert count("direct") == 4
    os.kill(target.pid, signal.SIGUSR1)
    wait_until(lambda: count("marker") == 1, message="the task made after the four")
    assert count("direct") == (4 if sys.version_info >= (3, 14) else 8)


CHURN_TARGET = r'''
import asyncio

async def parked():
    await asyncio.Event().wait()

async def brief():
    await asyncio.sleep(0)

async def main():
    kept = [asyncio.create_task(parked()) for _ in range(100)]
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    while True:  # tasks made and freed all the time: their records come and go
        for _ in range(50):
            asyncio.create_task(brief())
        await asyncio.sleep(0.001)

asyncio.run(main())
'''


@pytest.mark.parametrize("many", [False, True])
def test_counts_stay_exact_while_tasks_come_and_go(spawn, many):
    """Passes over a loop that makes and frees tasks all the time count the parked ones
    exactly, pass after pass.  ``many``: the passes of more than a quarter of a million tasks,
    which keep their lists of records from pass to pass (here small ones, so that
    lists fill, empty and are dropped), add the new ones and leave out those of freed tasks."""
    setup = ("import tasktop.probe.task_pass as task_pass; task_pass.SPLIT_COPIES = 0; "
             "import tasktop.probe.record_lists as record_lists; record_lists.KEPT_CHUNK = 64\n") if many else ""
    target = spawn(setup + CHURN_TARGET)
    walked = 0
    for _ in range(20):
        data = target.summary()
        tasks = [g for g in data["groups"] if g["kind"] == "task"]
        assert data["totals"]["tasks"] == sum(g["count"] for g in tasks)
        # A summary whose time for walking ran out (a loaded machine) counts the parked tasks it
        # did not walk in the pseudo-group of waiting tasks: the only other waiting ones.
        parked = sum(g["count"] for g in tasks if g["stack"][-1]["func"].endswith("parked"))
        unwalked = sum(g["count"] for g in tasks if is_unwalked(g["stack"]) and g["state"] == "waiting")
        assert parked + unwalked == 100, [(g["state"], g["count"], g["stack"][-1]["func"]) for g in tasks]
        walked = max(walked, parked)
    assert walked == 100  # and their chains are walked: the pseudo-group is a stage


TWO_RUNS_TARGET = r'''
import asyncio

kept = []

async def park():
    await asyncio.Event().wait()

async def make_one():  # runs inside the loop's Handle._run, like most task creation
    kept.append(asyncio.create_task(park()))
    await asyncio.sleep(0)

async def first():
    await make_one()

async def second():
    await make_one()
    print("ready", flush=True)
    await asyncio.Event().wait()

def run_first():
    asyncio.run(first())

def run_second():
    asyncio.run(second())

run_first()
run_second()
'''


def test_creation_stack_beyond_the_loop_is_of_the_run_that_made_the_task(spawn):
    """The frames below the loop's ``Handle._run`` are walked once per run of a loop and kept:
    a second ``asyncio.run`` on the same thread, from another function, shows its own caller."""
    target = spawn(TWO_RUNS_TARGET, TASKTOP_CREATION_DEPTH="10")
    (park,) = [t for t in target.full()["tasks"] if t["stack"][-1]["func"] == "park"]
    funcs = [frame["func"] for frame in park["created_by"]]
    assert funcs[:3] == ["make_one", "second", "run_second"], funcs
    assert "run_first" not in funcs


MERGED_SITES_TARGET = r"""
import asyncio

kept = []

async def park():
    await asyncio.Event().wait()

def spawn():  # shown as one creation site: the depth is 1
    kept.append(asyncio.create_task(park()))

def spawn_many(n):
    for _ in range(n):
        kept.append(asyncio.create_task(park()))

async def main():
{calls}
    await asyncio.sleep(0)  # every task made has taken its first step: parked, not ready
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_creators_of_a_site_made_from_many_lines(spawn):
    """``spawn()`` called from twelve lines is one site shown (creation depth 1) but twelve
    recorded, each smaller than the ten sites of ``spawn_many``: its creating task is still
    named."""
    calls = "\n".join(["    spawn(); spawn()"] * 12 + [f"    spawn_many(20)  # {i}" for i in range(10)])
    target = spawn(MERGED_SITES_TARGET.replace("{calls}", calls), TASKTOP_CREATION_DEPTH="1")
    data = target.full()
    main_id = next(t["id"] for t in data["tasks"] if t["stack"][-1]["func"] == "main")
    (group,) = [g for g in data["groups"] if g["kind"] == "task" and g["stack"][-1]["func"] == "park"]
    created = {c["stack"][0]["func"]: c for c in group["created_by"]}
    assert created["spawn"]["count"] == 24 and created["spawn"]["in_tasks"] == [main_id]
    assert created["spawn_many"]["count"] == 200 and created["spawn_many"]["in_tasks"] == [main_id]


TWO_DISPATCHERS_TARGET = r"""
import asyncio

class TwoPathLoop(asyncio.SelectorEventLoop):
    # Runs some handles from another place, as loops built on a GUI toolkit's timers do.
    def _run_once(self):
        if self._ready and getattr(self._ready[0]._callback, "__name__", "") == "via_b":
            return self.dispatch_b(self._ready.popleft())
        return super()._run_once()

    def dispatch_b(self, handle):
        handle._run()

async def park():
    await asyncio.Event().wait()

kept = []

def via_a():
    kept.append(asyncio.get_running_loop().create_task(park(), name="a"))

def via_b():
    kept.append(asyncio.get_running_loop().create_task(park(), name="b"))

async def main():
    loop = asyncio.get_running_loop()
    for callback in (via_a, via_b, via_a):
        loop.call_soon(callback)
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await asyncio.Event().wait()

TwoPathLoop().run_until_complete(main())
"""


def test_creation_stacks_of_a_loop_that_runs_callbacks_from_two_places(spawn):
    """The frames below ``Handle._run`` are kept only for asyncio's own ``_run_once``: a loop
    that runs handles from elsewhere too gets each task's own stack."""
    target = spawn(TWO_DISPATCHERS_TARGET, TASKTOP_CREATION_DEPTH="8")
    below = {}
    for task in target.full()["tasks"]:
        if task["name"] in ("a", "b"):
            funcs = [frame["func"] for frame in task["created_by"]]
            below.setdefault(task["name"], set()).add("TwoPathLoop.dispatch_b" in funcs or "dispatch_b" in funcs)
    assert below == {"a": {False}, "b": {True}}
