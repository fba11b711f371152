"""What a default ``tasktop dump`` (leak verdicts included) costs a big process, and what it proves.

The target is ``workload.py`` with N parked tasks waiting on queues and events the process
still reaches (so none of them is a provable leak), ``--crowd`` more on one shared Event and
Queue, ``--orphans`` queues each referenced only by the 3 tasks waiting on it (provable leaks:
3 x orphans tasks), and ``--heap`` extra objects the garbage collector tracks.  For each N it
runs ``tasktop dump PID --json`` (verdicts on, the default) and ``--no-verdicts`` back to back,
each while the target's 1 ms ticker runs, and reports per run:

Then, as many times each, what else asks for a complete pass or for verdicts: ``tasktop check
PID --max-tasks ...`` (one complete summary) and the request the TUI's ``v`` screen sends
(``verdicts`` with its budget, no ``same_pass``: a pass of its own, then the proof).

* wall time of the command;
* the longest gap between the ticker's wake-ups (how long the event loop was held up);
* how many of the orphaned tasks were proven leaks, and how many tasks were "proven" that are
  not orphans (must be 0: anything else is reachable).

Usage (from the repository root, with tasktop installed in the interpreter given)::

    python bench/verdict_cost.py --tasks 10000 100000 --heap 3000000
    python bench/verdict_cost.py --tasks 1000000 --python /path/to/venv/bin/python
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from harness import Target, log, run_sizes, wait_for

ORPHAN_FUNCS = ("_orphan", "orphan")


def _command(cmd: list, directory: str) -> tuple[float, dict]:
    """Run a ``tasktop`` command that prints JSON: (wall time, what it printed)."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TASKTOP_DIR=directory),
                          timeout=600)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")
    return elapsed, json.loads(done.stdout)


def dump(tasktop: str, pid: int, directory: str, verdicts: bool, budget: float | None) -> tuple[float, dict]:
    cmd = [tasktop, "dump", str(pid), "--json"]
    if not verdicts:
        cmd.append("--no-verdicts")
    if budget is not None:
        cmd += ["--budget", str(budget)]
    return _command(cmd, directory)


def check(tasktop: str, pid: int, directory: str) -> tuple[float, dict]:
    """``tasktop check`` with a threshold no target passes: one complete summary."""
    return _command([tasktop, "check", str(pid), "--max-tasks", "1000000000", "--json"], directory)


def screen(path: str) -> tuple[float, dict]:
    """The request the TUI's ``v`` screen sends, through the client it uses."""
    from tasktop.client.probe_client import ProbeClient
    from tasktop.tui.screens.verdicts import BUDGET_S

    t0 = time.perf_counter()
    with ProbeClient(path, timeout=600) as client:
        reply = client.verdicts(BUDGET_S)
    return time.perf_counter() - t0, reply


KINDS = ("no-verdicts", "default", "check", "v screen")


def proven(data: dict) -> tuple[int, int, list]:
    """(orphaned tasks proven, other members proven, the unsettled note)."""
    orphans = others = 0
    for v in data.get("verdicts") or ():
        if v["verdict"] != "unreachable":
            continue
        func = ((v.get("frame") or {}).get("func") or "").split(".")[-1]
        if func in ORPHAN_FUNCS:
            orphans += v["count"]
        else:
            others += v["count"]
    return orphans, others, data.get("verdicts_unsettled")


