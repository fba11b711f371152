"""Event-loop health: lag from a heartbeat, and stalls named by the code that blocked.

The probe thread posts a tiny callback with ``call_soon_threadsafe`` and notes when it runs:
the delay is the loop's lag.  While a heartbeat is outstanding for longer than the stall
threshold, the loop thread is stuck in something that does not yield, so the probe takes that
thread's stack from ``sys._current_frames()`` *during* the stall: the stack names the blocking
code.  The last stalls are kept in a bounded ring.  The callback run on the loop does nothing
but read the clock, so the heartbeat costs the loop next to nothing.

Every running loop the hooks know of is watched (``LoopWatches``), and gets the probe's task
factory and GIL hand-off timer if it lacks them: a loop may have been started before the probe,
or had its factory replaced, or its timer stopped by a fork.
"""
from __future__ import annotations

import collections
import sys
import threading
import time
import weakref
from typing import Any

from . import hooks
from .config import Options
from .foreign_frames import paused
from .frames import RawStack, frame_stack
from .handoff import Handoff

STALL_RING = 10
# Seconds between two looks for loops started or stopped since: the heartbeats in between go to
# the loops already watched (the look lists every thread and every known loop, 20 times a
# second it was a fifth of what an idle probe costs).
REFRESH_EVERY = 1.0


class Stall:
    __slots__ = ("at", "duration_ms", "stack")

    def __init__(self, at: float, duration_ms: float, stack: RawStack) -> None:
        self.at, self.duration_ms, self.stack = at, duration_ms, stack


class LoopWatch:
    """The heartbeat state of one loop.  Only the probe thread calls its methods."""

    def __init__(self, loop: Any, ident: int | None) -> None:
        self.loop = loop
        self.ident = ident
        self.sent: float | None = None  # monotonic time of the outstanding heartbeat
        self.sent_wall = 0.0
        self.answered: float | None = None  # set by the loop thread
        self.answered_ident: int | None = None
        self.lag_ms: float | None = None
        self.stall_stack: RawStack | None = None
        self.stalls: collections.deque = collections.deque(maxlen=STALL_RING)
        self.stall_count = 0

    def _beat(self) -> None:  # runs on the loop: keep it trivial
        self.answered_ident = threading.get_ident()
        self.answered = time.monotonic()

    def tick(self, now: float, stall_ms: float, send: bool = True) -> bool:
        """Advance the heartbeat (a new one posted only if ``send``); False when the loop is
        gone (closed or not running)."""
        if self.sent is not None and self.answered is not None:
            self.lag_ms = max(0.0, (self.answered - self.sent) * 1000.0)
            if self.answered_ident:
                self.ident = self.answered_ident
            if self.lag_ms > stall_ms:
                self.stall_count += 1
                self.stalls.append(Stall(self.sent_wall, self.lag_ms, self.stall_stack or ()))
            self.sent = self.answered = None
            self.stall_stack = None
        if self.sent is None:
            if not send:
                return True
            try:
                if not self.loop.is_running() or self.loop.is_closed():
                    return False
                self.answered = None
                self.sent = time.monotonic()
                self.sent_wall = time.time()
                self.loop.call_soon_threadsafe(self._beat)
            except Exception:  # closed between the check and the call
                return False
        elif self.stall_stack is None and (now - self.sent) * 1000.0 > stall_ms and self.ident:
            with paused:  # 3.11: see foreign_frames
                frame = sys._current_frames().get(self.ident)
                if frame is not None:
                    self.stall_stack = frame_stack(frame)
                del frame
        return True

    def pending_ms(self, now: float) -> float:
        """How long the outstanding heartbeat has waited (a stall in progress shows here)."""
        return 0.0 if self.sent is None or self.answered is not None else (now - self.sent) * 1000.0


class LoopWatches:
    """A ``LoopWatch`` for every running loop, and the loops' numbers (1, 2, ... in the order
    the probe first met them).  Used only from the probe thread."""

    def __init__(self, options: Options, handoff: Handoff | None) -> None:
        self.options = options
        self.handoff = handoff
        self.watches: dict[int, LoopWatch] = {}  # id(loop) -> watch
        self.numbers: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._next = 1
        self._refreshed = -REFRESH_EVERY  # when the heartbeat last looked for loops
        self._starts = -1  # loops started running, in all, at that look

    def number(self, loop: Any) -> int:
        number = self.numbers.get(loop)
        if number is None:
            number = self.numbers[loop] = self._next
            self._next += 1
        return number

    def refresh(self) -> list[LoopWatch]:
        """A watch for every running loop (new loops get our task factory installed)."""
        watches = {}
        # Thread idents from threading, not sys._current_frames(): that makes a frame object
        # for every thread's current function, 20 times a second (see threads.current).
        live = {t.ident for t in threading.enumerate()}
        others = None
        for loop, ident in hooks.running_loops():
            if ident is not None and ident not in live:
                if others is None:  # a thread threading does not know (started from C)
                    with paused:  # 3.11: see foreign_frames
                        others = set(sys._current_frames())
                if ident not in others:
                    continue  # "running" in a thread that is gone: a loop copied by fork()
            key = id(loop)
            watch = self.watches.get(key)
            if watch is None or watch.loop is not loop:
                watch = LoopWatch(loop, ident)
                try:
                    if not hooks.has_factory(loop):
                        loop.call_soon_threadsafe(hooks.install_factory, loop)
                except Exception:
                    pass
            if self.handoff is not None and not self.handoff.attached(loop):
                # Also after a pause (fork) stopped the loop's hand-off timer.
                try:
                    loop.call_soon_threadsafe(self.handoff.attach, loop)
                except Exception:
                    pass
            watches[key] = watch
        self.watches = watches
        return list(watches.values())

    def heartbeat(self, now: float, send: bool = True) -> None:
        """Collect heartbeats on every running loop, and (``send``) post new ones; look for
        loops started or stopped since once every ``REFRESH_EVERY``, or at once when a loop has
        started running (``hooks.loop_starts``): watched before its first stall."""
        starts = hooks.loop_starts
        if now - self._refreshed >= REFRESH_EVERY or starts != self._starts:
            self._refreshed, self._starts = now, starts
            watches = self.refresh()
        else:
            watches = list(self.watches.values())
        for watch in watches:
            if not watch.tick(now, self.options.stall_ms, send):
                self.watches.pop(id(watch.loop), None)

    def unanswered(self) -> bool:
        """Whether a loop has not run its heartbeat yet (it may be stalling)."""
        return any(w.sent is not None and w.answered is None for w in self.watches.values())
