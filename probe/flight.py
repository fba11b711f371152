"""The flight recorder (``TASKTOP_RECORD=DIR``): the process's recent past, kept on disk by the
probe itself, so that it outlives a SIGKILL, an OOM kill or a segfault.

A bounded ring: ``DIR/<pid>-<start>/`` holds at most ``SEGMENTS`` segment files of about
``size / SEGMENTS`` bytes; when one is full the next begins (a self-contained recording: header,
stacks, a key summary) and the oldest is deleted.  Every record is written whole with one
``os.write`` to a file opened ``O_APPEND``, so a kill at any moment leaves every segment
readable up to its last record (``wire.recording``).

It runs on the probe thread, inside the background sample (so its cost counts against the
probe's CPU budget), and never raises: a full disk or a directory it cannot write stops it,
and the summary's ``probe.record`` says why.
"""
from __future__ import annotations

import os
import time

from tasktop.wire.recording import SEGMENT_SUFFIX, Writer

SEGMENTS = 4
MIN_SEGMENT = 16 * 1024
#: Samples between two key summaries in a segment: a segment holds a few hundred samples.
KEY_EVERY = 60
#: Seconds between two leak-verdict records (growing and stuck only: no proof, no budget).
VERDICTS_EVERY = 60.0


class FlightRecorder:
    """Writes summaries to the ring.  Used only from the probe thread."""

    def __init__(self, directory: str, size: int, interval: float, process: dict, handoff=None) -> None:
        self.size = max(size, SEGMENTS * MIN_SEGMENT)
        self.interval = interval
        self.error: str | None = None
        self.fd = -1
        self.segment = 0
        self.last = 0.0  # monotonic time of the last sample written
        self.last_verdicts = time.monotonic()  # the first check a minute in: history needs time
        self.writer: Writer | None = None
        self.process = process
        self.handoff = handoff
        self._pacer = None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime())
        self.path = os.path.join(directory, f"{process.get('pid')}-{stamp}")
        try:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            self._next_segment()
        except Exception as exc:
            self._fail(exc)

    @property
    def running(self) -> bool:
        return self.error is None and self.fd >= 0

    def status(self) -> dict:
        """What the summary says about the recorder (``probe.record``)."""
        return {"path": self.path, "error": self.error, "bytes": self.writer.bytes if self.writer else 0}

    def due(self, now: float) -> bool:
        return self.running and now - self.last >= self.interval

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def _next_segment(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.segment += 1
        name = os.path.join(self.path, f"{self.segment:06d}{SEGMENT_SUFFIX}")
        self.fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        old = self.segment - SEGMENTS
        if old > 0:
            try:
                os.unlink(os.path.join(self.path, f"{old:06d}{SEGMENT_SUFFIX}"))
            except FileNotFoundError:
                pass
        head = {"process": self.process, "started": time.time(), "writer": "flight recorder",
                "segment": self.segment}
        if self.writer is None:
            self.writer = Writer(self._write, head, KEY_EVERY, pace=self._pace)
        else:
            self.writer.head = head
            self.writer.bytes = 0
            self.writer.restart()

    def _pace(self) -> None:
        # Give the GIL away every 2 ms while a summary of hundreds of groups is written.
        if self._pacer is None:
            from .handoff import Pacer

            self._pacer = Pacer(self.handoff)
        self._pacer()

    def _fail(self, exc: BaseException) -> None:
        self.error = f"stopped recording: {exc.__class__.__name__}: {getattr(exc, 'strerror', None) or exc}"
        self.close(None)

    def sample(self, summary: dict, now: float) -> None:
        """Record one summary (and rotate when the segment is full); never raises."""
        if not self.running:
            return
        self.last = now
        self._pacer = None
        try:
            if self.writer.bytes >= self.size // SEGMENTS:
                self._next_segment()
            self.writer.sample(summary)
        except Exception as exc:
            self._fail(exc)

    def extra(self, kind: str, data: dict) -> None:
        if not self.running:
            return
        try:
            self.writer.extra(kind, time.time(), data)
        except Exception as exc:
            self._fail(exc)

    def close(self, reason: str | None = "exit") -> None:
        """Stop; ``reason`` goes into an ``end`` record (None: none, as in a forked child)."""
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        try:
            if reason is not None and self.writer is not None and self.error is None:
                self.fd = fd
                self.writer.end(time.time(), reason)
        except Exception:
            pass
        finally:
            self.fd = -1
            try:
                os.close(fd)
            except OSError:
                pass
