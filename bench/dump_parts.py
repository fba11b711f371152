"""Where a default ``tasktop dump`` goes: its three requests timed apart, right after the burst.

``tasktop dump PID`` sends a complete summary (every await chain walked), then the waits and the
leak verdicts from the same pass (``same_pass``).  This driver sends the same three through the
client the command uses, to a ``workload.py`` target (as ``verdict_cost.py`` makes it: 100 queues
held only by their 3 waiters, 1,000 tasks on one shared Event and Queue), and prints each one's
wall time, the longest loop gap and the orphans proven, for ``--rounds`` dumps in a row: the
first walks the chains the burst left, the later ones find them walked.  Alternate two
installations with ``--python`` to compare them.

Usage (from the repository root, with tasktop installed in the interpreters given)::

    python bench/dump_parts.py --tasks 1000000 --python /tmp/new/bin/python
    python bench/dump_parts.py --tasks 1000000 --python /tmp/old/bin/python
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from harness import Target, wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="dumps in a row")
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (tasktop installed)")
    args = parser.parse_args()
    from tasktop.client.probe_client import ProbeClient

    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    with Target(args.python, args.tasks, {"TASKTOP": "1", "TASKTOP_DIR": directory},
                ("--orphans", "100", "--crowd", "1000")) as target:
        path = os.path.join(directory, f"{target.pid}.sock")
        wait_for(lambda: os.path.exists(path), timeout=120)
        for n in range(args.rounds):
            target.tick()
            with ProbeClient(path, timeout=600) as client:
                t0 = time.perf_counter()
                client.summary(complete=True)
                t1 = time.perf_counter()
                client.waits(same_pass=True)
                t2 = time.perf_counter()
                verdicts = client.verdicts(2.0, same_pass=True)
                t3 = time.perf_counter()
            gaps = target.untick()
            proven = sum(v["count"] for v in verdicts["verdicts"] if v["verdict"] == "unreachable")
            print(f"dump {n + 1}: summary {t1 - t0:.2f} s, waits {t2 - t1:.2f} s, verdicts {t3 - t2:.2f} s,"
                  f" in all {t3 - t0:.2f} s; longest loop gap {gaps['max_ms']:.1f} ms; proven {proven}", flush=True)


if __name__ == "__main__":
    main()
