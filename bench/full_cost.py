"""What the probe's memory and ``tasktop dump --full`` cost a process with many parked tasks.

Starts ``workload.py`` with N tasks without the probe (its RSS), then with ``TASKTOP=1``, and
runs ``tasktop dump PID`` plain, ``--full`` and ``--json --full`` (leak verdicts off), each
while the target's 1 ms ticker runs: exit status, bytes, wall time, longest loop gap; then the
target's RSS after them.

    python bench/full_cost.py --tasks 1000000
    python bench/full_cost.py --tasks 1000000 --summaries 3   # three plain dumps, no --full
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from harness import Target, wait_for


def rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return int(fh.read().split("VmRSS:")[1].split()[0]) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (tasktop installed)")
    parser.add_argument("--summaries", type=int, default=0,
                        help="this many plain dumps in a row (the first walks every chain) instead of the --full ones")
    args = parser.parse_args()
    tasktop = os.path.join(os.path.dirname(args.python), "tasktop")
    with Target(args.python, args.tasks) as plain:
        plain_mib = plain.info['rss_kb'] // 1024
        print(f"RSS without the probe: {plain_mib} MiB", flush=True)
    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    env = dict(os.environ, TASKTOP_DIR=directory)
    with Target(args.python, args.tasks, {"TASKTOP": "1", "TASKTOP_DIR": directory}) as target:
        print(f"RSS with the probe, at start: {target.info['rss_kb'] // 1024} MiB", flush=True)
        wait_for(lambda: os.path.exists(os.path.join(directory, f"{target.pid}.sock")), timeout=120)
        runs = [[]] * args.summaries if args.summaries else [[], ["--full"], ["--json", "--full"]]
        for extra in runs:
            target.tick()
            t0 = time.perf_counter()
            done = subprocess.run([tasktop, "dump", str(target.pid), "--no-verdicts", *extra],
                                  capture_output=True, env=env, timeout=1800)
            wall = time.perf_counter() - t0
            gaps = target.untick()
            print(f"dump {' '.join(extra) or '(summary)'}: exit {done.returncode}, {len(done.stdout):,} bytes, "
                  f"{wall:.2f} s, longest loop gap {gaps['max_ms']} ms (non-GC {gaps['max_non_gc_ms']})"
                  + (f": {done.stderr.decode().strip()}" if done.returncode else ""), flush=True)
            if args.summaries:
                after = rss_mib(target.pid)
                print(f"  RSS {after} MiB: the probe's share {(after - plain_mib) / after:.1%}", flush=True)
        print(f"RSS with the probe, after: {rss_mib(target.pid)} MiB")


if __name__ == "__main__":
    main()
