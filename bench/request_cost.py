"""How long single probe requests hold the target's event loop up, at a given number of tasks.

Starts ``workload.py`` with N parked tasks and ``TASKTOP=1``, measures the loop's own jitter
(its 1 ms ticker with nobody asking, ``--quiet`` seconds), then sends each request of ``--ops``
in turn through one ``ProbeClient`` connection, each while the ticker runs: wall time, the
longest loop gap, and the longest once garbage collections are taken out.

    python bench/request_cost.py --tasks 1000000 --ops summary,summary,summary,waits,waits,waits
    python bench/request_cost.py --tasks 1000000 --ops summary,idle:40,summary   # the 30-s look-up
    python bench/request_cost.py --tasks 1000000 --cold --ops summary,summary,summary,complete
    python bench/request_cost.py --tasks 1000000 --ops complete,group,group,task,task   # drill-downs

``--cold``: the target's probe samples every 600 s (``TASKTOP_INTERVAL``), so no background pass
has walked the await chains when the first request comes (as right after attaching, or after a
burst of tasks).  A summary prints how many of its tasks are in the pseudo-groups whose chain
it had no time to walk; ``complete`` is a summary that walks every chain (``tasktop dump``).
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
    parser.add_argument("--ops", default="summary,summary,summary,waits,waits,waits")
    parser.add_argument("--quiet", type=float, default=5.0, help="seconds of ticker with no request first")
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (tasktop installed)")
    parser.add_argument("--cold", action="store_true", help="no background pass walks the chains first")
    args = parser.parse_args()
    from tasktop.client.probe_client import ProbeClient

    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    env = {"TASKTOP": "1", "TASKTOP_DIR": directory, **({"TASKTOP_INTERVAL": "600"} if args.cold else {})}
    with Target(args.python, args.tasks, env) as target:
        path = os.path.join(directory, f"{target.pid}.sock")
        wait_for(lambda: os.path.exists(path), timeout=120)
        target.tick()
        time.sleep(args.quiet)
        quiet = target.untick()
        print(f"{args.tasks:,} tasks; the loop's own jitter over {args.quiet:.0f} s: longest gap "
              f"{quiet['max_ms']} ms", flush=True)
        biggest = first = None  # set by a summary and by a group's listing
        with ProbeClient(path, timeout=1800) as client:
            for op in args.ops.split(","):
                target.tick()
                t0 = time.perf_counter()
                reply = None
                if op.startswith("idle:"):  # no request: what the background passes cost meanwhile
                    time.sleep(float(op[5:]))
                elif op == "complete":
                    reply = client.summary(complete=True)
                elif op == "group":  # the drill-down into the biggest group of the last summary
                    reply = client.group(biggest)
                elif op == "task":  # one task's detail: the first of the last group listed
                    reply = client.task(first)
                else:
                    reply = getattr(client, op)()
                wall = time.perf_counter() - t0
                gaps = target.untick()
                if isinstance(reply, dict) and reply.get("groups"):
                    biggest = max((g for g in reply["groups"] if g["kind"] == "task"), key=lambda g: g["count"])["id"]
                if isinstance(reply, dict) and reply.get("items"):
                    first = reply["items"][0]["id"]
                if not gaps.get("ticks"):  # answered before the ticker woke once
                    print(f"{op}: {wall:.3f} s, within one tick", flush=True)
                    continue
                print(f"{op}: {wall:.2f} s, longest loop gap {gaps['max_ms']} ms "
                      f"(non-GC {gaps['max_non_gc_ms']}), gaps over 10 ms: {gaps['over_10ms']}"
                      f"{_unwalked(reply)}", flush=True)


def _unwalked(reply: object) -> str:
    """``, chains not walked: N of M`` for a summary with pseudo-groups, else nothing."""
    from tasktop.probe.keys import UNWALKED_FUNC

    if not isinstance(reply, dict) or "groups" not in reply:
        return ""
    left = sum(g["count"] for g in reply["groups"] if g["stack"] and g["stack"][0]["func"] == UNWALKED_FUNC)
    return f", chains not walked: {left:,} of {reply['totals']['tasks']:,}" if left else ""


if __name__ == "__main__":
    main()
