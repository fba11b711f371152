"""The probe in the life of a process: start-up hook, options, stalls, loops in threads, fork,
exit — and the host's own behaviour left exactly as it was."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import pytest

from conftest import target_env, wait_until
from tasktop.wire import paths
from tasktop.wire.kernel import SYSCALL_STATES
from tasktop.client.probe_client import ProbeClient

HOST = r'''
import asyncio, sys, threading, queue, warnings

async def work(n):
    await asyncio.sleep(0.01 * n)
    return n * n

async def main():
    # -X dev logs any step over 0.1 s: on a loaded machine one can be, probe or not.
    asyncio.get_running_loop().slow_callback_duration = 60
    results = await asyncio.gather(*(work(n) for n in range(20)))
    q = queue.Queue()
    t = threading.Thread(target=lambda: q.put(sum(results)))
    t.start(); t.join()
    print("sum", q.get())
    print("to stderr?", file=sys.stdout)

asyncio.run(main())
sys.exit(3)
'''


@pytest.mark.parametrize("flags", [[], ["-W", "error"], ["-X", "dev"]])
def test_host_behaviour_unchanged(sockdir, tmp_path, flags):
    script = tmp_path / "host.py"
    script.write_text(HOST)
    plain_env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    plain = subprocess.run([sys.executable, *flags, str(script)], env=plain_env,
                           capture_output=True, text=True, timeout=60)
    probed = subprocess.run([sys.executable, *flags, str(script)], env=target_env(sockdir),
                            capture_output=True, text=True, timeout=60)
    assert plain.returncode == probed.returncode == 3
    assert plain.stdout == probed.stdout == "sum 2470\nto stderr?\n"
    assert probed.stderr == plain.stderr == ""
    assert os.listdir(sockdir) == []  # the socket went away with the process


def test_no_probe_unless_asked(sockdir, tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import sys; print('tasktop.probe.server' in sys.modules, 'asyncio' in sys.modules)")
    for value in (None, "", "0"):
        env = target_env(sockdir)
        env.pop("TASKTOP")
        if value is not None:
            env["TASKTOP"] = value
        out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == "False False", value  # the hook imported nothing
    out = subprocess.run([sys.executable, str(script)], env=target_env(sockdir), capture_output=True,
                         text=True)
    assert out.stdout.strip().startswith("True")


STALL = r'''
import asyncio, time

def compress_archive():
    time.sleep(0.6)   # blocking call inside a coroutine: the loop stalls

async def main():
    print("ready", flush=True)
    while True:
        await asyncio.sleep(0.3)
        compress_archive()

asyncio.run(main())
'''


def test_stalls_are_caught_with_the_blocking_function(spawn):
    target = spawn(STALL)

    def stalled():
        loops = target.summary()["loops"]
        stalls = [s for s in loops[0]["stalls"] if s["stack"]]
        return stalls if len(stalls) >= 2 else None
    stalls = wait_until(stalled, timeout=20, message="two stalls")
    for stall in stalls:
        assert stall["stack"][0]["func"] == "compress_archive"
        assert stall["duration_ms"] >= 100
        assert stall["duration_ms"] < 5000
    assert target.request("stalls")[0]["stack"][0]["func"] == "compress_archive"


EARLY_STALL = r'''
import asyncio, threading, time
import tasktop.probe.loops as loops
loops.REFRESH_EVERY = 3600.0  # after the first, only a loop starting makes the heartbeat look

def load_settings():
    time.sleep(1.5)   # blocks the new loop from its first second on: longer than a starved
                      # probe's heartbeats are apart, so a loaded machine sees it too

def side():
    async def main():
        await asyncio.sleep(0.15)
        load_settings()
        print("ready", flush=True)
        await asyncio.sleep(1000)
    asyncio.run(main())

async def main():
    await asyncio.sleep(0.3)
    threading.Thread(target=side, name="side", daemon=True).start()
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def test_a_stall_in_a_new_loops_first_second_is_caught(spawn):
    """The heartbeat looks for new loops once a second, but at once when a loop starts
    running: a loop started later is watched by its first stall, samples minutes apart."""
    target = spawn(EARLY_STALL, TASKTOP_INTERVAL="600")  # no sample to look for loops either

    def stalled():
        side = [loop for loop in target.summary()["loops"] if loop["thread_name"] == "side"]
        stalls = [s for s in side[0]["stalls"] if s["stack"]] if side else []
        return stalls or None
    stalls = wait_until(stalled, timeout=10, message="the early stall")
    assert stalls[0]["stack"][0]["func"] == "load_settings"


LOOP_RUN_LATER = r'''
import asyncio, time

def load_settings():
    time.sleep(0.6)       # the loop's first iteration blocks: a stall of 0.6 s

async def serve():
    load_settings()
    await asyncio.sleep(1000)

loop = asyncio.new_event_loop()   # made now (its hand-off timer set), run 2 s later
time.sleep(2.0)
print("ready", flush=True)
loop.run_until_complete(serve())
'''


def stalls_of(target) -> list | None:
    """Every stall of every loop of ``target`` the probe has noted, None while there is none."""
    return [s for loop in target.summary()["loops"] for s in loop["stalls"]] or None


def test_a_loop_run_long_after_it_was_made_has_a_stall_of_its_own_length(spawn):
    """A loop's timer is set when the loop is made; a loop first run two seconds later must
    not have its first iteration's stall counted from then (2.6 s instead of 0.6 s)."""
    target = spawn(LOOP_RUN_LATER, TASKTOP_STALL_MS="200")
    stalls = wait_until(lambda: stalls_of(target), timeout=15, message="the first iteration's stall")
    assert 500 <= stalls[0]["duration_ms"] < 1500, stalls


