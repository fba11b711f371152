"""What the drivers share: starting a ``workload.py`` target, talking to it, and reading CPU time.

CPU time comes from ``/proc/PID/task/TID/schedstat`` (nanoseconds on the CPU, as the scheduler
counts them) rather than ``stat``'s 10 ms clock ticks: at 1% of a core over a minute the probe
runs for only 600 ms, which ticks would measure to +-10 ms per sample.
"""
from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "workload.py")


class Target:
    """One ``workload.py`` process; ``info`` is its ready line (pid, task count, probe thread)."""

    def __init__(self, python: str, tasks: int, env: dict | None = None, extra: tuple = ()) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
        full_env.update(env or {})
        # Commands and replies go through pipes of their own, not stdin/stdout: aiomonitor's
        # prompt_toolkit UI reads the target's stdin and writes to its stdout.
        cmd_r, cmd_w = os.pipe()
        reply_r, reply_w = os.pipe()
        self.proc = subprocess.Popen([python, WORKLOAD, "--tasks", str(tasks), "--control-fd", str(cmd_r),
                                      "--reply-fd", str(reply_w), *extra],
                                     # stdin: a pipe kept open and silent (at EOF prompt_toolkit spins)
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=full_env,
                                     pass_fds=(cmd_r, reply_w))
        os.close(cmd_r)
        os.close(reply_w)
        self.commands = os.fdopen(cmd_w, "w", buffering=1)
        self.replies = os.fdopen(reply_r, "r")
        self.pid = self.proc.pid
        self.info = self._read(timeout=120.0)
        if not self.info.get("ready"):
            raise RuntimeError(f"target did not start: {self.info}")

    def _read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.replies], [], [], timeout)
        if not ready:
            raise TimeoutError("the target did not answer")
        line = self.replies.readline()
        if not line:
            raise RuntimeError(f"the target exited ({self.proc.poll()})")
        return json.loads(line)

    def command(self, text: str, timeout: float = 60.0) -> dict:
        self.commands.write(text + "\n")
        self.commands.flush()
        return self._read(timeout)

    def tick(self, threads: bool = False) -> None:
        """Start the target's ticker; ``threads``: with the loop thread's CPU time (Linux)."""
        self.command("tick threads" if threads else "tick")

    def untick(self) -> dict:
        return self.command("untick")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.commands.write("quit\n")
                self.commands.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for fh in (self.commands, self.replies, self.proc.stdin):
            try:
                fh.close()
            except OSError:
                pass

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def thread_cpu_ns(pid: int, tid: int) -> int:
    with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
        return int(fh.read().split()[0])


def process_cpu_ns(pid: int) -> int:
    """CPU time of every live thread of ``pid`` (none exits during a measurement window)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += thread_cpu_ns(pid, int(tid))
        except (OSError, ValueError):
            pass
    return total


def stats_ms(values: list) -> dict:
    """min / median / max of seconds, in ms."""
    if not values:
        return {}
    return {"n": len(values), "min_ms": round(min(values) * 1e3, 2),
            "median_ms": round(statistics.median(values) * 1e3, 2),
            "max_ms": round(max(values) * 1e3, 2)}


def run_sizes(sizes: list, measure, out: str | None, table) -> None:
    """``measure(i, n)`` for each size, saving the results after each (a later one may fail),
    then the raw results on stderr and the table on stdout."""
    results = []
    for i, n in enumerate(sizes):
        results.append(measure(i, n))
        if out:
            with open(out, "w") as fh:
                json.dump(results, fh, indent=1)
    print(json.dumps(results, indent=1), file=sys.stderr)
    print(table(results))


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not reached")
