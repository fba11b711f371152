"""Reading a process WITHOUT the probe on CPython 3.14+, side by side with the interpreter's own
tools: ``tasktop dump PID`` (tasks read from outside, grouped, plus py-spy's threads), tasktop's
reader alone (``remote_memory.read_tasks``: the walk of the task lists, no py-spy, no grouping)
and the interpreter's reader as tasktop runs it (``remote_tasks.read_by_interpreter``, its
fallback), against ``python -m asyncio ps PID`` (one line per task, ungrouped) and, on 3.15,
``python -m profiling.sampling dump --async-aware PID``.

One ``workload.py`` target per Python and size, started without ``TASKTOP``; the commands are
run in turn (A B C A B C ...) so that a drift of the shared machine hits each alike, and each
figure is the median wall time of ``--runs`` runs after one warm-up.

    python bench/remote_read.py --tasks 1000 20000 60000 --python /path/to/python3.14 /path/to/python3.15
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

from harness import Target, log


#: Run by tasktop's Python: one reader of ``sys.argv[1]``'s tasks, printing how many it read.
READ_ONLY = ("import sys; from tasktop.client import remote_memory, remote_tasks; "
             "read = remote_memory.read_tasks if sys.argv[2] == 'tasktop' else remote_tasks.read_by_interpreter; "
             "raw = read(int(sys.argv[1])); print(sum(len(t['tasks']) for t in raw['threads']))")


def commands(python: str, pid: int, tasktop: str) -> dict[str, list[str]]:
    out = {
        "tasktop dump": [tasktop, "dump", str(pid), "--no-verdicts"],
        "tasktop's reader alone": [sys.executable, "-c", READ_ONLY, str(pid), "tasktop"],
        "interpreter's reader (tasktop's fallback)": [sys.executable, "-c", READ_ONLY, str(pid), "interpreter"],
        "asyncio ps": [python, "-m", "asyncio", "ps", str(pid)],
    }
    probe = subprocess.run([python, "-m", "profiling.sampling", "dump", "--help"], capture_output=True, text=True)
    if probe.returncode == 0 and "--async-aware" in probe.stdout:
        out["profiling.sampling dump --async-aware"] = [python, "-m", "profiling.sampling", "dump",
                                                        "--async-aware", str(pid)]
    return out


def time_once(command: list[str]) -> tuple[float, int, int]:
    """(wall seconds, exit status, lines of output; for a reader alone, the tasks it read)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if command[1:2] == ["-c"] and done.returncode == 0:
        return wall, 0, int(done.stdout.strip() or 0)
    return wall, done.returncode, done.stdout.count("\n")


def measure(python: str, tasks: int, runs: int, tasktop: str) -> list[dict]:
    target = Target(python, tasks)
    try:
        cmds = commands(python, target.pid, tasktop)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        lines: dict[str, int] = {}
        status: dict[str, int] = {}
        for round_ in range(runs + 1):  # the first round is a warm-up
            for name, command in cmds.items():
                wall, code, count = time_once(command)
                if round_:
                    times[name].append(wall)
                lines[name], status[name] = count, code
        version = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                                 capture_output=True, text=True).stdout.strip()
        return [{"python": version, "tasks": tasks, "command": name,
                 "median_s": round(statistics.median(values), 3), "min_s": round(min(values), 3),
                 "max_s": round(max(values), 3), "lines": lines[name], "exit": status[name]}
                for name, values in times.items()]
    finally:
        target.proc.kill()
        target.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 20000, 60000])
    parser.add_argument("--python", nargs="+", required=True, help="CPython 3.14+ interpreters")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tasktop = shutil.which("tasktop", path=os.path.dirname(sys.executable)) or shutil.which("tasktop")
    if tasktop is None:
        sys.exit("tasktop is not installed next to this Python")
    print("| Python | tasks | command | median s | min–max s | lines out (tasks read) | exit |")
    print("| --- | ---: | --- | ---: | --- | ---: | ---: |")
    for python in args.python:
        for n in args.tasks:
            log(f"{python}: {n} tasks")
            for row in measure(python, n, args.runs, tasktop):
                print(f"| {row['python']} | {row['tasks']:,} | `{row['command']}` | {row['median_s']:.2f} | "
                      f"{row['min_s']:.2f}–{row['max_s']:.2f} | {row['lines']:,} | {row['exit']} |", flush=True)


if __name__ == "__main__":
    main()
