"""What the probe costs a target left alone, and what a first dump costs after that.

A ``workload.py`` target (N parked tasks, with ``--orphans`` provably leaked and a ``--crowd``
on shared objects) runs with ``TASKTOP=1`` and no client for ``--alone`` seconds; the probe
thread's and the loop thread's CPU time are read from ``/proc`` (the probe thread's every
``--every`` seconds, so its samples show as steps).  Then the loop's idle jitter is measured,
and two default ``tasktop dump --json`` run back to back, each with its wall time, the probe
thread's CPU, the longest loop gap and the orphans proven::

    python bench/background_share.py --tasks 1000000 --alone 600
    python bench/background_share.py --tasks 1000000 --alone 5400 --every 60 --python /tmp/venv/bin/python
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from harness import Target, log, thread_cpu_ns
from verdict_cost import dump, proven


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--orphans", type=int, default=100, help="queues held only by their 3 waiters")
    parser.add_argument("--crowd", type=int, default=1000, help="tasks waiting on one shared Event and Queue")
    parser.add_argument("--alone", type=float, default=600.0, help="seconds the target is left alone")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between readings of the probe's CPU")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of the idle gap measurement")
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (tasktop installed)")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    tasktop = os.path.join(os.path.dirname(args.python), "tasktop")
    extra = ("--orphans", str(args.orphans), "--crowd", str(args.crowd))
    with Target(args.python, args.tasks, {"TASKTOP": "1", "TASKTOP_DIR": directory}, extra) as target:
        pid, probe = target.pid, target.info["probe_tid"]
        log(json.dumps(target.info))
        probe0, loop0, start = thread_cpu_ns(pid, probe), thread_cpu_ns(pid, pid), time.monotonic()
        steps = []
        while time.monotonic() - start < args.alone:
            time.sleep(min(args.every, max(0.0, args.alone - (time.monotonic() - start))))
            steps.append((round(time.monotonic() - start), round((thread_cpu_ns(pid, probe) - probe0) / 1e9, 2)))
        wall = time.monotonic() - start
        probe_s = (thread_cpu_ns(pid, probe) - probe0) / 1e9
        loop_s = (thread_cpu_ns(pid, pid) - loop0) / 1e9
        print(f"alone {wall:.0f} s: probe thread {probe_s:.2f} s = {100 * probe_s / wall:.3f} % of a core, "
              f"loop thread {loop_s:.2f} s = {100 * loop_s / wall:.3f} %", flush=True)
        print(f"probe thread's CPU (s) at (s since alone): {steps}", flush=True)
        target.tick()
        time.sleep(args.idle)
        idle = target.untick()
        print(f"idle: longest loop gap {idle['max_ms']} ms", flush=True)
        for i in range(2):
            cpu0 = thread_cpu_ns(pid, probe)
            target.tick()
            elapsed, data = dump(tasktop, pid, directory, True, None)
            gaps = target.untick()
            orphans, others, _unsettled = proven(data)
            print(f"default dump {i + 1}: {elapsed:.2f} s, probe thread {(thread_cpu_ns(pid, probe) - cpu0) / 1e9:.2f} s, "
                  f"longest loop gap {gaps['max_ms']} ms, orphans proven {orphans} of {3 * args.orphans}, "
                  f"others {others}", flush=True)


if __name__ == "__main__":
    main()
