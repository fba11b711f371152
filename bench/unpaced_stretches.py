"""Where the probe thread went without giving the GIL away, in a process it started in late.

One process: N tasks parked on one ``asyncio.Event``, made *before* ``tasktop.probe.start()``
(so no factory of ours saw them: the probe's first pass adopts them all, as after ``tasktop
attach``), a coroutine sleeping 1 ms at a time that records every gap between its wake-ups,
and ``tasktop dump PID --full --no-verdicts`` run ``--dumps`` times from a thread.  The probe's
pacer (``handoff.Pacer.now``) is wrapped to note when each of its yields starts and ends, on
what line it was called and the probe thread's CPU time then.  For each loop gap over
``--over`` ms: the yields in it, the longest stretch without one, and the yields on either side
of the gap's start (the code between them ran unpaced).  With ``--where``, a thread of the bench's
takes the probe thread's Python stack each time the probe has gone that long without a yield.

    python bench/unpaced_stretches.py --tasks 1000000
    python bench/unpaced_stretches.py --tasks 1000000 --dumps 2 --over 8
    python bench/unpaced_stretches.py --tasks 1000000 --where 6   # where the probe was, 6 ms without a yield

Run it with the interpreter tasktop is installed in.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import os
import subprocess
import sys
import threading
import time

import tasktop.probe
from tasktop.probe import handoff

stamps: list = []  # start, end of each yield, in turn (perf_counter)
sites: list = []  # (probe thread's CPU time, "file:function:line") at each yield's start
_now = handoff.Pacer.now


def _noted_now(self) -> None:
    stamps.append(time.perf_counter())
    frame = sys._getframe(1)
    if frame.f_code.co_name == "__call__":  # through Pacer.__call__: its caller
        frame = frame.f_back
    sites.append((time.thread_time(), f"{os.path.basename(frame.f_code.co_filename)}:"
                                      f"{frame.f_code.co_name}:{frame.f_lineno}"))
    try:
        return _now(self)
    finally:
        stamps.append(time.perf_counter())


handoff.Pacer.now = _noted_now


def report(gaps: list, windows: list, over: float) -> None:
    yields = list(zip(stamps[0::2], stamps[1::2]))
    starts = [start for start, _ in yields]
    ordered = sorted(gaps)
    print(f"{len(gaps)} ticks; loop gap median {ordered[len(gaps) // 2] * 1e3:.2f} ms, "
          f"99th percentile {ordered[int(len(gaps) * 0.99)] * 1e3:.2f} ms, longest {ordered[-1] * 1e3:.1f} ms; "
          f"{len(windows)} over {over:g} ms; {len(yields)} yields")
    for begin, end in windows:
        inside = [(s, e) for s, e in yields if e > begin and s < end]
        edges = [begin] + [t for pair in inside for t in pair] + [end]
        stretch = max(edges[k + 1] - edges[k] for k in range(0, len(edges) - 1, 2))
        line = (f"  {(end - begin) * 1e3:5.1f} ms: {len(inside)} yields, the longest stretch without one "
                f"{stretch * 1e3:.1f} ms")
        k = bisect.bisect_left(starts, begin)
        if 1 <= k < len(sites):
            (cpu0, site0), (cpu1, site1) = sites[k - 1], sites[k]
            line += f"; from a yield in {site0} to one in {site1}: {(cpu1 - cpu0) * 1e3:.1f} ms of the probe's CPU"
        print(line)


async def main(args: argparse.Namespace) -> None:
    event = asyncio.Event()
    parked = [asyncio.ensure_future(event.wait()) for _ in range(args.tasks)]
    tasktop.probe.start()
    await asyncio.sleep(1.0)
    done = threading.Event()

    def dump() -> None:
        command = os.path.join(os.path.dirname(sys.executable), "tasktop")
        for _ in range(args.dumps):
            subprocess.run([command, "dump", str(os.getpid()), "--full", "--no-verdicts"],
                           stdout=subprocess.DEVNULL, check=False)
        done.set()

    threading.Thread(target=dump, daemon=True).start()
    stacks = collections.Counter()
    if args.where:  # the probe thread's stack whenever it has gone args.where ms without a yield
        probe = next(t.ident for t in threading.enumerate() if t.name.startswith("tasktop"))

        def watch() -> None:
            while not done.is_set():
                time.sleep(0.001)  # gets the GIL within a switch interval of the probe's
                if stamps and len(stamps) % 2 == 0 and time.perf_counter() - stamps[-1] > args.where / 1000:
                    frame, where = sys._current_frames().get(probe), []
                    while frame is not None and len(where) < 6:
                        where.append(f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}:"
                                     f"{frame.f_lineno}")
                        frame = frame.f_back
                    stacks[" < ".join(where)] += 1

        threading.Thread(target=watch, daemon=True).start()
    gaps, windows = [], []
    last = time.perf_counter()
    while not done.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        if now - last > args.over / 1000:
            windows.append((last, now))
        last = now
    report(gaps, windows, args.over)
    for where, count in stacks.most_common(8):
        print(f"  {count:4d} x {where}")
    event.set()
    await asyncio.gather(*parked)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--dumps", type=int, default=1)
    parser.add_argument("--over", type=float, default=10.0, help="gaps longer than this (ms) are listed")
    parser.add_argument("--where", type=float, default=0.0,
                        help="print where the probe thread was each time it had gone this long (ms) without a yield")
    asyncio.run(main(parser.parse_args()))
