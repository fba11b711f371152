"""Recordings from the client's side: writing what a probe answers to a file, reading a moment
of it back, and the one way a TIME on the command line (or the replay's jump box) names a
moment of a recording.

``RecordedConnection`` answers the wire's requests (``Requests``) from a recording at a cursor,
so that every view that reads a live probe reads a recording the same way: the summary of the
moment, the group pages, verdicts and memory recorded at or before it.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import threading
import time
from typing import Any

from tasktop.wire.recording import Recording, RecordingError, Writer, looks_like_recording

from .probe_client import ProbeError, Requests

__all__ = ["Recording", "RecordingError", "RecordedConnection", "FileRecorder", "moment",
           "duration_text", "looks_like_recording", "TIME_HELP"]

#: The TIME forms, for every ``--help`` that takes one.
TIME_HELP = ("TIME is one of: HH:MM[:SS] (local time of day within the recording), an ISO date "
             "and time (2026-03-01T03:12:00), -DURATION before the end (-5m, -90s, -1h30m), "
             "+DURATION after the start (+30s), start or end")

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")

#: Group pages asked for per sample at most, and their size: each costs the target a pass.
PAGES_PER_SAMPLE = 2
PAGE_LIMIT = 20
#: The largest groups' pages are asked for again this often (seconds).
PAGE_REFRESH = 600.0


def duration_text(text: str) -> float:
    """Seconds of ``90``, ``90s``, ``5m``, ``1h30m``; ``ValueError`` otherwise."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (use 90s, 5m, 1h30m)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def moment(text: str, start: float, end: float) -> float:
    """The time ``text`` names within a recording from ``start`` to ``end`` (see ``TIME_HELP``);
    ``ValueError`` with one line when it is not a TIME or falls outside the recording."""
    word = text.strip()
    if word == "start":
        return start
    if word in ("end", ""):
        return end
    if word[0] in "+-":
        offset = duration_text(word[1:])
        t = start + offset if word[0] == "+" else end - offset
    elif re.match(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", word):
        parts = [float(p) for p in word.split(":")]
        if parts[0] >= 24 or parts[1] >= 60 or (len(parts) > 2 and parts[2] >= 60):
            raise ValueError(f"not a time of day: {word}")
        clock = parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0.0)
        day = _dt.datetime.fromtimestamp(start).replace(hour=0, minute=0, second=0, microsecond=0)
        t = None
        while day.timestamp() <= end:
            candidate = day.timestamp() + clock
            if start - 1 <= candidate <= end + 1:
                t = candidate  # the last day on which that time of day falls in the recording
            day += _dt.timedelta(days=1)
        if t is None:
            raise ValueError(f"{word} is not within the recording ({_span(start, end)})")
    else:
        try:
            when = _dt.datetime.fromisoformat(word)
        except ValueError:
            raise ValueError(f"not a TIME: {text!r} (HH:MM:SS, an ISO date and time, -5m, +30s, "
                             "start or end)") from None
        t = when.timestamp()
    if not start - 1 <= t <= end + 1:
        raise ValueError(f"{word} is not within the recording ({_span(start, end)})")
    return min(max(t, start), end)


def _span(start: float, end: float) -> str:
    fmt = "%Y-%m-%d %H:%M:%S"
    return f"{time.strftime(fmt, time.localtime(start))} to {time.strftime(fmt, time.localtime(end))}"


def open_recording(path: str) -> Recording:
    """The recording at ``path``; ``RecordingError`` (one line) when it is none.  ``DIR/PID``
    names the newest flight recording of that pid in ``DIR`` (``DIR/PID-<start>``)."""
    if not os.path.exists(path):
        import glob

        found = sorted(glob.glob(glob.escape(path) + "-*"))
        if not found:
            raise RecordingError(f"no such file: {path}")
        path = found[-1]
    return Recording(path)


