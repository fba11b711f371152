"""What each thread is doing: its Python stack, and its state from the kernel.

A thread blocked in C (``lock.acquire()``, ``time.sleep``, ``sock.recv``) shows only the Python
frame that called it; the kernel says what it waits for: ``/proc/self/task/TID/syscall`` names
the system call (futex: a lock or condition, clock_nanosleep: sleep, epoll/poll/select: I/O,
read/recv: a socket), ``/proc/self/task/TID/stat`` gives the run state and CPU time, and
``schedstat`` how often it was scheduled, which tells a parked thread from a busy ticker.

A thread is blocked since the first sample that saw it at the same frame and instruction, not
scheduled since (``ThreadWatch``): a thread cannot be asked what it waits on, only seen again.
"""
from __future__ import annotations

import os
import platform
import queue
import selectors
import subprocess
import sys
import threading
import time
from typing import Any

from . import procfs
from .frames import RawStack, frame_stack
from .tasks import ABSORBS, _add, STATES

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# System call numbers by machine (the kernel's tables); names are what /syscall reports as numbers.
_SYSCALLS = {
    "x86_64": {202: "futex", 230: "clock_nanosleep", 35: "nanosleep", 232: "epoll_wait",
               281: "epoll_pwait", 441: "epoll_pwait2", 7: "poll", 271: "ppoll", 23: "select",
               270: "pselect6", 0: "read", 17: "pread64", 19: "readv", 45: "recvfrom",
               47: "recvmsg", 299: "recvmmsg", 1: "write", 20: "writev", 44: "sendto",
               46: "sendmsg", 43: "accept", 288: "accept4", 42: "connect", 61: "wait4",
               247: "waitid", 34: "pause", 130: "rt_sigsuspend", 128: "rt_sigtimedwait"},
    "aarch64": {98: "futex", 115: "clock_nanosleep", 101: "nanosleep", 22: "epoll_pwait",
                441: "epoll_pwait2", 73: "ppoll", 72: "pselect6", 63: "read", 67: "pread64",
                65: "readv", 207: "recvfrom", 212: "recvmsg", 243: "recvmmsg", 64: "write",
                66: "writev", 206: "sendto", 211: "sendmsg", 202: "accept", 242: "accept4",
                203: "connect", 260: "wait4", 95: "waitid", 133: "rt_sigsuspend",
                137: "rt_sigtimedwait"},
}.get(platform.machine(), {})

_SYSCALL_STATES = {
    "futex": "Lock.acquire", "clock_nanosleep": "sleep", "nanosleep": "sleep",
    "select (no fds)": "sleep", "pselect6 (no fds)": "sleep", "poll (no fds)": "sleep",
    "ppoll (no fds)": "sleep",
    "epoll_wait": "I/O wait", "epoll_pwait": "I/O wait", "epoll_pwait2": "I/O wait",
    "poll": "I/O wait", "ppoll": "I/O wait", "select": "I/O wait", "pselect6": "I/O wait",
    "read": "socket read", "pread64": "socket read", "readv": "socket read",
    "recvfrom": "socket read", "recvmsg": "socket read", "recvmmsg": "socket read",
    "write": "socket write", "writev": "socket write", "sendto": "socket write",
    "sendmsg": "socket write", "accept": "socket accept", "accept4": "socket accept",
    "connect": "socket connect", "wait4": "subprocess wait", "waitid": "subprocess wait",
}


def _register_threading() -> None:
    _add("Condition.wait", threading.Condition, "wait", "wait_for")
    _add("Event.wait", threading.Event, "wait")
    _add("Semaphore.acquire", threading.Semaphore, "acquire")
    _add("Barrier.wait", threading.Barrier, "wait")
    _add("Thread.join", threading.Thread, "join", "_wait_for_tstate_lock")
    _add("Queue.get", queue.Queue, "get")
    _add("Queue.put", queue.Queue, "put")
    _add("Queue.join", queue.Queue, "join")
    for name in dir(selectors):
        cls = getattr(selectors, name)
        if isinstance(cls, type) and issubclass(cls, selectors.BaseSelector):
            _add("I/O wait", cls, "select")
    _add("subprocess wait", subprocess.Popen, "wait", "_wait", "communicate", "_try_wait")
    try:
        from concurrent.futures import _base, thread as cf_thread

        _add("Future.result", _base.Future, "result", "exception")
        _add("executor wait", _base, "wait", "as_completed")
        _add("executor idle", cf_thread, "_worker")
    except ImportError:  # pragma: no cover
        pass


_register_threading()
_LOOP_FRAMES = ("run_forever", "_run_once")


