"""The benchmark target: a process with N realistic parked tasks and a 1 ms ticker.

Run by the drivers (``probe_cost.py``, ``aiomonitor_cost.py``) as a subprocess, with or
without ``TASKTOP=1``; it never imports tasktop, so the same script measures the probe, no
probe, and aiomonitor alike.

The tasks are what a leaking service accumulates: consumers parked on ``Queue.get``, clients on
``Event.wait``, pollers in ``asyncio.sleep``, supervisors awaiting a child task, with await
chains 3 to 5 coroutines deep and created from different functions, so a snapshot has several
distinct stacks (about ten groups), not one.

Control is line-based, on two pipes the driver passes (``--control-fd``/``--reply-fd``; stdin and
stdout by default), served *by the event loop itself* (``add_reader``), so the target owns no
extra thread that could disturb the measurement:

``tick``    start the ticker (a coroutine sleeping 1 ms at a time; it records every gap)
``untick``  stop it and print the gap statistics: how long the loop was held up
``quit``    exit
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import threading
import time

# -- the parked tasks: each shape is its own group of identical stacks -------------------------


async def _fetch(q):
    return await q.get()


async def _handle(q):
    return await _fetch(q)


async def consumer(q):  # consumer -> _handle -> _fetch -> Queue.get
    await _handle(q)


async def _ready(ev):
    await ev.wait()


async def _session(ev):
    await _ready(ev)


async def client(ev):  # client -> _session -> _ready -> Event.wait
    await _session(ev)


async def _pause():
    await asyncio.sleep(3600)


async def _backoff():
    await _pause()


async def _retry():
    await _backoff()


async def poller():  # poller -> _retry -> _backoff -> _pause -> sleep
    await _retry()


async def _stage5(q):
    await q.get()


async def _stage4(q):
    await _stage5(q)


async def _stage3(q):
    await _stage4(q)


async def _stage2(q):
    await _stage3(q)


async def pipeline(q):  # pipeline -> _stage2 .. _stage5 -> Queue.get
    await _stage2(q)


async def supervise(q):  # awaits a child consumer task: "await task", a cross-task edge
    child = asyncio.get_running_loop().create_task(consumer(q))
    await child


async def _orphan(q):
    await q.get()


async def orphan(q):  # orphan -> _orphan -> Queue.get, on a queue only its 3 waiters hold
    await _orphan(q)


def spawn_orphans(loop, n: int) -> list:
    """``n`` queues, each referenced only by the 3 tasks waiting on it: provable leaks."""
    out = []
    for _ in range(n):
        q = asyncio.Queue()
        out += [loop.create_task(orphan(q)) for _ in range(3)]
    return out


async def crowd_event(ev):
    await ev.wait()


async def crowd_queue(q):
    await q.get()


def spawn_crowd(loop, n: int, shared: list) -> list:
    """``n`` tasks waiting on one Event and one Queue that the process still holds (``shared``):
    reachable, so never a proven leak, and each shared object has a crowd of waiters."""
    ev, q = asyncio.Event(), asyncio.Queue()
    shared += [ev, q]
    return ([loop.create_task(crowd_event(ev)) for _ in range(n // 2)]
            + [loop.create_task(crowd_queue(q)) for _ in range(n - n // 2)])


def fill_heap(n: int) -> list:
    """About ``n`` more objects the garbage collector tracks (small lists and dicts), as a big
    service's heap has: what a scan of the whole heap would pay for."""
    return [[i] if i & 1 else {"i": i} for i in range(n)]


# Share of N per shape; supervisors create one child each (counted in their share).
SHAPES = (("consumer", 0.30), ("client", 0.20), ("poller", 0.20), ("pipeline", 0.20),
          ("supervise", 0.10))


def _spawn_consumers(loop, n, queues):
    return [loop.create_task(consumer(queues[i % len(queues)])) for i in range(n)]


def _spawn_clients(loop, n, events):
    return [loop.create_task(client(events[i % len(events)])) for i in range(n)]


def _spawn_pollers(loop, n):
    return [loop.create_task(poller()) for _ in range(n)]


def _spawn_pipelines(loop, n, queues):
    return [loop.create_task(pipeline(queues[i % len(queues)])) for i in range(n)]


def _spawn_supervisors(loop, n, queues):
    return [loop.create_task(supervise(queues[i % len(queues)])) for i in range(n)]


#: The queues and events the parked tasks wait on, reachable from this module: whoever can
#: reach them could still wake the tasks, so none of them is a provable leak.
SHARED: list = []


