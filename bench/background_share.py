"""What the probe costs a target left alone, and what a first dump costs after that.

A ``workload.py`` target (N parked tasks, with ``--orphans`` provably leaked and a ``--crowd``
on shared objects) runs with ``TASKTOP=1`` and no client for ``--alone`` seconds; the probe
thread's and the loop thread's CPU time are read from ``/proc`` (the probe thread's every
``--every`` seconds, so its samples show as steps).  Then the loop's idle jitter is measured,
and two default ``tasktop dump --json`` run back to back, each with its wall time, the probe
thread's CPU, the longest loop gap and the orphans proven.  With ``--ticking``, the target's
1 ms ticker runs while it is alone too, and the probe thread's CPU is read every 0.1 s: the
longest loop gaps are then given whether the probe thread ran in the 0.1 s around them (a
burst's pass, a background step), so that what the background holds the loop for is told
from the machine's own jitter (the ticker adds to the loop thread's share)::

    python bench/background_share.py --tasks 1000000 --alone 600
    python bench/background_share.py --tasks 300000 --alone 240 --ticking
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
    parser.add_argument("--ticking", action="store_true", help="the ticker runs while alone too")
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (tasktop installed)")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    tasktop = os.path.join(os.path.dirname(args.python), "tasktop")
    extra = ("--orphans", str(args.orphans), "--crowd", str(args.crowd))
    with Target(args.python, args.tasks, {"TASKTOP": "1", "TASKTOP_DIR": directory}, extra) as target:
        pid, probe = target.pid, target.info["probe_tid"]
        log(json.dumps(target.info))
        if args.ticking:
            target.tick(threads=True)
        probe0, loop0, start = thread_cpu_ns(pid, probe), thread_cpu_ns(pid, pid), time.monotonic()
        steps, busy = [], []  # (s since alone, probe CPU s); (monotonic, probe CPU ms) per 0.1 s it ran
        last = probe0
        while time.monotonic() - start < args.alone:
            time.sleep(min(0.1 if args.ticking else args.every, max(0.0, args.alone - (time.monotonic() - start))))
            now, cpu = time.monotonic(), thread_cpu_ns(pid, probe)
            if cpu - last > 5e6:  # more than the heartbeat's
                busy.append((now, (cpu - last) / 1e6))
            last = cpu
            if not steps or now - start - steps[-1][0] >= args.every - 0.05 or not args.ticking:
                steps.append((round(now - start), round((cpu - probe0) / 1e9, 2)))
        wall = time.monotonic() - start
        if args.ticking:
            alone = target.untick()
            print(f"alone, ticking: longest loop gap {alone['max_ms']} ms, {alone['over_5ms']} over 5 ms, "
                  f"{alone['over_10ms']} over 10 ms; the probe thread ran {sum(ms for _t, ms in busy):.0f} ms "
                  f"in {len(busy)} tenths of a second", flush=True)
            during = []  # of the longest gaps, those the probe thread ran around
            for n, (began, ms) in enumerate(alone["longest"]):
                ran = sum(cpu for t, cpu in busy if began - 0.1 <= t <= began + ms / 1000 + 0.1)
                if ran:
                    during.append(ms)
                if n < 8:
                    print(f"  gap {ms} ms at {began - start:.2f} s: the probe thread ran {ran:.0f} ms around it",
                          flush=True)
            print(f"  of the {len(alone['longest'])} longest, {len(during)} while the probe thread ran, the longest "
                  f"{max(during, default=0.0)} ms", flush=True)
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