def kernel_state(native_id: int | None, pid: int | str = "self") -> dict:
    """``{state, syscall, cpu_s, switches}`` of a thread (of this process by default), from /proc."""
    out: dict[str, Any] = {"state": None, "syscall": None, "cpu_s": None, "switches": None}
    if not native_id:
        return out
    base = f"/proc/{pid}/task/{native_id}/"
    stat = procfs.read(base + "stat")
    if stat:
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 12:
            out["state"] = fields[0]
            out["cpu_s"] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    syscall = procfs.read(base + "syscall")
    if syscall:
        first = syscall.split(" ", 1)[0].strip()
        if first == "running":
            out["syscall"] = "running"
        elif first.lstrip("-").isdigit():
            number = int(first)
            out["syscall"] = _SYSCALLS.get(number, f"syscall {number}") if number >= 0 else None
            args = syscall.split()[1:3]
            # time.sleep is select() with no fds on 3.9/3.10, and poll() with none elsewhere.
            if (out["syscall"] in ("select", "pselect6") and args[:1] == ["0x0"]) or \
                    (out["syscall"] in ("poll", "ppoll") and args[1:2] == ["0x0"]):
                out["syscall"] += " (no fds)"
    sched = procfs.read(base + "schedstat")
    if sched:
        parts = sched.split()
        if len(parts) >= 3 and parts[2].isdigit():
            out["switches"] = int(parts[2])
    return out


def classify(stack: RawStack, kernel: dict) -> str:
    """The thread's state: running, else the Python primitive it is in, else the system call."""
    if kernel.get("state") == "R" or kernel.get("syscall") == "running":
        return "running"
    state = None
    for code, _line in stack:
        found = STATES.get(code)
        if state is None:
            if found is not None:
                state = found
                continue
            break  # the innermost frame is the caller's own: the kernel knows better
        if found is not None and found in ABSORBS.get(state, ()):
            state = found
            continue
        break
    in_loop = any(code.co_name in _LOOP_FRAMES for code, _ in stack[:12])
    if state == "I/O wait" and in_loop:
        return "idle loop"
    if state is not None:
        return state
    syscall = kernel.get("syscall")
    state = _SYSCALL_STATES.get(syscall or "")
    if state == "I/O wait" and in_loop:
        return "idle loop"
    if state is not None:
        return state
    return "waiting" if syscall else "unknown"


def current(exclude: set[int]) -> list[dict]:
    """Every Python thread but those in ``exclude``: ident, names, stack and kernel state.

    Other threads' frames are held for as short a time as possible: only while their stacks
    are copied into ``(code, line)`` pairs.  A frame object that is still referenced when its
    function returns takes its locals over (CPython 3.11+), and a reference held across a
    switch to that thread made objects of the host outlive their function and end up with the
    garbage collector (seen: ``BytesIO`` "Existing exports of data" at a multiprocessing
    child's exit)."""
    frames = sys._current_frames()
    taken = [(ident, frame_stack(frame), id(frame), frame.f_lasti)
             for ident, frame in frames.items() if ident not in exclude]
    frames.clear()
    del frames
    by_ident = {t.ident: t for t in threading.enumerate()}
    main_ident = threading.main_thread().ident
    out = []
    for ident, stack, frame_id, lasti in taken:
        thread = by_ident.get(ident)
        native_id = getattr(thread, "native_id", None)
        if native_id is None and ident == main_ident:
            native_id = os.getpid()
        kernel = kernel_state(native_id)
        out.append({
            "ident": ident,
            "native_id": native_id,
            "name": thread.name if thread is not None else f"<thread {ident}>",
            "daemon": bool(thread.daemon) if thread is not None else None,
            "frame_id": frame_id,
            "lasti": lasti,
            "stack": stack,
            "kernel": kernel,
            "state": classify(stack, kernel),
        })
    return out


class ThreadWatch:
    """What the probe remembers of every thread from one sample to the next: where it was,
    and since when.  Used only from the probe thread."""

    def __init__(self) -> None:
        self.exclude: set[int] = set()  # the probe's own thread(s)
        self.seen: dict[int, tuple] = {}  # ident -> (signature, since)

    def rows(self) -> list[dict]:
        """``current()``'s rows, each with ``blocked_s``: how long the thread has been where
        it is (0 while it runs)."""
        now = time.monotonic()
        rows = current(self.exclude)
        seen = {}
        for row in rows:
            sig = (row.pop("frame_id"), row["lasti"], row["kernel"].get("switches"))
            prev = self.seen.get(row["ident"])
            since = prev[1] if prev is not None and prev[0] == sig and row["state"] != "running" else now
            seen[row["ident"]] = (sig, since)
            row["blocked_s"] = round(now - since, 3)
        self.seen = seen
        return rows
