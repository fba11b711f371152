"""What ``tasktop attach`` costs, on every CPython 3.9-3.15 the machine has (issue 12).

Per Python, two targets started without the probe (``workload.py``):

* **idle**: no task, the loop waiting in ``epoll_wait`` with nothing to do (on 3.14+ the
  ``sys.remote_exec`` request is served only once ptrace wakes the main thread).
* **ticking**: N parked tasks and the ticker, a coroutine sleeping 1 ms at a time that
  records every gap between its wake-ups: the longest gap while ``tasktop attach`` runs is
  what the attach cost the loop, next to the longest gap over as long a window without it.

Measured: the wall time from starting ``tasktop attach PID`` (the command, as a user runs it)
to the first ``summary`` reply in hand, over ``--rounds`` attach/detach cycles.

    python bench/attach_cost.py                 # every Python found, 1000 tasks, 5 rounds
    python bench/attach_cost.py --versions 3.12 3.14 --tasks 10000
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from harness import Target, log

from tasktop.client.probe_client import ProbeClient
from tasktop.wire import paths


def python(version: str) -> str | None:
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")))
    return found[-1] if found else shutil.which(f"python{version}")


def tasktop(*args: str, env: dict) -> None:
    exe = shutil.which("tasktop", path=os.path.dirname(sys.executable)) or "tasktop"
    done = subprocess.run([exe, *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(done.stderr.strip())


def first_summary(pid: int, env: dict) -> float:
    """Seconds from ``tasktop attach PID`` to the first summary."""
    started = time.perf_counter()
    tasktop("attach", str(pid), env=env)
    with ProbeClient(paths.socket_path(pid, env["TASKTOP_DIR"])) as client:
        client.summary()
    return time.perf_counter() - started


def measure(exe: str, tasks: int, rounds: int, env: dict) -> dict:
    out: dict = {}
    with Target(exe, 0) as idle:
        times = []
        for _ in range(rounds):
            times.append(first_summary(idle.pid, env))
            tasktop("detach", str(idle.pid), env=env)
        out["idle_s"] = times
    with Target(exe, tasks) as busy:
        times, gaps, quiet = [], [], []
        for _ in range(rounds):
            busy.tick()
            took = first_summary(busy.pid, env)
            gaps.append(busy.untick()["max_ms"])
            times.append(took)
            tasktop("detach", str(busy.pid), env=env)
            busy.tick()
            time.sleep(took)
            quiet.append(busy.untick()["max_ms"])
        out.update(ticking_s=times, gap_ms=gaps, quiet_gap_ms=quiet)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", nargs="*", default=[f"3.{m}" for m in range(9, 16)])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="tt-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env["TASKTOP_DIR"] = directory
    rows = []
    for version in args.versions:
        exe = python(version)
        if exe is None:
            log(f"no Python {version}: skipped")
            continue
        log(f"Python {version} ...")
        rows.append((version, measure(exe, args.tasks, args.rounds, env)))
    med = lambda xs: statistics.median(xs)  # noqa: E731
    print(f"| Python | attach → first summary, idle loop (median / max) | with {args.tasks} tasks, "
          f"ticking (median / max) | longest loop gap during attach (median / max) | longest gap, "
          f"as long without attach (max) |")
    print("| --- | --- | --- | --- | --- |")
    for version, r in rows:
        print(f"| {version} | {med(r['idle_s']) * 1e3:.0f} / {max(r['idle_s']) * 1e3:.0f} ms "
              f"| {med(r['ticking_s']) * 1e3:.0f} / {max(r['ticking_s']) * 1e3:.0f} ms "
              f"| {med(r['gap_ms']):.1f} / {max(r['gap_ms']):.1f} ms | {max(r['quiet_gap_ms']):.1f} ms |")
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