def spawn(loop, total: int) -> list:
    """About ``total`` parked tasks (``supervise`` adds its child on its first step)."""
    queues = [asyncio.Queue() for _ in range(8)]
    events = [asyncio.Event() for _ in range(8)]
    SHARED.extend(queues + events)
    counts = {name: int(total * share) for name, share in SHAPES}
    counts["supervise"] //= 2  # each supervisor brings a child
    counts["consumer"] += total - sum(counts.values()) - counts["supervise"]
    out = []
    out += _spawn_consumers(loop, counts["consumer"], queues)
    out += _spawn_clients(loop, counts["client"], events)
    out += _spawn_pollers(loop, counts["poller"])
    out += _spawn_pipelines(loop, counts["pipeline"], queues)
    out += _spawn_supervisors(loop, counts["supervise"], queues)
    return out


# -- the ticker: how long is the loop held up? ---------------------------------------------------
LONGEST = 20  # gaps listed with their times in ``Ticker.stop``
THREAD_GAP = 0.002  # seconds: gaps over this get the loop thread's CPU time (``start(threads=True)``)


def _ms(*ns: int) -> tuple:
    return tuple(round(n / 1e6, 2) for n in ns)


def _schedstat() -> tuple[int, int]:
    """The calling thread's time on a CPU and waiting on a run queue for one, in ns (Linux)."""
    with open("/proc/thread-self/schedstat") as f:
        ran, waited, _slices = f.read().split()
    return int(ran), int(waited)


class Ticker:
    """Sleeps 1 ms at a time and records each gap between wake-ups (the nominal gap is ~1.1 ms).

    Garbage collections are recorded too (``gc.callbacks``; any thread may collect, and a
    collection stops every thread), so that each long gap can be split into the part spent in
    the collector and the rest: ``max_ms`` is the longest gap, ``max_non_gc_ms`` the longest
    hold-up once collections are taken out, i.e. another thread holding the GIL.
    """

    def __init__(self) -> None:
        self.task = None
        self.gaps: list = []  # (end, seconds)
        self.in_gaps: dict = {}  # gap end -> (seconds, ns the loop thread ran, ns it waited for a CPU)
        self.schedstat: tuple = ()  # the loop thread's (ran, waited) ns at the first and last tick
        self.gc_pauses: list = []  # (start, end, generation)
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self.task is not None:
            self.gc_pauses.append((self._gc_start, time.perf_counter(), info["generation"]))

    async def _run(self, threads: bool) -> None:
        clock = time.perf_counter
        gaps, in_gaps = self.gaps, self.in_gaps
        last = clock()
        first = ran, waited = _schedstat() if threads else (0, 0)
        while True:
            await asyncio.sleep(0.001)
            now = clock()
            gaps.append((now, now - last))
            if threads:  # a gap with neither is the loop thread waiting for the GIL (or idle)
                now_ran, now_waited = _schedstat()
                if now - last > THREAD_GAP:
                    in_gaps[now] = (now - last, now_ran - ran, now_waited - waited)
                ran, waited = now_ran, now_waited
                self.schedstat = (first, (ran, waited))
            last = now

    def start(self, loop, threads: bool = False) -> None:
        """Start ticking; with ``threads``, each wake-up also reads the loop thread's CPU time
        (``/proc/thread-self/schedstat``, about 10 µs)."""
        self.gaps = []
        self.gc_pauses = []
        self.in_gaps = {}
        self.schedstat = ()
        self.task = loop.create_task(self._run(threads), name="bench-ticker")

    def _non_gc(self, end: float, gap: float) -> float:
        start = end - gap
        inside = sum(max(0.0, min(end, e) - max(start, s)) for s, e, _g in self.gc_pauses)
        return gap - inside

    def stop(self) -> dict:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        gaps = sorted(g for _end, g in self.gaps)
        n = len(gaps)
        if not n:
            return {"ticks": 0}
        non_gc = [self._non_gc(end, g) for end, g in self.gaps if g > 0.002] or [gaps[-1]]
        full = [e - s for s, e, gen in self.gc_pauses if gen == 2]
        ms = lambda q: round(gaps[min(n - 1, int(q * n))] * 1000.0, 3)  # noqa: E731
        return {"ticks": n, "median_ms": ms(0.5), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
                "max_ms": round(gaps[-1] * 1000.0, 3),
                "over_5ms": sum(1 for g in gaps if g > 0.005),
                "over_10ms": sum(1 for g in gaps if g > 0.010),
                "max_non_gc_ms": round(max(non_gc) * 1000.0, 3),
                "non_gc_over_10ms": sum(1 for g in non_gc if g > 0.010),
                "gc_collections": len(self.gc_pauses),
                "gc_full": len(full), "gc_full_max_ms": round(max(full, default=0.0) * 1000.0, 3),
                "gc_ms": round(sum(e - s for s, e, _g in self.gc_pauses) * 1000.0, 3),
                # The longest gaps: (when it began, perf_counter's clock, which is
                # CLOCK_MONOTONIC on Linux as perf's -k CLOCK_MONOTONIC is; ms), for loop_gaps.py.
                "longest": [(round(end - gap, 6), round(gap * 1000.0, 3))
                            for end, gap in sorted(self.gaps, key=lambda eg: -eg[1])[:LONGEST]],
                # With ``threads``: the loop thread's ms on a CPU and waiting for one, in all and
                # in each gap over THREAD_GAP (by the gap's start, made as in "longest").
                "loop_thread_ms": _ms(*(b - a for a, b in zip(*self.schedstat))) if self.schedstat else None,
                "loop_thread_in_gaps": [(round(end - gap, 6), _ms(ran, waited))
                                        for end, (gap, ran, waited) in self.in_gaps.items()]}


