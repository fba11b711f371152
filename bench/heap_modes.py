"""Where a target's memory with the probe goes: glibc's main heap against the rest, run after run.

At a million tasks the probe's share of the process came in two modes about 30 MiB apart
(bench/README, "2026-12-04, 16:09-16:45"): free memory left inside glibc's main heap, the
``[heap]`` mapping where the loop thread's allocations over 512 bytes go, while the hook's
``record_lists.made``, a list then, and the host's own growing lists moved each other there
(a deque since: "18:06-18:17").  This starts
``--runs`` ``workload.py`` targets one after the other (``TASKTOP=1``; ``--no-probe`` for none)
and prints for each its RSS when ready and, ``--settle`` seconds later, the resident size of
``[heap]`` and of everything else (``/proc/PID/smaps``)::

    python bench/heap_modes.py --tasks 1000000 --runs 6 --python /tmp/venv/bin/python
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time

from harness import Target


def resident_kb(pid: int) -> tuple[int, int]:
    """``(kB resident in [heap], kB resident in all)`` of process ``pid``."""
    heap = total = 0
    name = ""
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            fields = line.split()
            if fields[0] == "Rss:":
                total += int(fields[1])
                if name == "[heap]":
                    heap += int(fields[1])
            elif not fields[0].endswith(":"):  # a mapping's header line: its name is the sixth field
                name = fields[5] if len(fields) > 5 else ""
    return heap, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after ready before reading smaps")
    parser.add_argument("--no-probe", action="store_true", help="targets without the probe")
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (tasktop installed)")
    args = parser.parse_args()
    env = {} if args.no_probe else {"TASKTOP": "1", "TASKTOP_DIR": tempfile.mkdtemp(prefix="tasktop-bench-")}
    print("| run | RSS when ready (MiB) | [heap] resident (MiB) | the rest (MiB) |")
    print("|---|---|---|---|")
    for run in range(1, args.runs + 1):
        with Target(args.python, args.tasks, env) as target:
            time.sleep(args.settle)
            heap, total = resident_kb(target.pid)
            print(f"| {run} | {target.info['rss_kb'] // 1024:,} | {heap // 1024:,} | {(total - heap) // 1024:,} |",
                  flush=True)


if __name__ == "__main__":
    main()