def measure(n: int, args: argparse.Namespace) -> dict:
    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    tasktop = os.path.join(os.path.dirname(args.python), "tasktop")
    extra = ("--orphans", str(args.orphans), "--crowd", str(args.crowd), "--heap", str(args.heap))
    out: dict = {"tasks": n, "orphans": args.orphans, "crowd": args.crowd, "heap": args.heap, "runs": []}
    log(f"[{n}] starting the target")
    with Target(args.python, n, {"TASKTOP": "1", "TASKTOP_DIR": directory}, extra) as target:
        out["python"] = target.info["python"]
        out["live_tasks"] = target.info["tasks"]
        out["rss_kb"] = target.info["rss_kb"]
        wait_for(lambda: os.path.exists(os.path.join(directory, f"{target.pid}.sock")), timeout=120)
        path = os.path.join(directory, f"{target.pid}.sock")
        for kind in args.kinds:
            verdicts = kind in ("default", "v screen")
            for i in range(args.repeat):
                target.tick()
                try:
                    if kind == "check":
                        elapsed, data = check(tasktop, target.pid, directory)
                    elif kind == "v screen":
                        elapsed, data = screen(path)
                    else:
                        elapsed, data = dump(tasktop, target.pid, directory, verdicts, args.budget)
                except (RuntimeError, OSError) as exc:  # a version that does not cope: recorded as such
                    gaps = target.untick()
                    run = {"kind": kind, "verdicts": verdicts, "i": i, "error": str(exc).splitlines()[-1][-120:],
                           "max_gap_ms": gaps["max_ms"]}
                    log(f"[{n}] {json.dumps(run)}")
                    out["runs"].append(run)
                    continue
                gaps = target.untick()
                run = {"kind": kind, "verdicts": verdicts, "i": i, "wall_s": round(elapsed, 3),
                       "max_gap_ms": gaps["max_ms"], "max_non_gc_ms": gaps.get("max_non_gc_ms"),
                       "over_10ms": gaps.get("over_10ms"), "median_gap_ms": gaps.get("median_ms"),
                       "tasks": (data.get("totals") or {}).get("tasks")}
                if verdicts:
                    run["orphans_proven"], run["others_proven"], run["unsettled"] = proven(data)
                log(f"[{n}] {json.dumps(run)}")
                out["runs"].append(run)
        target.tick()
        time.sleep(args.idle)
        out["idle"] = target.untick()
        out["rss_kb_end"] = int(open(f"/proc/{target.pid}/status").read().split("VmRSS:")[1].split()[0])
    return out


def _kind(run: dict) -> str:
    """What a run was: runs saved before "kind" was recorded are dumps, told apart by "verdicts"."""
    return run.get("kind", "default" if run["verdicts"] else "no-verdicts")


def table(results: list) -> str:
    lines = ["| N | command | wall (s) | longest loop gap (ms) | orphans proven | others proven |",
             "|---|---|---|---|---|---|"]
    names = {"no-verdicts": "dump --json --no-verdicts", "default": "dump --json", "check": "check",
             "v screen": "the `v` screen's request"}
    for r in results:
        for kind in dict.fromkeys(map(_kind, r["runs"])):  # in the order they ran
            runs = [x for x in r["runs"] if _kind(x) == kind]
            if not runs:
                continue
            verdicts, name = runs[0]["verdicts"], names[kind]
            walls = " / ".join(f'{x["wall_s"]:.2f}' if "wall_s" in x else "failed" for x in runs)
            gaps = " / ".join(f'{x["max_gap_ms"]:.1f}' for x in runs)
            proven_ = " / ".join(str(x.get("orphans_proven", "-")) for x in runs)
            others = " / ".join(str(x.get("others_proven", "-")) for x in runs) if verdicts else "-"
            lines.append(f'| {r["live_tasks"]:,} | {name} | {walls} | {gaps} | {proven_} of {3 * r["orphans"]} | {others} |'
                         if verdicts else f'| {r["live_tasks"]:,} | {name} | {walls} | {gaps} | - | - |')
        lines.append(f'| {r["live_tasks"]:,} | idle (no request) | | {r["idle"]["max_ms"]:.1f} | | |')
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--orphans", type=int, default=100, help="queues held only by their 3 waiters")
    parser.add_argument("--crowd", type=int, default=1000, help="tasks waiting on one shared Event and Queue")
    parser.add_argument("--heap", type=int, default=0, help="extra gc-tracked objects in the target")
    parser.add_argument("--repeat", type=int, default=3, help="dumps of each kind, back to back")
    parser.add_argument("--budget", type=float, help="--budget for the dumps (default: tasktop's)")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of the idle gap measurement")
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (tasktop installed)")
    parser.add_argument("--out", help="write the raw results here as JSON")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), metavar="KIND",
                        help=f"what to run, in this order (default: {' '.join(map(repr, KINDS))}); "
                             "the first one walks every chain of a target no pass has walked yet")
    args = parser.parse_args()
    run_sizes(args.tasks, lambda _i, n: measure(n, args), args.out, table)


if __name__ == "__main__":
    main()