NESTED_RUN = r'''
import asyncio, time
from asyncio import events

def export_report():
    time.sleep(1.0)   # a stall...
    # ...after which the loop is "started" again while it runs, as nest_asyncio's nested
    # run_until_complete does: no start, so the stall stays one
    events._set_running_loop(asyncio.get_running_loop())

async def main():
    print("ready", flush=True)
    await asyncio.sleep(0.3)
    export_report()
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def test_a_running_loop_set_running_again_keeps_its_stall(spawn):
    target = spawn(NESTED_RUN, TASKTOP_STALL_MS="200")
    stalls = wait_until(lambda: stalls_of(target), timeout=15, message="the stall before the nested start")
    assert 900 <= stalls[0]["duration_ms"] < 3000, stalls


STARVED = r"""
import signal, time
import tasktop.probe.server as server
import tasktop.probe.loops as loops
server.STARVED_LATE = -1.0  # every wake-up of the probe counts as late: it thinks itself starved
looks, started = [0], time.monotonic()
look = loops.LoopWatches.heartbeat

def counted(self, now):
    looks[0] += 1
    look(self, now)

loops.LoopWatches.heartbeat = counted
signal.signal(signal.SIGUSR1, lambda *_: print("looks", looks[0], time.monotonic() - started, flush=True))
"""


def test_a_probe_that_thinks_itself_starved_still_names_a_short_stall(spawn):
    """While the probe's wake-ups come late (a loop starving it of the GIL, or a loaded
    machine), it looks at the loops' heartbeats once a second instead of about every 100 ms; a
    loop's timer found overdue is looked at again when it would be a stall all the same, so
    that a stall shorter than a second still has its blocking code."""
    target = spawn(STARVED + STALL.replace("time.sleep(0.6)", "time.sleep(0.4)"))

    def named() -> list | None:
        stalls = [s for s in target.summary()["loops"][0]["stalls"] if s["stack"]]
        return stalls or None
    stalls = wait_until(named, timeout=30, message="a stall with its stack")
    assert stalls[0]["stack"][0]["func"] == "compress_archive"

    def looks_a_second() -> float | None:  # once the target has run for 2 s
        os.kill(target.pid, signal.SIGUSR1)
        _word, looks, seconds = target.proc.stdout.readline().split()
        return int(looks) / float(seconds) if float(seconds) > 2.0 else None
    assert wait_until(looks_a_second, timeout=30, interval=0.5) < 5  # not 10 a second


POSTS = r"""
import asyncio, signal, time

posts, started = [0], time.monotonic()
post = asyncio.BaseEventLoop.call_soon_threadsafe

def counted(self, callback, *args, **kwargs):
    if getattr(callback, "__name__", "") != "_turn":  # passes' hand-offs: not the heartbeat's
        posts[0] += 1
    return post(self, callback, *args, **kwargs)

asyncio.BaseEventLoop.call_soon_threadsafe = counted
signal.signal(signal.SIGUSR1, lambda *_: print("posts", posts[0], time.monotonic() - started, flush=True))

async def main():
    print("ready", flush=True)
    while True:
        await asyncio.sleep(0.001)

asyncio.run(main())
"""


def test_the_heartbeat_posts_nothing_to_the_loop_and_measures_its_lag(spawn):
    """A loop's lag is how late its hand-off timer runs: the probe learns it without a
    callback posted from its thread (a self-pipe byte and a wake-up of the loop, 20 a second)."""
    target = spawn(POSTS)

    def lag() -> tuple | None:
        loops = target.summary()["loops"]
        return (loops[0]["lag_ms"],) if loops and loops[0]["lag_ms"] is not None else None
    [lag_ms] = wait_until(lag, message="a lag measured")
    assert 0.0 <= lag_ms < 100.0

    def posts_a_second() -> tuple | None:  # once the target has run for 2 s
        os.kill(target.pid, signal.SIGUSR1)
        _word, posts, seconds = target.proc.stdout.readline().split()
        return (int(posts) / float(seconds),) if float(seconds) > 2.0 else None
    # At start the probe may post its factory and timer.
    [rate] = wait_until(posts_a_second, timeout=30, interval=0.5)
    assert rate < 3  # not 20 a second


BUSY_LOOP = r'''
import asyncio, threading

