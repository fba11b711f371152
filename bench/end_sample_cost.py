"""The end history and the Waits view at scale (issue 13), measured from outside on real targets.

``sample``: a target with N parked tasks (20 groups, each waiting on an Event) and a stream of
short tasks ending (``--churn`` a second, made in batches every 10 ms), with the probe as shipped
and with ``TASKTOP_END_HISTORY=0``, alternated.  After a warm-up, the ``tasktop-probe`` thread's
CPU over ``--quiet`` seconds (``/proc/PID/task/TID/schedstat``), the whole process's, and the
probe's own account of its last background sample (``sample_ms``, with the drain of the
endings) and the interval it adapted to.

``waits``: a target with N tasks waiting on asyncio queues (half), events, locks and semaphores,
1,000 objects of each kind at most, and a 1 ms ticker; the ``waits`` request is timed (request
sent to the reply in hand), with the ticker's longest gap during it (the loop held up)::

    python bench/end_sample_cost.py sample --tasks 10000 --churn 1000 --quiet 30 --runs 3
    python bench/end_sample_cost.py waits --tasks 100000 --runs 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from harness import process_cpu_ns, thread_cpu_ns, wait_for

from tasktop.client.probe_client import ProbeClient
from tasktop.wire import paths

TARGET = r'''
import asyncio, json, os, sys, threading, time

KIND, N, CHURN = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gap = [0.0]

def probe_tid():
    for thread in threading.enumerate():
        if thread.name == "tasktop-probe":
            return thread.native_id

async def parked(event):
    await event.wait()

async def getter(q):
    await q.get()

async def locker(lock):
    await lock.acquire()

async def acquirer(sem):
    await sem.acquire()

async def quick():
    await asyncio.sleep(0)

async def churn():
    loop = asyncio.get_running_loop()
    per_batch = max(1, CHURN // 100)
    while True:
        for _ in range(per_batch):
            loop.create_task(quick())
        await asyncio.sleep(0.01)

async def ticker():
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(0.001)
        now = loop.time()
        gap[0] = max(gap[0], now - last)
        last = now

def commands(loop):
    for line in sys.stdin:
        if line.strip() == "gap":
            print(json.dumps({"gap_ms": gap[0] * 1e3}), flush=True)
        elif line.strip() == "reset":
            gap[0] = 0.0
            print(json.dumps({"reset": True}), flush=True)

async def main():
    loop = asyncio.get_running_loop()
    keep = []
    if KIND == "sample":
        events = [asyncio.Event() for _ in range(20)]
        keep += [loop.create_task(parked(events[i % 20])) for i in range(N)]
        if CHURN:
            keep.append(loop.create_task(churn()))
    else:
        objects = N // 1000 or 1
        queues = [asyncio.Queue() for _ in range(min(1000, N // 2 // objects + 1))]
        events = [asyncio.Event() for _ in range(1000)]
        locks = [asyncio.Lock() for _ in range(1000)]
        sems = [asyncio.Semaphore(0) for _ in range(1000)]
        for lock in locks:
            await lock.acquire()
        for i in range(N):
            which = i % 8
            if which < 4:
                coro = getter(queues[i % len(queues)])
            elif which < 6:
                coro = parked(events[i % 1000])
            elif which < 7:
                coro = locker(locks[i % 1000])
            else:
                coro = acquirer(sems[i % 1000])
            keep.append(loop.create_task(coro))
        keep.append(loop.create_task(ticker()))
    await asyncio.sleep(0.5)
    threading.Thread(target=commands, args=(loop,), daemon=True).start()
    print(json.dumps({"pid": os.getpid(), "probe_tid": probe_tid()}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def _start(python: str, kind: str, n: int, churn: int, env: dict) -> tuple[subprocess.Popen, dict]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    full_env.update(env)
    proc = subprocess.Popen([python, "-c", TARGET, kind, str(n), str(churn)], env=full_env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    info = json.loads(proc.stdout.readline())
    return proc, info


def _version(python: str) -> str:
    return subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True).stdout.strip()


def _ask(proc: subprocess.Popen, line: str) -> dict:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def sample(args) -> None:
    directory = tempfile.mkdtemp(prefix="tasktop-bench-ends-")
    configs = (("end history on (as shipped)", {"TASKTOP": "1", "TASKTOP_DIR": directory}),
               ("TASKTOP_END_HISTORY=0", {"TASKTOP": "1", "TASKTOP_DIR": directory, "TASKTOP_END_HISTORY": "0"}))
    rows: dict = {name: [] for name, _ in configs}
    for _ in range(args.runs):
        for name, env in configs:
            proc, info = _start(args.python, "sample", args.tasks, args.churn, env)
            try:
                pid, tid = info["pid"], info["probe_tid"]
                path = paths.socket_path(pid, directory)
                wait_for(lambda: os.path.exists(path))
                time.sleep(args.warmup)
                t0, p0, c0 = time.monotonic(), thread_cpu_ns(pid, tid), process_cpu_ns(pid)
                time.sleep(args.quiet)
                t1, p1, c1 = time.monotonic(), thread_cpu_ns(pid, tid), process_cpu_ns(pid)
                with ProbeClient(path, timeout=60) as client:
                    probe = client.request("summary")["probe"]
                    ends = client.request("ends")
                wall = (t1 - t0) * 1e9
                rows[name].append({"probe_thread_pct": 100 * (p1 - p0) / wall, "process_pct": 100 * (c1 - c0) / wall,
                                   "sample_ms": probe.get("sample_ms"), "interval_s": probe.get("interval_s"),
                                   "ended_total": ends.get("ended_total"), "unfollowed": ends.get("unfollowed")})
            finally:
                proc.kill()
                proc.wait()
    print(json.dumps(rows), file=sys.stderr)
    version = _version(args.python)
    print(f"Python {version}, {args.tasks:,} parked tasks, {args.churn:,} short tasks ending a second, "
          f"{args.quiet:.0f} s windows after {args.warmup:.0f} s, medians of {args.runs} (min–max)")
    print("| | probe thread CPU | process CPU | background sample (`sample_ms`) | interval |")
    print("|---|---|---|---|---|")
    for name, values in rows.items():
        def cell(key: str, fmt: str) -> str:
            got = [v[key] for v in values if v[key] is not None]
            return f"{statistics.median(got):{fmt}} ({min(got):{fmt}}–{max(got):{fmt}})" if got else "?"
        print(f"| {name} | {cell('probe_thread_pct', '.2f')} % | {cell('process_pct', '.2f')} % "
              f"| {cell('sample_ms', '.1f')} ms | {cell('interval_s', '.1f')} s |")


def waits(args) -> None:
    directory = tempfile.mkdtemp(prefix="tasktop-bench-waits-")
    proc, info = _start(args.python, "waits", args.tasks, 0, {"TASKTOP": "1", "TASKTOP_DIR": directory})
    times, gaps, quiet_gaps = [], [], []
    try:
        path = paths.socket_path(info["pid"], directory)
        wait_for(lambda: os.path.exists(path))
        with ProbeClient(path, timeout=120) as client:
            client.request("summary")  # the first walk of every await chain, as a client's first look
            for _ in range(args.runs):
                _ask(proc, "reset")
                time.sleep(1.0)
                quiet_gaps.append(_ask(proc, "gap")["gap_ms"])
                _ask(proc, "reset")
                t0 = time.perf_counter()
                reply = client.request("waits")
                times.append(time.perf_counter() - t0)
                gaps.append(_ask(proc, "gap")["gap_ms"])
        waited = sum(w["waiting"] for w in reply["waits"])
    finally:
        proc.kill()
        proc.wait()
    print(json.dumps({"times_s": times, "gaps_ms": gaps, "quiet_gaps_ms": quiet_gaps}), file=sys.stderr)
    version = _version(args.python)
    print(f"Python {version}, {args.tasks:,} waiting tasks on {reply.get('total', len(reply['waits'])):,} objects "
          f"({waited:,} waiters in the reply), {args.runs} requests after a first summary")
    print("| `waits` request | median | min | max |")
    print("|---|---|---|---|")
    print(f"| time to the reply | {statistics.median(times) * 1e3:.0f} ms | {min(times) * 1e3:.0f} ms | {max(times) * 1e3:.0f} ms |")
    print(f"| loop's longest gap during it | {statistics.median(gaps):.1f} ms | {min(gaps):.1f} ms | {max(gaps):.1f} ms |")
    print(f"| loop's longest gap, 1 s without it | {statistics.median(quiet_gaps):.1f} ms | {min(quiet_gaps):.1f} ms "
          f"| {max(quiet_gaps):.1f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("sample", "waits"))
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--churn", type=int, default=1000, help="short tasks ending a second (sample)")
    parser.add_argument("--quiet", type=float, default=30.0, help="seconds of each CPU window (sample)")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (tasktop installed)")
    args = parser.parse_args()
    (sample if args.what == "sample" else waits)(args)


if __name__ == "__main__":
    main()