_replies = sys.stdout


def _say(obj: dict) -> None:
    _replies.write(json.dumps(obj) + "\n")
    _replies.flush()


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _probe_thread_tid():
    for thread in threading.enumerate():
        if thread.name == "tasktop-probe":
            return thread.native_id
    return None


async def main(args) -> None:
    global _replies
    loop = asyncio.get_running_loop()
    control = os.fdopen(args.control_fd, "r") if args.control_fd is not None else sys.stdin
    if args.reply_fd is not None:
        _replies = os.fdopen(args.reply_fd, "w")
    if args.aiomonitor:
        import aiomonitor

        monitor = aiomonitor.Monitor(loop, hook_task_factory=True, termui_port=args.port,
                                     webui_port=args.port + 1, console_enabled=False)
        monitor.start()
    t0 = time.perf_counter()
    keep = spawn(loop, args.tasks)
    created = time.perf_counter() - t0
    keep += spawn_crowd(loop, args.crowd, SHARED) if args.crowd else []
    keep_orphans = spawn_orphans(loop, args.orphans)  # noqa: F841 - the tasks are held, not their queues
    heap = fill_heap(args.heap)  # noqa: F841 - kept alive on purpose
    await asyncio.sleep(0.2)  # let every task take its first step and park
    for _ in range(50):
        if _probe_thread_tid() is not None or not os.environ.get("TASKTOP"):
            break
        await asyncio.sleep(0.02)
    ticker = Ticker()
    done = loop.create_future()

    def on_line() -> None:
        line = control.readline()
        command = line.strip()
        if not line or command == "quit":
            if not done.done():
                done.set_result(None)
        elif command in ("tick", "tick threads"):
            ticker.start(loop, threads=command == "tick threads")
            _say({"ok": "tick"})
        elif command == "untick":
            _say(ticker.stop())

    loop.add_reader(control.fileno(), on_line)
    _say({"ready": True, "pid": os.getpid(), "tasks": len(asyncio.all_tasks()),
          "spawned": len(keep), "create_us": round(created / max(1, len(keep)) * 1e6, 3),
          "probe_tid": _probe_thread_tid(), "python": sys.version.split()[0], "rss_kb": _rss_kb()})
    await done
    loop.remove_reader(control.fileno())
    os._exit(0)  # do not spend seconds cancelling 100k tasks


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--orphans", type=int, default=0, help="queues held only by their 3 waiters (provable leaks)")
    parser.add_argument("--crowd", type=int, default=0, help="tasks waiting on one shared Event and Queue")
    parser.add_argument("--heap", type=int, default=0, help="extra gc-tracked objects in the heap")
    parser.add_argument("--aiomonitor", action="store_true", help="run aiomonitor (its task factory on)")
    parser.add_argument("--port", type=int, default=20201, help="aiomonitor's telnet port (web UI: +1)")
    parser.add_argument("--control-fd", type=int, help="read commands from this fd (default: stdin)")
    parser.add_argument("--reply-fd", type=int, help="write replies to this fd (default: stdout)")
    asyncio.run(main(parser.parse_args()))