async def blip():
    await asyncio.sleep(0)

async def churn():
    while True:  # short iterations: the loop lets go of the GIL every few hundred microseconds
        for _ in range(100):
            asyncio.ensure_future(blip())
        await asyncio.sleep(0)

async def parked():
    await asyncio.Event().wait()

async def main():
    kept = [asyncio.create_task(parked()) for _ in range(3)]
    churning = asyncio.create_task(churn())
    print("ready", flush=True)
    await asyncio.Event().wait()

threading.Thread(target=threading.Event().wait, name="idle-worker", daemon=True).start()
asyncio.run(main())
'''


def test_probe_answers_while_a_busy_loop_keeps_taking_the_gil(spawn):
    """A loop that releases the GIL on every short iteration and takes it straight back
    starves any other thread waiting for it (CPython asks the holder to let go only after 5 ms
    without a switch).  Before the loop handed the GIL over, a snapshot here took 10 to 50
    seconds; now it takes tens of milliseconds, so a 5 s client timeout leaves a wide margin."""
    target = spawn(BUSY_LOOP)
    with ProbeClient(target.path, timeout=5.0) as client:
        for _ in range(5):
            data = client.full()
            parked = [t for t in data["tasks"] if "parked" in [f["func"] for f in t["stack"]]]
            assert len(parked) == 3
            assert "idle-worker" in [t["name"] for t in data["threads"]]
            assert client.request("summary")["totals"]["loops"] == 1


HANDING_OFF = r'''
import asyncio
from tasktop import probe
from tasktop.probe import handoff

async def main():
    await asyncio.sleep(0.3)  # the probe runs, its hand-off timer on this loop
    # The timer finds the probe starved and sleeps to let it in: here for good, so that the
    # probe looks while the loop thread is in the timer, as it does under load.
    handoff.SLICE = 3600
    probe._server.handoff.check = lambda now: (True, True)
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
'''


def test_a_loop_thread_letting_the_probe_in_is_shown_running_without_the_probe_s_frame(spawn):
    target = spawn(HANDING_OFF)

    def main_thread():
        (main,) = [t for t in target.request("threads") if t["name"] == "MainThread"]
        return main if SYSCALL_STATES.get(main["kernel"].get("syscall") or "") == "sleep" else None
    main = wait_until(main_thread, message="the loop thread in the hand-off")
    assert main["state"] == "running", main
    funcs = [f["func"].split(".")[-1] for f in main["stack"]]  # qualified from 3.11
    assert "_tick" not in funcs and funcs[:2] == ["_run", "_run_once"], funcs  # the loop's frames kept



FINALIZERS_LET_GO = r'''
import asyncio, gc, queue, sys, threading, time

sys.setswitchinterval(0.0001)  # the GIL changes hands as often as it can
gc.set_threshold(20, 3, 3)     # and the collector runs often, in whichever thread allocates
made = [0]

class Finalized:
    def __init__(self):
        made[0] += 1
        if made[0] % 10 == 0:
            self.me = self     # a cycle: freed by the collector, which runs its finalizer
    def __del__(self):
        inner(3)
        time.sleep(0)          # lets go of the GIL with this frame on top

def inner(n):
    return inner(n - 1) if n else 0

