"""What one yield of the pacer costs, alone: a turn of the loop against a fixed sleep.

In one process, an asyncio loop whose only work is a ticker sleeping 1 ms at a time (the
benchmarks' targets have one), and a thread that does what a long pass of the probe does:
``--stretches`` stretches of 2 ms of pure CPU (the pacer's ``PACE``), each followed by the
pacer's yield (``turn``: ``handoff.Pacer.now``, a turn of the loop) or by the fixed 100 µs
sleep the pacer used before turns (``sleep``).  Printed per run: the thread's wall time per
stretch (2 ms of work plus what the yield cost it), the loop thread's CPU over the run (each
turn may add an iteration), and the ticker's gaps (how long the loop was kept waiting).

    python bench/turn_cost.py --yield turn sleep --runs 3
    python bench/turn_cost.py --python /tmp/old/bin/python --yield turn

With ``--python``, each run is made by that interpreter (tasktop installed in it), so that two
versions of the probe can be alternated.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import threading
import time


async def _measure(how: str, stretches: int) -> dict:
    from tasktop.probe import handoff

    loop = asyncio.get_running_loop()
    pacer_handoff = handoff.Handoff()
    pacer_handoff.active = True
    pacer_handoff.attach(loop)
    gaps: list = []
    stop = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.1)
    result: dict = {}

    def passes() -> None:
        handoff.exact_sleeps()
        pacer = handoff.Pacer(pacer_handoff)
        start = time.perf_counter()
        for _ in range(stretches):
            end = time.perf_counter() + handoff.PACE
            while time.perf_counter() < end:
                pass
            if how == "turn":
                pacer.now()
            else:
                time.sleep(handoff.YIELD)
        result["wall"] = time.perf_counter() - start

    before = resource.getrusage(resource.RUSAGE_THREAD)
    thread = threading.Thread(target=passes)
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.05)
    after = resource.getrusage(resource.RUSAGE_THREAD)
    stop = True
    await ticking
    pacer_handoff.active = False
    gaps.sort()
    return {
        "yield": how,
        "per_stretch_ms": result["wall"] / stretches * 1e3,
        "loop_cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "longest_gap_ms": gaps[-1] * 1e3,
        "p99_gap_ms": gaps[int(len(gaps) * 0.99)] * 1e3,
        "gaps_over_10ms": sum(g > 0.010 for g in gaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--yield", dest="how", nargs="+", choices=("turn", "sleep"), default=["turn", "sleep"])
    parser.add_argument("--stretches", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=1, help="runs of each, alternated")
    parser.add_argument("--python", default=sys.executable, help="the interpreter of each run (tasktop installed)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(asyncio.run(_measure(args.how[0], args.stretches))))
        return
    print("| yield | per stretch (ms) | loop thread CPU (s) | longest gap (ms) | 99th pct (ms) | over 10 ms |")
    print("|---|---|---|---|---|---|")
    for _ in range(args.runs):
        for how in args.how:
            out = subprocess.run([args.python, __file__, "--inner", "--yield", how,
                                  "--stretches", str(args.stretches)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out)
            print(f"| {r['yield']} | {r['per_stretch_ms']:.3f} | {r['loop_cpu_s']:.2f} | "
                  f"{r['longest_gap_ms']:.1f} | {r['p99_gap_ms']:.2f} | {r['gaps_over_10ms']} |", flush=True)


if __name__ == "__main__":
    main()
