"""One attachment to one probe: the connection, the model and the user's view settings.

Shared by the main screen and every detail screen opened from it, so a detail screen knows the
connection state, the interval and whether the user paused, without reaching into another
screen.  Holds no widgets and does no I/O itself: the app's live loop fills it in.
"""
from __future__ import annotations

from tasktop.client.connection import Connection
from .model import KINDS, SORTS, Model
from .watcher import BACKOFF

#: The steps of ``+``/``-``, in seconds.
INTERVALS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Session:
    def __init__(self, connection: Connection, interval: float = 1.0) -> None:
        self.connection = connection
        self.model = Model()
        self.interval = interval
        self.paused = False
        self.state = "connecting"  # connecting | live | exited | unreachable
        self.reason = ""
        self.kind = KINDS[0]
        self.sort = SORTS[0]
        self.filter = ""
        self.cost = 0.0  # seconds the last summary took: a slow probe is asked less often
        self.recorder = None  # a FileRecorder while ``R`` records the session
        self.replay = None  # the ReplayScreen's position when this session replays a recording

    @property
    def effective_interval(self) -> float:
        """The refresh interval in practice (the watcher backs off from a slow probe)."""
        return max(self.interval, (1 + BACKOFF) * self.cost)

    @property
    def path(self) -> str:
        return self.connection.path

    @property
    def pid(self) -> int | None:
        summary = self.model.summary
        if summary:
            return (summary.get("process") or {}).get("pid")
        return self.connection.pid

    @property
    def status(self) -> str:
        """What the header says about the connection."""
        if self.replay is not None:
            return "replay"
        if self.state == "exited":
            return "process exited"
        if self.state == "unreachable":
            return "not answering"
        if self.paused:
            return "paused"
        if self.state == "connecting":
            return "connecting"
        return "live"

    def step_interval(self, direction: int) -> float:
        """The next slower (``+1``) or faster (``-1``) refresh interval."""
        steps = list(INTERVALS)
        if self.interval not in steps:
            steps = sorted(steps + [self.interval])
        index = steps.index(self.interval) + direction
        self.interval = steps[max(0, min(len(steps) - 1, index))]
        return self.interval

    def cycle_sort(self) -> str:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        return self.sort

    def cycle_kind(self) -> str:
        self.kind = KINDS[(KINDS.index(self.kind) + 1) % len(KINDS)]
        return self.kind
