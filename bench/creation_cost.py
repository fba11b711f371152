"""What the creation hook adds to ``loop.create_task``: microseconds per task, with and without.

Two parts.  ``--inner`` is the measurement itself, run inside a fresh interpreter: N coroutines
are made first (not timed), then N ``loop.create_task(coro)`` calls run in a tight loop inside a
task (so the hook also looks up the parent task), then all are cancelled and reaped; repeated,
and the fastest and the median rounds are kept.  The coroutine parks on a future, so an
eager task (``--eager``, 3.12+) runs its first step and suspends inside ``create_task``, as a real
one would.

Without ``--inner`` it is the driver: it runs the inner part in a new process per configuration
(no probe; ``TASKTOP=1``; ``TASKTOP=1 TASKTOP_CREATION_STACKS=0``; aiomonitor's task factory when
``--aiomonitor-python`` names an interpreter that has aiomonitor) and prints a table::

    python bench/creation_cost.py --n 100000
    python bench/creation_cost.py --n 100000 --python /tmp/venv312/bin/python --eager
    python bench/creation_cost.py --n 100000 --aiomonitor-python /tmp/venv-bench/bin/python
    python bench/creation_cost.py --n 20000 --runs 7 --compare 3.11=/tmp/old/bin/python,/tmp/new/bin/python
    python bench/creation_cost.py --n 20000 --runs 15 --cpu --compare 3.12=/tmp/old312/bin/python,/tmp/new312/bin/python
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time


async def _parked(event):
    # A future of its own, not event.wait(): cancelling 100k waiters of one Event is quadratic
    # (each removes itself from the Event's deque), which would swamp the eager rounds.
    await asyncio.get_running_loop().create_future()


async def _inner(n: int, repeat: int, eager: bool, monitor: bool, gc_off: bool) -> dict:
    loop = asyncio.get_running_loop()
    if monitor:
        import aiomonitor

        aiomonitor.Monitor(loop, hook_task_factory=True, termui_port=20301, webui_port=20302,
                           console_enabled=False).start()
    if eager:
        loop.set_task_factory(asyncio.eager_task_factory)  # the probe (and aiomonitor) chain to it
    await asyncio.sleep(0.1)  # let the probe thread start and take its first sample
    event = asyncio.Event()
    rounds, cpu_rounds = [], []  # wall time; this thread's CPU time (not the probe thread's)
    for _ in range(repeat):
        coros = [_parked(event) for _ in range(n)]
        if gc_off:
            gc.disable()
        create = loop.create_task
        t0, c0 = time.perf_counter(), time.thread_time()
        for coro in coros:
            create(coro)
        rounds.append((time.perf_counter() - t0) / n)
        cpu_rounds.append((time.thread_time() - c0) / n)
        gc.enable()
        del coros
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        del tasks
        gc.collect()
    return {"min_us": round(min(rounds) * 1e6, 3), "median_us": round(statistics.median(rounds) * 1e6, 3),
            "max_us": round(max(rounds) * 1e6, 3), "cpu_median_us": round(statistics.median(cpu_rounds) * 1e6, 3),
            "python": sys.version.split()[0]}


CONFIGS = (
    ("no probe", {}, False),
    ("probe (TASKTOP=1)", {"TASKTOP": "1"}, False),
    ("probe, creation stacks off", {"TASKTOP": "1", "TASKTOP_CREATION_STACKS": "0"}, False),
)


def _run(python: str, env_extra: dict, args, monitor: bool, eager: bool, gc_off: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env.update(env_extra)
    env.setdefault("TASKTOP_DIR", "/tmp/tasktop-bench-creation")
    command = [python, os.path.abspath(__file__), "--inner", "--n", str(args.n), "--repeat", str(args.repeat)]
    command += ["--eager"] * eager + ["--monitor"] * monitor + ["--gc-off"] * gc_off
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(pairs: list, args) -> None:
    """``--compare``: for each ``LABEL=PYTHON_A,PYTHON_B`` (two environments of one Python,
    say the probe before and after a change), ``--runs`` fresh processes of each of: no
    probe, A's probe, B's probe, in turn; one round of ``--n`` tasks each (a fresh process,
    as a program meets it), the collector on.  Prints the medians and what each probe adds."""
    args.repeat = 1
    figure = "cpu_median_us" if args.cpu else "median_us"
    lines = ["| Python | no probe | A: probe | A: added | B: probe | B: added |", "|---|---|---|---|---|---|"]
    for item in pairs:
        label, pythons = item.split("=", 1)
        first, second = pythons.split(",")
        runs: dict = {"none": [], "a": [], "b": []}
        for _ in range(args.runs):
            runs["none"].append(_run(first, {}, args, False, args.eager, args.gc_off)[figure])
            runs["a"].append(_run(first, {"TASKTOP": "1"}, args, False, args.eager, args.gc_off)[figure])
            runs["b"].append(_run(second, {"TASKTOP": "1"}, args, False, args.eager, args.gc_off)[figure])
        none, a, b = (statistics.median(runs[k]) for k in ("none", "a", "b"))
        lines.append(f"| {label} | {none:.2f} µs | {a:.2f} µs | {a - none:+.2f} | {b:.2f} µs | {b - none:+.2f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    print(f"{args.n:,} create_task in a fresh process, median of {args.runs} alternated runs"
          + (", gc off while creating" if args.gc_off else "")
          + (", the creating thread's CPU time" if args.cpu else ", wall time"))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--eager", action="store_true", help="eager tasks (Python 3.12+)")
    parser.add_argument("--gc-off", action="store_true", help="no garbage collection while creating")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--aiomonitor-python", help="an interpreter with aiomonitor installed")
    parser.add_argument("--compare", nargs="+", metavar="LABEL=PYTHON_A,PYTHON_B",
                        help="the probe of two environments against no probe, per Python (see compare)")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes of each, for --compare")
    parser.add_argument("--cpu", action="store_true",
                        help="--compare by the creating thread's CPU time, not wall time: what the hook "
                             "costs, without the probe thread's own work (its start, a background pass) "
                             "that a fresh process's round may overlap")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--monitor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(asyncio.run(_inner(args.n, args.repeat, args.eager, args.monitor, args.gc_off))))
        return
    if args.compare:
        compare(args.compare, args)
        return
    rows = [(name, _run(args.python, env, args, False, args.eager, args.gc_off)) for name, env, _ in CONFIGS]
    if args.aiomonitor_python:
        rows.append(("aiomonitor (hook_task_factory=True)",
                     _run(args.aiomonitor_python, {}, args, True, args.eager, args.gc_off)))
    base = rows[0][1]["median_us"]
    kind = "eager tasks" if args.eager else "tasks"
    print(f"{args.n:,} {kind} per round, {args.repeat} rounds, Python {rows[0][1]['python']}"
          + (", gc off while creating" if args.gc_off else ""))
    base_min = rows[0][1]["min_us"]
    print("| configuration | µs per create_task, min | median | added (min) | added (median) |")
    print("|---|---|---|---|---|")
    for name, row in rows:
        print(f"| {name} | {row['min_us']} | {row['median_us']} | {row['min_us'] - base_min:+.2f} "
              f"| {row['median_us'] - base:+.2f} |")


if __name__ == "__main__":
    main()