def deep(n):
    held = Finalized()
    return deep(n - 1) if n else [Finalized() for _ in range(10)]

def numbers():
    while True:
        Finalized()
        yield inner(2)

def worker():
    made_by = numbers()
    while True:
        deep(25)
        next(made_by)
        time.sleep(0.0003)

async def leaf(i):
    deep(15)
    await asyncio.sleep(0)
    if i % 97 == 0:
        time.sleep(0.15)       # a stall, its stack deep
    return i

async def main():
    for _ in range(2):
        threading.Thread(target=worker, daemon=True).start()
    threading.Thread(target=queue.Queue().get, name="blocked", daemon=True).start()
    print("ready", flush=True)
    while True:
        await asyncio.gather(*(leaf(i) for i in range(60)))

asyncio.run(main())
'''


def test_reading_other_threads_stacks_never_crashes_a_host_whose_finalizers_let_go_of_the_gil(spawn):
    """On 3.11 making a frame object for another thread's frame (``f_back``,
    ``sys._current_frames()``) could run the collector, whose finalizers handed the GIL to that
    thread, which returned from the frame being read: the host died of a segfault in the
    probe's first seconds here (see probe/foreign_frames.py).  Every walk of other threads'
    stacks runs here, many times: the background samples' thread rows and stalled loops'
    stacks, and a client's summaries, waits and leak verdicts."""
    target = spawn(FINALIZERS_LET_GO, TASKTOP_INTERVAL="0.05", TASKTOP_STALL_MS="20")
    with ProbeClient(target.path, timeout=30.0) as client:
        for _ in range(50):
            assert client.request("summary")["totals"]["threads"] >= 4
            client.request("waits")
            client.request("verdicts")

        def stalled_in_leaf():
            return any(f["func"] == "leaf" for s in client.request("stalls") for f in s["stack"])

        wait_until(stalled_in_leaf, message="a stalled loop's stack read")
    assert target.proc.poll() is None, target.stop()


LOOP_THREADS = r'''
import asyncio, threading

async def side_worker(ev):
    await ev.wait()

def run_side(name, n):
    async def main():
        ev = asyncio.Event()
        tasks = []
        for _ in range(n):
            tasks.append(asyncio.create_task(side_worker(ev)))
        await asyncio.sleep(1000)
    asyncio.run(main())

for name, n in (("side-a", 3), ("side-b", 5)):
    threading.Thread(target=run_side, args=(name, n), name=name, daemon=True).start()

async def main():
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(1000)
asyncio.run(main())
'''


def test_loops_in_other_threads(spawn):
    target = spawn(LOOP_THREADS)

    def three_loops():
        data = target.full()
        measured = all(loop["lag_ms"] is not None for loop in data["loops"])  # each timer ran
        return data if len(data["loops"]) == 3 and data["totals"]["tasks"] == 1 + 4 + 6 and measured else None
    data = wait_until(three_loops, message="three loops, each with its lag")
    by_thread = {loop["thread_name"]: loop for loop in data["loops"]}
    assert by_thread["side-a"]["tasks"] == 4 and by_thread["side-b"]["tasks"] == 6
    assert by_thread["MainThread"]["tasks"] == 1
    workers = [g for g in data["groups"] if g["kind"] == "task" and g["stack"][-1]["func"] == "side_worker"]
    assert sum(g["count"] for g in workers) == 8
    site = workers[0]["created_by"][0]["stack"][0]
    assert "main" in site["func"] and site["file"] == target.script


FORK = r'''
import asyncio, os, sys, time

async def child_main(parent):
    ev = asyncio.Event()
    for _ in range(4):
        asyncio.create_task(ev.wait())
    while os.getppid() == parent:   # leave with the parent, however it ends
        await asyncio.sleep(0.1)

async def parent_main():
    ev = asyncio.Event()
    for _ in range(2):
        asyncio.create_task(ev.wait())
    await asyncio.sleep(1000)

parent = os.getpid()
pid = os.fork()
if pid == 0:
    asyncio.run(child_main(parent))
    os._exit(0)
else:
    print("ready", pid, flush=True)
    asyncio.run(parent_main())
