"""What a task's end costs with the probe: microseconds per task created, run to completion and
freed, with and without the probe, in fresh processes, alternated.

The probe does nothing when a task finishes; when a task is *freed*, its record leaves the
probe's table (and, since lost tasks are counted, waits among the last freed ones in
``hooks.departed``).  This times the whole life of a short task so that both show::

    python bench/ending_cost.py --n 50000 --runs 7 --compare before=/tmp/old/bin/python,/tmp/new/bin/python
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

INNER = r'''
import asyncio, gc, json, sys, time

async def short():
    return 1

async def main(n, repeat):
    loop = asyncio.get_running_loop()
    best = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n // 100):
            tasks = [loop.create_task(short()) for _ in range(100)]
            await asyncio.gather(*tasks)
            del tasks
        best.append((time.perf_counter() - t0) / n * 1e6)
    print(json.dumps(sorted(best)[len(best) // 2]))

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
'''


def one(python: str, n: int, probe: bool) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    if probe:
        env["TASKTOP"] = "1"
    out = subprocess.run([python, "-c", INNER, str(n), "5"], capture_output=True, text=True, env=env,
                         check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--compare", required=True, metavar="LABEL=A,B",
                        help="two interpreters (each with its tasktop installed): before, after")
    args = parser.parse_args()
    label, pair = args.compare.split("=", 1)
    a, b = pair.split(",")
    runs: dict = {"none": [], "A": [], "B": []}
    for _ in range(args.runs):
        runs["none"].append(one(a, args.n, False))
        runs["A"].append(one(a, args.n, True))
        runs["B"].append(one(b, args.n, True))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"{args.n:,} short tasks created, run and freed in a fresh process, median of {args.runs} alternated runs")
    print("| Python | no probe | A: probe | A: added | B: probe | B: added |")
    print("|---|---|---|---|---|---|")
    print(f"| {label} | {med['none']:.2f} µs | {med['A']:.2f} µs | {med['A'] - med['none']:+.2f} | "
          f"{med['B']:.2f} µs | {med['B'] - med['none']:+.2f} |")
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
