"""What a task's end costs with the probe's history of endings: microseconds per task, from
``create_task`` to its done-callbacks having run, for a task that returns at once, on each
Python given, side by side.

``--inner`` runs inside a fresh interpreter: rounds of N tasks are created and gathered (the
creation hook, the task's one step, its done-callbacks, ``gather``'s own callback, the record
dropped when the task is freed).  With the probe, the rounds alternate between three states of
the end history, so that the machine's noise falls on all three alike:

* ``off``: no done-callback (what ``TASKTOP_END_HISTORY=0`` gives): the creation hook and the
  drop of the record, the probe's cost before the end history;
* ``shipped``: as shipped, at most ``FOLLOW_PER_S`` endings followed a second, each round
  starting a fresh second (so 1,000 of a round's tasks are followed: more than a steady stream
  of tasks would have followed, whose second spans several rounds);
* ``every``: the rate limit lifted, every task followed: what one followed task's end costs.

The median round of each is kept; the driver runs it in fresh processes, alternated with
processes without the probe, per Python, and prints the medians::

    python bench/end_cost.py --n 20000 --runs 5 --python /path/to/python3.9 /path/to/python3.11
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time


async def _quick() -> int:
    return 1


def _history_state(mode: str) -> None:
    import itertools

    from tasktop.probe import end_history, hooks

    hooks.on_done = None if mode == "off" else end_history.task_done
    end_history._window_start, end_history._spent_at_seq = end_history._now(), None  # no renewal pending
    hooks.follow = end_history.tokens() if mode == "shipped" else itertools.repeat(True)


async def _inner(n: int, repeat: int, probe: bool) -> dict:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.1)  # the probe thread started
    modes = MODES if probe else ("none",)
    rounds: dict = {mode: [] for mode in modes}
    for _ in range(repeat):
        for mode in modes:
            if probe:
                _history_state(mode)
            create = loop.create_task
            t0 = time.thread_time()
            await asyncio.gather(*[create(_quick()) for _ in range(n)])
            await asyncio.sleep(0)  # the done-callbacks scheduled last have run
            rounds[mode].append((time.thread_time() - t0) / n * 1e6)
    return {"python": sys.version.split()[0], **{mode: statistics.median(v) for mode, v in rounds.items()}}


MODES = ("off", "shipped", "every")


def _run(python: str, probe: bool, args) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    if probe:
        env.update(TASKTOP="1", TASKTOP_DIR="/tmp/tasktop-bench-end")
    command = [python, os.path.abspath(__file__), "--inner", "--n", str(args.n), "--repeat", str(args.repeat)]
    out = subprocess.run(command + (["--probe"] if probe else []), env=env, capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", nargs="+", default=[sys.executable])
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(asyncio.run(_inner(args.n, args.repeat, args.probe))))
        return
    print(f"{args.n:,} tasks created and finished per round, median of {args.repeat} rounds of each, median of "
          f"{args.runs} processes of each (µs per task; in brackets, added to no probe)")
    print("| Python | no probe | probe, no end history | probe (as shipped) | probe, every end followed "
          "| end history adds: as shipped | every end |")
    print("|---|---|---|---|---|---|---|")
    for python in args.python:
        runs: dict = {name: [] for name in ("none",) + MODES}
        version = "?"
        for _ in range(args.runs):
            for probe in (False, True):
                row = _run(python, probe, args)
                version = row.pop("python")
                for mode, value in row.items():
                    runs[mode].append(value)
        med = {name: statistics.median(values) for name, values in runs.items()}
        base = med["none"]
        print(f"| {version} | {base:.2f} | " + " | ".join(f"{med[m]:.2f} ({med[m] - base:+.2f})" for m in MODES)
              + f" | {med['shipped'] - med['off']:+.2f} | {med['every'] - med['off']:+.2f} |", flush=True)
        print(json.dumps({"python": version, **runs}), file=sys.stderr)


if __name__ == "__main__":
    main()