class RecordedConnection(Requests):
    """The requests of the wire answered from a recording at ``index`` (the replay's cursor).

    What was not recorded (a single task, a thread's detail) is a ``ProbeError`` saying so."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.path = recording.path
        self.index = len(recording) - 1
        self.timeout = 0.0

    @property
    def pid(self) -> int | None:
        return (self.recording.head.get("process") or {}).get("pid")

    @property
    def time(self) -> float:
        return self.recording.times[self.index]

    def process_alive(self) -> bool | None:
        return False

    def close(self) -> None:
        pass

    def request(self, op: str, **args: Any) -> Any:
        rec = self.recording
        if op == "summary":
            return rec.summary(self.index)
        if op == "verdicts":
            found = rec.extra_at("verdicts", self.time)
            if found is None:
                raise ProbeError("no leak verdicts were recorded before this moment")
            return found[1]
        if op == "group":
            return self._group(str(args.get("id")), int(args.get("offset") or 0), int(args.get("limit") or 100))
        if op == "memory":
            summary = rec.summary(self.index)
            found = rec.extra_at("memory", self.time)
            out = dict(summary.get("memory") or {})
            out["top"] = (found[1] or {}).get("top", []) if found else []
            return out
        if op == "stalls":
            summary = rec.summary(self.index)
            return [dict(loop=loop.get("id"), **s) for loop in summary.get("loops") or ()
                    for s in loop.get("stalls") or ()]
        if op == "full":
            return rec.summary(self.index)
        raise ProbeError(f"a recording holds summaries and group pages: the {op} detail was not recorded")

    def _group(self, gid: str, offset: int, limit: int) -> dict:
        summary = self.recording.summary(self.index)
        group = next((g for g in summary.get("groups") or () if g.get("id") == gid), None)
        if group is None:
            raise LookupError(f"no group {gid} at this moment of the recording")
        found = self.recording.page_at(gid, self.time)
        page = found[1] if found else {"group": group, "items": []}
        shown = dict(group)
        shown["stack"] = (page.get("group") or {}).get("stack") or group.get("stack")  # with source lines
        items = page.get("items") or []
        return {"group": shown, "total": group.get("count"), "offset": offset,
                "items": items[offset:offset + limit], "recorded_at": found[0] if found else None}


class FileRecorder:
    """Appends what a probe answers to a recording file: every summary, the verdicts and group
    pages given to it.  Each record is written whole with one ``write``, so a recorder killed
    at any moment leaves a file that reads back to its last sample."""

    def __init__(self, path: str, writer_name: str = "tasktop record", compress: bool = True) -> None:
        self.path = path
        self.compress = compress
        self.writer_name = writer_name
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from None
        self.writer: Writer | None = None
        self._paged: dict[str, float] = {}  # group id -> when its page was last recorded
        # The live view adds summaries on its thread and group pages from a worker.
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return self.writer.bytes if self.writer else 0

    @property
    def samples(self) -> int:
        return self.writer.samples if self.writer else 0

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def add(self, summary: dict) -> None:
        with self._lock:
            if self.fd >= 0:
                self._add(summary)

    def _add(self, summary: dict) -> None:
        if self.writer is None:
            head = {"process": summary.get("process"), "started": summary.get("time"),
                    "writer": self.writer_name, "probe": summary.get("probe")}
            self.writer = Writer(self._write, head, compress=self.compress)
        self.writer.sample(summary)

    def extra(self, kind: str, data: Any, t: float | None = None) -> None:
        with self._lock:
            if self.writer is not None and self.fd >= 0:
                self.writer.extra(kind, time.time() if t is None else t, data)

    def pages_waiting(self, summary: dict) -> bool:
        """Whether ``pages_due`` would name a group now (without marking any)."""
        now = float(summary.get("time") or time.time())
        groups = summary.get("groups") or []
        return any(g["id"] not in self._paged for g in groups) or any(
            now - self._paged.get(g["id"], now) >= PAGE_REFRESH for g in groups[:20])

    def pages_due(self, summary: dict) -> list[str]:
        """The groups whose page to record now: new ones first, then the largest ones not
        recorded for ``PAGE_REFRESH`` seconds; at most ``PAGES_PER_SAMPLE``."""
        now = float(summary.get("time") or time.time())
        groups = summary.get("groups") or []
        fresh = [g["id"] for g in groups if g["id"] not in self._paged]
        stale = [g["id"] for g in groups[:20] if now - self._paged.get(g["id"], now) >= PAGE_REFRESH]
        due = (fresh + stale)[:PAGES_PER_SAMPLE]
        for gid in due:
            self._paged[gid] = now
        return due

    def record_pages(self, connection: Requests, summary: dict) -> None:
        """Ask for and record the pages that are due (a group that emptied is skipped)."""
        for gid in self.pages_due(summary):
            try:
                page = connection.group(gid, 0, PAGE_LIMIT)
            except ProbeError:
                continue
            self.extra("page", page, summary.get("time"))

    def close(self, reason: str = "stopped") -> None:
        with self._lock:
            self._close(reason)

    def _close(self, reason: str) -> None:
        if self.fd < 0:
            return
        try:
            if self.writer is not None:
                self.writer.end(time.time(), reason)
        finally:
            os.close(self.fd)
            self.fd = -1


def process_gone(process: dict) -> bool:
    """Whether the process a recording is of no longer runs (its pid is gone, or is another
    process started later)."""
    import psutil

    pid = process.get("pid")
    if not isinstance(pid, int):
        return True
    try:
        created = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.Error:
        return False
    started = process.get("started_at")
    return isinstance(started, (int, float)) and abs(created - started) > 2.0


def flight_recordings(directory: str, dead_only: bool = True) -> list[dict]:
    """The flight recordings in ``directory`` (``TASKTOP_RECORD``), newest last: pid, command,
    the last record's time, how it ended, bytes, path."""
    from tasktop.wire.recording import segment_paths

    rows = []
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise RecordingError(f"cannot read {directory}: {exc.strerror or exc}") from None
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.isdir(path) or not segment_paths(path):
            continue
        try:
            recording = Recording(path)
        except RecordingError:
            continue
        process = recording.head.get("process") or {}
        gone = recording.ended is not None or process_gone(process)
        if dead_only and not gone:
            continue
        size = sum(os.path.getsize(p) for p in segment_paths(path))
        ended = recording.ended
        rows.append({
            "pid": process.get("pid"),
            "command": " ".join(process.get("argv") or []) or process.get("executable") or "",
            "first_s": recording.start,
            "last_s": recording.end,
            "ended": "exited" if ended else ("running" if not gone else "killed (no end record)"),
            "samples": len(recording),
            "bytes": size,
            "path": path,
        })
    rows.sort(key=lambda r: r["last_s"])
    return rows
