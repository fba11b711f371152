"""What watching direct ``task.cancel()`` calls costs code that does not cancel tasks.

3.12+: the probe's ``sys.monitoring`` CALL callback (``end_history._on_call``) switches itself
off at every call site that calls anything but a future's ``cancel``, after that site's first
call.  Before 3.12 (only with ``TASKTOP_CANCELLERS=profile``): ``sys.setprofile``'s callback
(``end_history._on_profile``) runs at every call and return.
``--inner`` times three workloads by the main thread's CPU time (the fastest of 5 rounds each)
with the watch off or on (set up in the process, no probe started): a method call in a tight
loop, JSON round trips, and 100,000 short asyncio tasks created and gathered.  The driver
alternates processes off / on and prints the medians::

    python bench/cancel_watch_cost.py --runs 5 --python /path/to/python3.12 /path/to/python3.13
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time


class _Counter:
    def step(self, x: int) -> int:
        return x + 1


def calls(n: int) -> int:
    counter, s = _Counter(), 0
    for _ in range(n):
        s = counter.step(s)
    return s


def json_round_trips(n: int) -> int:
    out = []
    for i in range(n // 10):
        out.append(json.loads(json.dumps({"a": i, "b": [str(i)] * 3})))
    return len(out)


async def _quick() -> int:
    return 1


def tasks(n: int) -> None:
    async def main() -> None:
        for _ in range(n // 10000):
            await asyncio.gather(*[asyncio.ensure_future(_quick()) for _ in range(10000)])
    asyncio.run(main())


WORKLOADS = ((calls, 1_000_000), (json_round_trips, 200_000), (tasks, 100_000))


def _inner(on: bool) -> dict:
    if on:
        from tasktop.probe import end_history

        if sys.version_info >= (3, 12):
            end_history._watch_direct_cancels()
            assert end_history._monitoring_tool is not None
        else:
            end_history._watch_by_profile()
            assert sys.getprofile() is end_history._on_profile
    out = {}
    for fn, n in WORKLOADS:
        rounds = []
        for _ in range(5):
            t0 = time.thread_time()
            fn(n)
            rounds.append(time.thread_time() - t0)
        out[fn.__name__] = min(rounds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", nargs="+", default=[sys.executable])
    parser.add_argument("--inner", choices=("off", "on"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(_inner(args.inner == "on")))
        return
    print(f"CPU seconds of the main thread, fastest of 5 rounds, median of {args.runs} alternated processes")
    print("| Python | workload | watch off | watch on | on / off |")
    print("|---|---|---|---|---|")
    for python in args.python:
        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True).stdout.strip()
        runs: dict = {"off": [], "on": []}
        for _ in range(args.runs):
            for mode in ("off", "on"):
                out = subprocess.run([python, __file__, "--inner", mode], capture_output=True, text=True, check=True)
                runs[mode].append(json.loads(out.stdout))
        for fn, _ in WORKLOADS:
            off = statistics.median(r[fn.__name__] for r in runs["off"])
            on = statistics.median(r[fn.__name__] for r in runs["on"])
            print(f"| {version} | {fn.__name__} | {off:.4f} | {on:.4f} | {on / off:.3f} |", flush=True)


if __name__ == "__main__":
    main()
