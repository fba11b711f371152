"""Finding the live probes of this user, for the process picker.

Runs on a worker thread: it connects to every socket in the socket directory, asks each probe
for a summary with a short timeout, and skips stale sockets of processes that are gone, so one
hung target costs the picker a second, not the UI.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from tasktop.wire import paths

from .probe_client import ProbeClient, ProbeError, ProbeUnavailable


def command_line(process: dict) -> str:
    """``target.py --port 80``: argv with the script's directory dropped."""
    argv = [str(a) for a in process.get("argv") or ()]
    if not argv:
        return os.path.basename(str(process.get("executable") or "?"))
    return " ".join([os.path.basename(argv[0]) or argv[0], *argv[1:]])


@dataclass
class ProbeInfo:
    pid: int
    path: str
    command: str = ""
    python: str = ""
    tasks: int | None = None
    threads: int | None = None
    rss: int | None = None
    uptime: float | None = None
    error: str = ""


def scan(directory: str | None = None, timeout: float = 1.5) -> list[ProbeInfo]:
    """Every probe socket of a live process in ``directory`` (default: the user's), described."""
    out = []
    for pid, path in paths.list_sockets(directory):
        if not paths.pid_alive(pid):
            continue
        info = ProbeInfo(pid=pid, path=path)
        try:
            with ProbeClient(path, timeout=timeout) as client:
                summary = client.summary()
        except (ProbeUnavailable, ProbeError) as exc:
            info.error = str(exc)
            info.command = _cmdline(pid)
            out.append(info)
            continue
        process = summary.get("process") or {}
        totals = summary.get("totals") or {}
        info.command = command_line(process)
        info.python = str(process.get("python") or "")
        info.tasks = totals.get("tasks")
        info.threads = totals.get("threads")
        info.rss = (summary.get("memory") or {}).get("rss_bytes")
        started = process.get("started_at")
        if started:
            info.uptime = max(0.0, float(summary.get("time") or 0) - float(started))
        out.append(info)
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            parts = fh.read().split(b"\0")
        return " ".join(os.path.basename(p.decode(errors="replace")) if i == 0 else p.decode(errors="replace")
                        for i, p in enumerate(parts) if p)
    except OSError:
        return "?"
