"""Finding the live probes of this user: for the picker, ``tasktop ls`` and the exporter.

One scan and one rule for stale sockets: a socket is stale when its process is gone, or when
nothing listens on it any more (its pid was reused by a process without a probe).  ``tasktop
ls`` removes stale sockets; the picker and the exporter only skip them.  Each probe is asked
for a summary with a short timeout, so one hung target costs a second, not the caller.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Iterable

import psutil

from tasktop.wire import paths
from tasktop.wire.shapes import Process, Summary

from .probe_client import ProbeClient, ProbeError, ProbeUnavailable


def command_line(process: Process | dict) -> str:
    """``target.py --port 80``: argv with the script's directory dropped."""
    argv = [str(a) for a in process.get("argv") or ()]
    if not argv:
        return os.path.basename(str(process.get("executable") or "?"))
    return " ".join([os.path.basename(argv[0]) or argv[0], *argv[1:]])


def argv_of(pid: int) -> list[str]:
    """The command line of a process as the kernel has it (empty when it is gone or hidden)."""
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.Error, OSError):
        return []


@dataclass
class ProbeInfo:
    """One probe found: its process, and its summary or why there is none."""

    pid: int
    path: str
    command: str = ""
    python: str = ""
    tasks: int | None = None
    threads: int | None = None
    rss: int | None = None
    uptime: float | None = None
    error: str = ""
    summary: Summary | None = None


def probe_sockets(directories: Iterable[str | None] = (None,), clean: bool = False) -> list[tuple[int, str]]:
    """``(pid, path)`` of every probe socket of a live process, one per pid; with ``clean``,
    the sockets of processes that are gone are removed."""
    seen: dict[int, str] = {}
    for directory in directories:
        for pid, path in paths.list_sockets(directory):
            if not paths.pid_alive(pid):
                if clean:
                    remove_stale(path)
            elif pid not in seen:
                seen[pid] = path
    return sorted(seen.items())


def scan(directories: Iterable[str | None] = (None,), timeout: float = 1.5, clean: bool = False) -> list[ProbeInfo]:
    """Every live probe, described from its summary; one that does not answer is listed with
    the reason, one nobody listens on is stale (removed with ``clean``)."""
    out = []
    for pid, path in probe_sockets(directories, clean):
        info = ProbeInfo(pid=pid, path=path)
        try:
            with ProbeClient(path, timeout=timeout) as client:
                summary = client.summary()
        except (ProbeUnavailable, ProbeError) as exc:
            if "Connection refused" in str(exc):  # nothing listens: the pid was reused
                if clean:
                    remove_stale(path)
                continue
            info.error = str(exc)
            info.command = command_line({"argv": argv_of(pid)}) if argv_of(pid) else "?"
            out.append(info)
            continue
        process = summary.get("process") or {}
        totals = summary.get("totals") or {}
        info.summary = summary
        info.command = command_line(process)
        info.python = str(process.get("python") or "")
        info.tasks = totals.get("tasks")
        info.threads = totals.get("threads")
        info.rss = (summary.get("memory") or {}).get("rss_bytes")
        started = process.get("started_at")
        if started:
            info.uptime = max(0.0, float(summary.get("time") or time.time()) - float(started))
        out.append(info)
    return out


def remove_stale(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
