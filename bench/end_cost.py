"""What a task's end costs with the probe's history of endings: microseconds per task, from
``create_task`` to its done-callbacks having run, for a task that returns at once.

``--inner`` runs inside a fresh interpreter: rounds of N tasks are created and gathered (the
creation hook, the task's one step, its done-callbacks, ``gather``'s own callback); the fastest
and the median rounds are kept.  The driver runs it in fresh processes, alternated: no probe,
the probe with ``TASKTOP_END_HISTORY=0`` (the creation hook alone), and the probe as shipped; the
difference of the last two is what the done-callback adds to a task's end::

    python bench/end_cost.py --n 20000 --runs 7
    python bench/end_cost.py --n 20000 --runs 7 --python /path/to/python3.12
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


async def _inner(n: int, repeat: int) -> dict:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.1)  # the probe thread started
    rounds = []
    for _ in range(repeat):
        create = loop.create_task
        t0 = time.perf_counter()
        await asyncio.gather(*[create(_quick()) for _ in range(n)])
        await asyncio.sleep(0)  # the done-callbacks scheduled last have run
        rounds.append((time.perf_counter() - t0) / n)
    return {"min_us": round(min(rounds) * 1e6, 3), "median_us": round(statistics.median(rounds) * 1e6, 3),
            "python": sys.version.split()[0]}


CONFIGS = (("no probe", {}), ("probe, no end history", {"TASKTOP": "1", "TASKTOP_END_HISTORY": "0"}),
           ("probe (TASKTOP=1)", {"TASKTOP": "1"}))


def _run(python: str, extra: dict, args) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env.update(extra)
    env.setdefault("TASKTOP_DIR", "/tmp/tasktop-bench-end")
    out = subprocess.run([python, os.path.abspath(__file__), "--inner", "--n", str(args.n), "--repeat", str(args.repeat)],
                         env=env, capture_output=True, text=True, timeout=300)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(asyncio.run(_inner(args.n, args.repeat))))
        return
    runs: dict = {name: [] for name, _ in CONFIGS}
    python = "?"
    for _ in range(args.runs):
        for name, extra in CONFIGS:
            row = _run(args.python, extra, args)
            runs[name].append(row["min_us"])
            python = row["python"]
    base = statistics.median(runs["no probe"])
    print(f"{args.n:,} tasks created and finished per round, min of {args.repeat} rounds, median of "
          f"{args.runs} alternated processes, Python {python}")
    print("| configuration | µs per task, create to end | added |")
    print("|---|---|---|")
    for name, _ in CONFIGS:
        value = statistics.median(runs[name])
        print(f"| {name} | {value:.2f} | {value - base:+.2f} |")


if __name__ == "__main__":
    main()