'''


def test_forked_child_gets_its_own_probe(spawn):
    target = spawn(FORK, wait=False)
    line = target.proc.stdout.readline()
    assert line.startswith("ready"), line
    child = int(line.split()[1])
    wait_until(lambda: os.path.exists(target.path), message="the parent's socket")
    child_path = paths.socket_path(child, target.directory)
    wait_until(lambda: os.path.exists(child_path), message="the child's socket")

    def tasks_of(path, n):
        with ProbeClient(path) as client:
            data = client.summary()
        return data if data["totals"]["tasks"] == n else None
    child_data = wait_until(lambda: tasks_of(child_path, 5), message="child's 4+1 tasks")
    assert child_data["process"]["pid"] == child
    parent_data = wait_until(lambda: tasks_of(target.path, 3), message="parent's 2+1 tasks")
    assert parent_data["process"]["pid"] == target.pid
    assert os.path.exists(target.path)


MULTIPROC = r'''
import multiprocessing as mp, os, sys, time

def child(conn):
    conn.send(os.getpid())
    conn.recv()  # until the parent says so

if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    pipes, procs = [], []
    for _ in range(2):
        a, b = mp.Pipe()
        p = mp.Process(target=child, args=(b,))
        p.start()
        pipes.append(a); procs.append(p)
    pids = [a.recv() for a in pipes]
    print("ready", *pids, flush=True)
    sys.stdin.readline()
    for a in pipes:
        a.send("bye")
    for p in procs:
        p.join()
    print("done", [p.exitcode for p in procs], flush=True)
'''


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_children_each_get_a_probe_and_clean_up(sockdir, tmp_path, method):
    script = tmp_path / "mp.py"
    script.write_text(MULTIPROC)
    proc = subprocess.Popen([sys.executable, str(script), method], env=target_env(sockdir),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), line + proc.stderr.read()
        pids = [int(p) for p in line.split()[1:]]
        for pid in [proc.pid, *pids]:
            path = paths.socket_path(pid, sockdir)
            wait_until(lambda: os.path.exists(path), message=f"socket of {pid}")
            with ProbeClient(path) as client:
                assert client.summary()["process"]["pid"] == pid
        out, err = proc.communicate("\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.strip() == "done [0, 0]"
    assert err == ""
    assert os.listdir(sockdir) == []  # os._exit in fork children, atexit elsewhere


EXPLICIT = r'''
import asyncio, os, sys
sys.path[:0] = PATHS
import tasktop.probe

async def idle(ev):
    await ev.wait()

