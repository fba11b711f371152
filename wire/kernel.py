"""What the kernel says a thread is doing: its run state, CPU time, and the system call it is in.

Read from ``/proc/PID/task/TID/{stat,syscall,schedstat}`` by the probe (its own threads) and by
the py-spy fallback (another process's), and named the same way by both (``SYSCALL_STATES``:
futex is a lock, epoll is I/O...).  ``read`` is how a /proc file is read: the probe passes one
that keeps the GIL (see ``probe.procfs``), the client the plain one.
"""
from __future__ import annotations

import os
import platform
from typing import Any, Callable, Optional


def read_text(path: str, size: int = 4096) -> Optional[str]:
    """The first ``size`` bytes of ``path`` as text, or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(size).decode("utf-8", "replace")
    except OSError:
        return None


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# System call numbers by machine (the kernel's tables); names are what /syscall reports as numbers.
SYSCALLS = {
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

SYSCALL_STATES = {
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


def kernel_state(native_id: Optional[int], pid: Any = "self",
                 read: Callable[[str], Optional[str]] = read_text) -> dict:
    """``{state, syscall, cpu_s, switches}`` of a thread (of this process by default), from /proc."""
    out: dict[str, Any] = {"state": None, "syscall": None, "cpu_s": None, "switches": None}
    if not native_id:
        return out
    base = f"/proc/{pid}/task/{native_id}/"
    stat = read(base + "stat")
    if stat:
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 12:
            out["state"] = fields[0]
            out["cpu_s"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    syscall = read(base + "syscall")
    if syscall:
        first = syscall.split(" ", 1)[0].strip()
        if first == "running":
            out["syscall"] = "running"
        elif first.lstrip("-").isdigit():
            number = int(first)
            out["syscall"] = SYSCALLS.get(number, f"syscall {number}") if number >= 0 else None
            args = syscall.split()[1:3]
            # time.sleep is select() with no fds on 3.9/3.10, and poll() with none elsewhere.
            if (out["syscall"] in ("select", "pselect6") and args[:1] == ["0x0"]) or \
                    (out["syscall"] in ("poll", "ppoll") and args[1:2] == ["0x0"]):
                out["syscall"] += " (no fds)"
    sched = read(base + "schedstat")
    if sched:
        parts = sched.split()
        if len(parts) >= 3 and parts[2].isdigit():
            out["switches"] = int(parts[2])
    return out
