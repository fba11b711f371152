"""Thread stacks of a process that has no probe, through py-spy.

py-spy reads another process's memory (ptrace), so it needs no cooperation from the target —
but it only sees threads: asyncio tasks are objects on the heap, which only the in-process
probe can walk.  The result is shaped like the probe's ``full`` reply (threads only), so the
same report code prints it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from tasktop.wire.kernel import SYSCALL_STATES, kernel_state
from tasktop.wire import SCHEMA
from tasktop.wire.groups import group_id, groups_of

from .discovery import argv_of

ENABLE_HINT = ("asyncio tasks need the probe inside the process: start it with TASKTOP=1 "
               "(e.g. TASKTOP=1 python app.py) or with `tasktop run -- CMD`")

# What a thread is doing, from the innermost standard-library frame py-spy names.
_FRAME_STATES = {
    ("threading.py", "wait"): "Condition.wait", ("threading.py", "Condition.wait"): "Condition.wait",
    ("threading.py", "Event.wait"): "Event.wait", ("threading.py", "join"): "Thread.join",
    ("threading.py", "Thread.join"): "Thread.join",
    ("threading.py", "Thread._wait_for_tstate_lock"): "Thread.join",
    ("queue.py", "get"): "Queue.get", ("queue.py", "Queue.get"): "Queue.get",
    ("queue.py", "put"): "Queue.put", ("queue.py", "Queue.put"): "Queue.put",
    ("selectors.py", "select"): "I/O wait", ("selectors.py", "EpollSelector.select"): "I/O wait",
}
_OUTER_STATES = {"Event.wait", "Queue.get", "Queue.put", "Thread.join"}


class PySpyError(Exception):
    """py-spy could not read the process; the message is one line for the user."""


def find_pyspy() -> str | None:
    here = os.path.dirname(sys.executable)
    return shutil.which("py-spy", path=here) or shutil.which("py-spy")


def _classify(frames: list[dict], active: bool, kernel: dict) -> str:
    if active or kernel.get("state") == "R":
        return "running"
    state = None
    frames = [f for f in frames if f.get("file", "").endswith(".py")]  # not native ones (--native)
    for frame in frames[:4]:
        found = _FRAME_STATES.get((os.path.basename(frame.get("file", "")), frame.get("func", "")))
        if found is None:
            if state is None:
                continue
            break
        if state is None or found in _OUTER_STATES:
            state = found
    in_loop = any(f.get("func", "").endswith(("run_forever", "_run_once")) for f in frames[:12])
    state = state or SYSCALL_STATES.get(kernel.get("syscall") or "") or "waiting"
    return "idle loop" if state == "I/O wait" and in_loop else state


#: Reads of a thread's kernel state, RESETTLE_S apart, before "R" is believed of a thread py-spy
#: saw idle: py-spy's attach interrupts blocking system calls, and a thread restarting its own
#: is runnable until it gets a core (on a busy machine, for milliseconds).
RESETTLE_READS = 6
RESETTLE_S = 0.01


def _settled_kernel_state(native_id: int | None, pid: int, active: bool) -> dict:
    """The kernel's view of a thread once what py-spy's attach did to it has passed."""
    kernel = kernel_state(native_id, pid)
    if active:
        return kernel
    for _ in range(RESETTLE_READS):
        if kernel.get("state") != "R":
            break
        time.sleep(RESETTLE_S)
        kernel = kernel_state(native_id, pid)
    return kernel


def _error_line(pid: int, stderr: str) -> str:
    text = stderr.strip().splitlines()
    last = next((line for line in reversed(text) if line.strip()), "py-spy failed")
    lower = stderr.lower()
    if "permission denied" in lower or "operation not permitted" in lower:
        return f"permission denied reading process {pid} (run as its user or as root; ptrace must be allowed)"
    if "failed to find python" in lower or "failed to get process executable" in lower or \
            "couldn't find" in lower or "not a python" in lower:
        return f"process {pid} is not a Python program (py-spy found no interpreter in it)"
    if "no such process" in lower or "failed to open process" in lower:
        return f"no process with pid {pid}"
    return f"py-spy could not read process {pid}: {last.removeprefix('Error: ')}"


def thread_dump(pid: int, timeout: float = 30.0, native: bool = False) -> dict:
    """A ``full``-shaped document of the threads of ``pid`` (no tasks), read by py-spy;
    ``native`` adds C/C++ frames (py-spy ``--native``)."""
    exe = find_pyspy()
    if exe is None:
        raise PySpyError("py-spy is not installed (pip install py-spy)")
    try:
        command = [exe, "dump", "--pid", str(pid), "--json"] + (["--native"] if native else [])
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PySpyError(f"py-spy timed out reading process {pid}") from None
    if proc.returncode != 0:
        raise PySpyError(_error_line(pid, proc.stderr + proc.stdout))
    try:
        raw = json.loads(proc.stdout)
    except ValueError:
        raise PySpyError(f"py-spy gave unreadable output for process {pid}") from None
    threads = []
    for item in raw:
        frames = [{"func": f.get("name", "?"), "file": f.get("filename", "?"), "line": f.get("line", 0)}
                  for f in item.get("frames", [])]
        kernel = _settled_kernel_state(item.get("os_thread_id"), pid, bool(item.get("active")))
        state = _classify(frames, bool(item.get("active")), kernel)
        gid = group_id("thread", state, [(f["file"], f["func"], f["line"]) for f in frames])
        threads.append({"ident": item.get("thread_id"), "native_id": item.get("os_thread_id"),
                        "name": item.get("thread_name"), "daemon": None, "group": gid, "state": state,
                        "kernel": {"state": kernel["state"], "syscall": kernel["syscall"]},
                        "blocked_s": None, "stack": frames, "cpu_s": kernel["cpu_s"]})
    groups = groups_of({"threads": threads})
    rss = None
    try:
        import psutil

        rss = psutil.Process(pid).memory_info().rss
    except Exception:
        pass
    return {
        "schema": SCHEMA,
        "source": "py-spy",
        "time": time.time(),
        "process": {"pid": pid, "argv": argv_of(pid), "python": None},
        "totals": {"tasks": None, "threads": len(threads), "loops": None, "groups": len(groups)},
        "memory": {"rss_bytes": rss},
        "loops": [],
        "groups": groups,
        "threads": threads,
    }
