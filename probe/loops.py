"""Event-loop health: lag from a heartbeat, and stalls named by the code that blocked.

The heartbeat is the loop's own hand-off timer (``handoff.Beat``): each run notes how late it
ran, which is the loop's lag, and a run later than the stall threshold notes a stall.  While the timer is overdue by more than the stall threshold, the
loop thread is stuck in something that does not yield, so the probe takes that thread's stack
from ``sys._current_frames()`` *during* the stall: the stack names the blocking code.  The probe
looks just when an unrun timer would become a stall, about once per stall threshold, and posts
nothing to the loop.  The last stalls are kept in a bounded ring.

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
from .handoff import Beat, Handoff

STALL_RING = 10
# Seconds between two looks for loops started or stopped since: the heartbeats in between go to
# the loops already watched (the look lists every thread and every known loop, 20 times a
# second it was a fifth of what an idle probe costs).
REFRESH_EVERY = 1.0
# Seconds: the soonest a look comes again for a timer overdue past the stall threshold whose
# stack could not be taken (its thread unknown): no busy wait.
LOOK_AGAIN = 0.05


class Stall:
    __slots__ = ("at", "duration_ms", "stack")

    def __init__(self, at: float, duration_ms: float, stack: RawStack) -> None:
        self.at, self.duration_ms, self.stack = at, duration_ms, stack


class LoopWatch:
    """The heartbeat of one loop, read from its hand-off timer (``handoff.Beat``).  Only the
    probe thread calls its methods."""

    def __init__(self, loop: Any, ident: int | None) -> None:
        self.loop = loop
        self.ident = ident
        self.beat: Beat | None = None
        self.seen: tuple | None = None  # the timer's run the watch last took
        self.lag_ms: float | None = None
        self.stall_stack: RawStack | None = None
        self.stalls: collections.deque = collections.deque(maxlen=STALL_RING)
        self.stall_count = 0

    def follow(self, beat: Beat | None) -> None:
        """Read ``beat`` from now on (a loop's timer is new after a pause or a fork).  Stalls
        from before are not the watch's to judge: the first run after a loop runs again is late
        by all the time it was stopped."""
        self.beat = beat
        self.seen = None
        if beat is not None:
            self.seen = beat.last
            beat.stalls.clear()
        self.stall_stack = None

    def look(self, now: float, stall_ms: float) -> bool:
        """Take the timer's runs since the last look (how late the last one ran is the lag; the
        stalls the timer noted, each with the stack taken during it), and while the timer is
        overdue by more than ``stall_ms``, the loop thread's stack: the code that blocks it.
        False when the loop is gone (closed or stopped)."""
        beat = self.beat
        if beat is None:
            return True
        last = beat.last  # read before ``due``: the timer sets ``last``, then the next ``due``
        if last is not self.seen:
            self.seen = last
            _ran, late, self.ident = last
            self.lag_ms = max(0.0, late * 1000.0)
            stack, self.stall_stack = self.stall_stack or (), None  # the timer ran: the block is over
            stalls = beat.stalls
            while stalls:
                ran, late = stalls.popleft()
                at = time.time() - (now - (ran - late))  # when it was due: the loop was stuck by then
                self.stall_count += 1
                self.stalls.append(Stall(at, late * 1000.0, stack))
                stack = ()  # taken during the first of them: the others began after that look
        if self.stall_stack is None and self._overdue_ms(last, now) > stall_ms:
            try:
                if not self.loop.is_running() or self.loop.is_closed():
                    return False  # a stopped loop runs no timer: not a stall
            except Exception:
                return False
            with paused:  # 3.11: see foreign_frames
                frame = sys._current_frames().get(self.ident) if self.ident else None
                if frame is not None:
                    self.stall_stack = frame_stack(frame)
                del frame
        return True

    def _overdue_ms(self, last: tuple | None, now: float) -> float:
        due = self.beat.due  # type: ignore[union-attr]
        if last is not None and last[0] >= due:  # read inside the run that moves ``due`` on
            return 0.0
        return max(0.0, (now - due) * 1000.0)

    def pending_ms(self, now: float) -> float:
        """How long the loop's timer is overdue (a stall in progress shows here)."""
        return 0.0 if self.beat is None else self._overdue_ms(self.beat.last, now)


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

    def heartbeat(self, now: float) -> None:
        """Take every watched loop's heartbeat (see ``LoopWatch.look``); and look for loops
        started or stopped since, once every ``REFRESH_EVERY`` or at once when a loop has
        started running (``hooks.loop_starts``): watched before its first stall."""
        handoff, stall_ms = self.handoff, self.options.stall_ms
        starts = hooks.loop_starts
        if now - self._refreshed >= REFRESH_EVERY or starts != self._starts:
            self._refreshed, self._starts = now, starts
            watches = self.refresh()
        else:
            watches = list(self.watches.values())
        for watch in watches:
            beat = handoff.beat(watch.loop) if handoff is not None else None
            if beat is not watch.beat:
                if beat is None and handoff.active:  # (handoff: a beat was had from it)
                    # Its timer stopped (a tick while the probe was stopped for a fork): the
                    # next heartbeat looks for loops, which starts it again, not a second
                    # later.  Once: a loop stuck in a long call would have one more start
                    # queued at every heartbeat.
                    self._refreshed = -REFRESH_EVERY
                watch.follow(beat)
            if not watch.look(now, stall_ms):
                self.watches.pop(id(watch.loop), None)

    def next_look(self, now: float, longest: float, overdue_only: bool = False) -> float:
        """When the probe should look again: when a loop's timer, not run by then, would be a
        stall (so that its stack is taken during it), and no later than ``longest`` from now.
        With ``overdue_only``, only timers overdue already count (a probe that thinks itself
        starved still names a stall in progress)."""
        at = now + longest
        stall = self.options.stall_ms / 1000.0
        for watch in self.watches.values():
            beat = watch.beat
            if beat is None or watch.stall_stack is not None:
                continue
            due = beat.due
            if overdue_only and due > now:
                continue
            stalled_at = due + stall
            at = min(at, stalled_at if stalled_at > now else now + LOOK_AGAIN)
        return at
