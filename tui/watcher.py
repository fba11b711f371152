"""The watcher: the live loop's thread, asking a source for a summary every interval and posting it.

It is the only thing that polls, and it only ever asks for ``summary`` (bounded by the number
of distinct stacks, not of tasks), so the main view stays cheap against 100,000 tasks.  When the
probe goes away it keeps trying at the same socket, so a restarted target is picked up again,
and says whether the process exited or merely stopped answering.  The app owns it (starts it on
attaching, stops it on leaving) and is the target of its messages; like memray's live view, it
is a plain thread so that it can be tested without an app.
"""
from __future__ import annotations

import threading
import time

from textual.message_pump import MessagePump

from tasktop.client.probe_client import ProbeError, ProbeUnavailable
from .messages import ConnectionChanged, SnapshotReceived
from .source import SummarySource

#: Longest wait between attempts while the probe is away.
RETRY_MAX = 5.0
#: Idle time after a summary, in multiples of what it cost: a probe that takes a second to
#: describe 100,000 tasks is asked at most every three seconds, not kept busy by its viewer.
BACKOFF = 2.0


class Watcher:
    """Polls ``source.summary()`` on a daemon thread; posts to ``target``."""

    def __init__(self, source: SummarySource, target: MessagePump, interval: float = 1.0) -> None:
        self.source = source
        self.target = target
        self.interval = interval
        self.paused = False
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tasktop-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def set_interval(self, interval: float) -> None:
        self.interval = interval
        self._wake.set()

    def pause(self, paused: bool) -> None:
        self.paused = paused
        self._wake.set()

    def poll_now(self) -> None:
        self._wake.set()

    def _post(self, message) -> bool:
        if self._stopped.is_set():  # stopped while asking: the app has moved on
            return False
        try:
            return bool(self.target.post_message(message))
        except RuntimeError:  # the app's loop is closed: we are shutting down
            self._stopped.set()
            return False

    def _change(self, state: str, reason: str = "") -> None:
        if state != self._state:
            self._state = state
            self._post(ConnectionChanged(state, reason))

    def _run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            cost = 0.0
            if not self.paused:
                started = time.monotonic()
                try:
                    summary = self.source.summary()
                except ProbeUnavailable as exc:
                    failures += 1
                    alive = self.source.process_alive()
                    self._change("exited" if alive is False else "unreachable", str(exc))
                except ProbeError as exc:
                    failures += 1
                    self._change("unreachable", str(exc))
                except Exception as exc:  # never let the thread die silently
                    failures += 1
                    self._change("unreachable", f"{exc.__class__.__name__}: {exc}")
                else:
                    failures = 0
                    cost = time.monotonic() - started
                    if self._stopped.is_set():
                        break
                    self._change("live")
                    self._post(SnapshotReceived(summary, cost))
            if failures:
                wait = min(RETRY_MAX, self.interval * (1 + failures))
            else:
                wait = max(self.interval - cost, BACKOFF * cost)
            self._wake.wait(wait)
            self._wake.clear()
        self.source.close()