async def main():
    ev = asyncio.Event()
    tasks = [asyncio.create_task(idle(ev)) for _ in range(3)]   # before the probe
    assert tasktop.probe.start(directory=DIR, interval=0.2)
    more = [asyncio.create_task(idle(ev)) for _ in range(2)]    # after: with creation sites
    print("ready", tasktop.probe.socket_path(), flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def test_explicit_start_finds_the_running_loop(sockdir, tmp_path):
    script = tmp_path / "explicit.py"
    script.write_text(EXPLICIT.replace("PATHS", repr(sys.path)).replace("DIR", repr(sockdir)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), line + proc.stderr.read()
        with ProbeClient(line.split()[1]) as client:
            data = client.full()
        idle = [t for t in data["tasks"] if t["stack"] and t["stack"][-1]["func"] == "idle"]
        assert len(idle) == 5
        assert sorted(t["created_by"] is not None for t in idle) == [False] * 3 + [True] * 2
    finally:
        proc.kill()
        proc.communicate()


def test_options_tracemalloc_and_no_creation_stacks(spawn):
    target = spawn(r'''
        import asyncio
        KEEP = []
        async def hold():
            KEEP.append(bytearray(3_000_000))
            await asyncio.Event().wait()
        async def main():
            global T
            T = [asyncio.create_task(hold()) for _ in range(2)]
            await asyncio.sleep(0.1)
            print("ready", flush=True)
            await asyncio.sleep(1000)
        asyncio.run(main())
    ''', TASKTOP_TRACEMALLOC="5", TASKTOP_CREATION_STACKS="0")
    data = target.full()
    assert data["probe"]["tracemalloc"] is True and data["probe"]["creation_stacks"] is False
    assert data["memory"]["tracemalloc"]["current_bytes"] >= 6_000_000
    assert all(t["created_by"] is None for t in data["tasks"])
    top = target.request("memory", top=5)["top"]
    assert top[0]["file"] == target.script and top[0]["size_bytes"] >= 6_000_000


COUNTED = r'''
import asyncio, gc, json, weakref

def tracked():
    """The collector's tracked objects the probe keeps per task: records, waiter references."""
    objs = gc.get_objects()
    records = sum(1 for o in objs if type(o).__name__ == "TaskInfo")
    waiters = sum(1 for o in objs if type(o) is weakref.ref and isinstance(o(), asyncio.Future)
                  and not isinstance(o(), asyncio.Task))
    return {"records": records, "waiters": waiters}

async def child(q):
    await q.get()

async def parent(q):
    await asyncio.get_running_loop().create_task(child(q))

async def main():
    q = asyncio.Queue()
    tasks = [asyncio.ensure_future(parent(q)) for _ in range(2000)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    print(json.dumps(tracked()), "ready", flush=True)
    while True:
        await asyncio.sleep(0.05)
        with open("tracked.json.tmp", "w") as fh:
            json.dump(tracked(), fh)
        import os; os.replace("tracked.json.tmp", "tracked.json")

asyncio.run(main())
'''


def test_what_the_probe_keeps_per_task_is_not_left_to_the_collector(spawn, tmp_path):
    """A pass untracks its references to the futures parked tasks wait on: a million of them
    once set off a full collection of the host's heap (3.4 s)."""
    target = spawn(COUNTED, TASKTOP_INTERVAL="60")  # no background pass: the summaries do it
    at_start = json.loads(target.ready_line.split(" ready")[0])
    assert at_start["waiters"] == 0
    target.summary()
    target.summary()

    def counts() -> dict:
        try:
            return json.loads((tmp_path / "tracked.json").read_text())
        except (OSError, ValueError):
            return {}

    wait_until(lambda: counts().get("records", 0) >= 4000 and counts().get("waiters", 99) == 0, 20,
               message="two summaries and no tracked reference to a waiter")
    groups = {g["state"]: g["count"] for g in target.groups()}
    assert groups.get("Queue.get") == 2000 and groups.get("await task") == 2000


BURST = r'''
import asyncio, itertools, json, time
from tasktop.probe import hooks

async def parked(ev):
    await ev.wait()

async def main():
    ev = asyncio.Event()
    before = time.monotonic()
    tasks = [asyncio.ensure_future(parked(ev)) for _ in range(10000)]
    after = time.monotonic()
    borns = [hooks.record_of(t).born for t in tasks]
    # The same on a clock that moves 1 us a reading: as fast a machine as the test may need.
    ticks = itertools.count()
    hooks._now = lambda: 1000.0 + next(ticks) * 1e-6
    fake_before = hooks._now()
    more = [asyncio.ensure_future(parked(ev)) for _ in range(10000)]
    fake_span = hooks._now() - fake_before
    fake_floats = len({id(hooks.record_of(t).born) for t in more})
    print(json.dumps({"floats": len({id(b) for b in borns}), "earliest": min(borns) - before,
                      "latest": after - max(borns), "span": after - before,
                      "fake_floats": fake_floats, "fake_span": fake_span,
                      "grain": hooks.BORN_GRAIN, "burst": hooks.BURST}), "ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
'''


def test_tasks_made_in_a_burst_share_their_birth_time(spawn):
    """10,000 tasks made in one burst keep a birth time each, to a tenth of a millisecond, in
    a few hundred floats rather than 10,000."""
    target = spawn(BURST)
    seen = json.loads(target.ready_line.split(" ready")[0])

    def bursts_at_most(span: float) -> float:
        # One float a burst: a burst ends when a grain of time has passed or it is full.
        return span / seen["grain"] + math.ceil(10000 / (seen["burst"] + 1)) + 1

    # On the real clock, however slowly a loaded machine made the tasks (10,000 in 0.47 s once).
    assert seen["floats"] <= bursts_at_most(seen["span"]), seen
    assert seen["earliest"] >= -1e-4 and seen["latest"] >= 0, seen
    # On a clock of 1 us a reading: 10,000 tasks in 10 ms, so about a hundred floats.
    assert seen["fake_floats"] <= bursts_at_most(seen["fake_span"]) < 200, seen


IDS = r'''
import asyncio, json, threading, weakref
from tasktop.probe import hooks

async def parked(ev):
    await ev.wait()

async def spawner(n, out):
    ev = asyncio.Event()
    out += [asyncio.ensure_future(parked(ev)) for _ in range(n)]
    out.append(asyncio.current_task())
    await asyncio.sleep(0)

def thread_of(out, gate, done):
    loop = asyncio.new_event_loop()
    gate.wait()
    loop.run_until_complete(loop.create_task(spawner(20000, out)))
    done.release()
    loop.run_forever()  # the tasks stay parked

hooks._now = lambda: 1000.0  # every task in a burst, however slowly a loaded machine makes them
made = [[], []]
gate, done = threading.Event(), threading.Semaphore(0)
for out in made:
    threading.Thread(target=thread_of, args=(out, gate, done), daemon=True).start()
gate.set()
done.acquire()
done.acquire()
seqs = [[hooks.record_of(t).seq for t in out[:-1]] for out in made]
parents = [sorted({hooks.record_of(t).parent for t in out[:-1]}) for out in made]
spawners = [hooks.record_of(out[-1]).seq for out in made]
records = [hooks.record_of(t) for out in made for t in out[:-1]]
# what each record points at, but the reference to what it waits on (a pass's, not the hook's)
held = {id(v) for r in records for v in (getattr(r, name, None) for name in type(r).__slots__)
        if not isinstance(v, weakref.ref)}
print(json.dumps({"seqs": seqs, "parents": parents, "spawners": spawners, "held": len(held)}),
      "ready", flush=True)
threading.Event().wait(3600)  # until the test ends it
'''


def test_task_ids_are_unique_in_creation_order_and_cost_no_object_each(spawn):
    """Two threads making 20,000 tasks each at once: every task has an id of its own, each
    thread's ids grow in the order it made the tasks, and a task's parent is the id of the
    task that made it.  A record points at no object of its own when it is made: an id is
    worked out from the burst its task was made in (shared by the tasks made within 0.1 ms,
    here all of them: the clock is stopped), not kept as an int per task (32 bytes each, a
    tenth of the probe's memory at a million)."""
    target = spawn(IDS)
    seen = json.loads(target.ready_line.split(" ready")[0])
    every = seen["seqs"][0] + seen["seqs"][1]
    assert len(every) == len(set(every)) == 40000
    for seqs in seen["seqs"]:
        assert seqs == sorted(seqs)
    assert seen["parents"] == [[seen["spawners"][0]], [seen["spawners"][1]]]
    assert seen["held"] < 2000, seen["held"]  # with an int per task: over 40,000


CONTEXTS = r'''
import asyncio, json, threading
from tasktop.probe import end_history

both = threading.Barrier(2)

def contexts_of_a_loop(out, index):
    async def main():
        ev = asyncio.Event()
        tasks = [asyncio.ensure_future(ev.wait()) for _ in range(3)]
        out[index] = {id(ctx) for t in tasks for cb, ctx in t._callbacks if cb is end_history.task_done}
        both.wait(10)  # both loops alive: a freed loop's address (and context) may be reused
        ev.set()
        await asyncio.gather(*tasks)
    asyncio.run(main())

out = [None, None]
threads = [threading.Thread(target=contexts_of_a_loop, args=(out, i)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps([sorted(ids) for ids in out]), "ready", flush=True)
threading.Event().wait()  # alive until the test is done with it
'''


def test_done_callbacks_of_two_loops_run_in_contexts_of_their_own(spawn):
    """The probe's done-callback runs in an empty context (no copy of the creator's per task),
    one per loop: a context one thread's loop has entered cannot be entered by another's
    meanwhile, which raised ``RuntimeError`` in the host's loop (two threads' ``asyncio.run``
    cancelling 20,000 tasks each at once)."""
    target = spawn(CONTEXTS)
    first, second = json.loads(target.ready_line.split(" ready")[0])
    assert len(first) == len(second) == 1, (first, second)  # one context for a loop's tasks
    assert first != second  # and another for the other loop's


EAGER_PARENT = r"""
import asyncio, json
from tasktop.probe import hooks

async def child():
    await asyncio.sleep(3600)

async def parent():
    asyncio.create_task(child())  # in its eager first step: its record is made here, by the child
    await asyncio.sleep(3600)

async def main():
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
    task = asyncio.create_task(parent())
    print(json.dumps({"born": hooks.record_of(task).born, "site": hooks.record_of(task).site is not None}),
          "ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are new in Python 3.12")
def test_an_eager_task_recorded_in_its_first_step_keeps_its_birth(spawn):
    """A task that makes a task in its eager first step is recorded then, by the child's hook
    looking up its parent, without a birth time; its own hook, when the step returns, fills
    the birth in with the site (its lifetime in the end history was None)."""
    target = spawn(EAGER_PARENT)
    seen = json.loads(target.ready_line.split(" ready")[0])
    assert seen["site"] and seen["born"] is not None, seen
