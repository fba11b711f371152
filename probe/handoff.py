"""Handing the GIL to the probe thread when a busy event loop would starve it.

CPython asks the thread holding the GIL to let go only after a waiting thread has waited 5 ms
*without the GIL changing hands*.  A busy event loop releases the GIL itself on every iteration
(``epoll_wait(0)`` when callbacks are ready) and takes it straight back, well before another
thread wakes up, so a probe thread waiting for the GIL is woken, loses the race, and waits
again: measured on a loop that churns through short tasks, one snapshot took 10 to 50 seconds.

The cure has to come from the loop's side, because the starved thread cannot run any Python
to ask for help.  Each loop gets a small timer callback.  It checks whether the probe wants to
run (it is between two waits, its wait has timed out, or a client's request is pending on its
sockets) and whether it is starved: its progress counter, which the probe thread bumps as
it goes (after each wait, every few hundred items of a pass), has not moved since the last
tick.  A starved thread cannot run a line of Python, so this is exact; its CPU time is not
(waking up to lose the race again costs CPU too).  Only then does the loop sleep for
``SLICE`` seconds, during which the probe takes the GIL.  A probe that gets its share anyway
(the loop is idle, or blocked in long calls) costs the loop nothing; a starved one costs it
``SLICE`` plus at most one switch interval per ``BUSY_PERIOD``; an idle probe, a flag test
and a ``select()`` with no wait every ``IDLE_PERIOD``.

The same timer is the loop's heartbeat (``Beat``): how late it runs is the loop's lag, and a
timer long overdue is a stall in progress (see loops.py).  So the probe posts nothing to a
loop to learn its lag, and the loop is woken for one timer, not a timer and a self-pipe byte.
"""
from __future__ import annotations

import asyncio
import collections
import math
import select
import sys
import threading
import time
import weakref
from typing import Any, Callable

# Seconds between checks while the probe waits for nothing: half the default stall threshold,
# since the timer is also the loop's heartbeat (a stall is seen once it is overdue by the threshold).
IDLE_PERIOD = 0.05
BUSY_PERIOD = 0.01  # seconds between hand-offs while the probe wants the GIL
SLICE = 0.001  # seconds the loop thread lets go of the GIL per hand-off
LATE = 0.002  # a probe whose wait ended this long ago and that still has no GIL is starved
STALLS_KEPT = 16  # stalls a loop's timer keeps until the probe takes them


class Beat:
    """What a loop's timer did: written on the loop's thread, read by the probe's."""

    __slots__ = ("due", "last", "stalls")

    def __init__(self, due: float) -> None:
        self.due = due  # monotonic time the next run is due at
        # (when it last ran, how late, the thread it ran in): one tuple, so that a reader in
        # another thread never pairs one run's time with another's lateness.
        self.last: tuple[float, float, int] | None = None
        # (when it ran, how late) of each run later than the stall threshold, until the probe
        # takes them: the probe looks less often than the timer runs.
        self.stalls: collections.deque = collections.deque(maxlen=STALLS_KEPT)


class Handoff:
    """Shared by the probe thread (which says when it blocks) and the loops' timers."""

    def __init__(self, stall_s: float = 0.1) -> None:
        self.stall_s = stall_s  # a timer run later than this is a stall (``TASKTOP_STALL_MS``)
        self.active = False
        self.working = False  # the probe thread is between two waits: it has or wants the GIL
        self.wake_at = math.inf  # when the probe's current wait times out
        self.fd = -1  # the probe's selector: readable when a client or the wake pipe wants it
        self._beats: "weakref.WeakKeyDictionary[Any, Beat]" = weakref.WeakKeyDictionary()
        self.progress = 0  # bumped by the probe thread as it works
        self._seen = -1  # the progress counter at the last check
        # each loop's last turn (``give_turn``): a lock the loop releases to answer it, and when
        self._turns: "weakref.WeakKeyDictionary[Any, tuple[Any, float]]" = weakref.WeakKeyDictionary()

    # -- the probe thread ---------------------------------------------------------------
    def blocking(self, timeout: float) -> float:
        """The probe is about to wait up to ``timeout`` seconds in its selector; returns when
        that wait ends (monotonic)."""
        self.wake_at = wake_at = time.monotonic() + timeout
        self.working = False
        return wake_at

    def resumed(self) -> None:
        self.working = True
        self.wake_at = math.inf
        self.progress += 1

    def wanted(self, now: float) -> bool:
        """Whether the probe thread wants the GIL now (callable from any thread)."""
        if self.working or now >= self.wake_at:
            return True
        fd = self.fd
        if fd < 0:
            return False
        try:
            return bool(select.select([fd], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def check(self, now: float) -> tuple[bool, bool]:
        """``(wanted, starved)``: whether the probe wants the GIL, and whether it is starved:
        its wait ended more than ``LATE`` ago and it has not got the GIL back since, or it is
        in the middle of work (or a request waits for it) and has made no progress since the
        last check."""
        progress, seen = self.progress, self._seen
        self._seen = progress
        if self.working:
            return True, progress == seen
        if now >= self.wake_at:
            return True, now >= self.wake_at + LATE
        if self.wanted(now):
            return True, progress == seen
        return False, False

    def give_turn(self) -> bool:
        """Let every running loop with our timer run what it has ready, and wait (the GIL let
        go) until each has, or ``TURN_WAIT``; ``False`` if there was no loop to wait for.

        A loop takes the GIL twice an iteration (after its timed ``epoll_wait`` and after the
        ``epoll_wait(0)`` that a ready callback makes), and a probe back from a fixed sleep
        took it first whenever the loop's thread woke late.  A turn not answered yet is waited
        for again (a virtual CPU can take 5-10 ms to wake), but not once it is ``TURN_PATIENCE``
        old: that loop is blocked in a long call, and is not waited for until it answers."""
        if not self.active:
            return False
        try:
            loops = list(self._beats)
        except RuntimeError:  # a loop's thread attached or let go of one meanwhile
            return False
        mine = asyncio._get_running_loop()  # a pass on a loop's own thread cannot wait for it
        now = time.perf_counter()
        asked = []
        for loop in loops:
            try:
                last = self._turns.get(loop)
                if last is not None and last[0].locked():
                    if now - last[1] < TURN_PATIENCE:
                        asked.append(last[0])
                    continue
                if loop is mine or not loop.is_running():
                    continue
                answered = threading.Lock()
                answered.acquire()
                if _awake(loop):  # no byte down its self-pipe: no wake-up, no extra iteration
                    loop._call_soon(self._turn, (loop, answered, TURN_ROUNDS), None)
                else:
                    rounds = TURN_ROUNDS if hasattr(loop, "_ready") else BLIND_ROUNDS
                    loop.call_soon_threadsafe(self._turn, loop, answered, rounds)
                self._turns[loop] = (answered, now)
                asked.append(answered)
            except Exception:  # closed meanwhile, or not weakly referenceable
                continue
        if not asked:
            return False
        deadline = now + TURN_WAIT
        for answered in asked:
            if answered.acquire(timeout=max(0.0, deadline - time.perf_counter())):
                answered.release()
        return True

    # -- the loop threads ---------------------------------------------------------------
    def _turn(self, loop: Any, answered: Any, rounds: int) -> None:
        """Answer ``give_turn`` once the loop has nothing ready but this (or after
        ``rounds`` iterations): what it had ready, and what that made ready, has run.
        A lock, not an ``Event``: its release is one C call, no frame for a look to see."""
        try:
            ready = getattr(loop, "_ready", None)  # None: uvloop's queue is hidden, go on blind
            if rounds > 1 and (ready is None or ready):
                loop.call_soon(self._turn, loop, answered, rounds - 1)
                return
        except Exception:
            pass
        try:
            answered.release()
        except RuntimeError:
            pass

    def attached(self, loop: Any) -> bool:
        """Whether ``loop`` runs our timer (it stops while the probe is stopped or paused)."""
        try:
            return loop in self._beats
        except TypeError:
            return True  # not weakly referenceable: nothing we can do

    def beat(self, loop: Any) -> Beat | None:
        """The heartbeat of ``loop``'s timer, None while it has none."""
        try:
            return self._beats.get(loop)
        except TypeError:
            return None

    def attach(self, loop: Any) -> None:
        """Start the loop's hand-off timer: on the loop's thread (``call_soon_threadsafe``), or
        from ``hooks.loop_listeners`` as the loop is made or starts running."""
        try:
            if not self.active or loop in self._beats:
                return
            beat = self._beats[loop] = Beat(time.monotonic() + IDLE_PERIOD)
            loop.call_later(IDLE_PERIOD, self._tick, loop, beat)
        except Exception:
            pass

    def started(self, loop: Any) -> None:
        """``loop`` starts running (``hooks.start_listeners``, on its thread): a timer it had
        is due from now on, not from before it stopped (or before it first ran), so that its
        first run is not late by all that time: a stall of the first iteration is its own
        length, and a loop run now and then is not called stalled in between."""
        beat = self.beat(loop)
        if beat is not None:
            beat.due = max(beat.due, time.monotonic())

    def _tick(self, loop: Any, beat: Beat) -> None:
        try:
            now = time.monotonic()
            late = now - beat.due
            if late > self.stall_s:  # before ``last``: a look between the two takes both
                beat.stalls.append((now, late))
            beat.last = (now, late, threading.get_ident())
            if not self.active or loop.is_closed():
                self._beats.pop(loop, None)
                return
            wanted, starved = self.check(now)
            if starved:
                time.sleep(SLICE)  # the GIL is free for the probe meanwhile
            if wanted:
                delay = BUSY_PERIOD
            else:  # just after the probe's wait ends: a starved probe is let in at once
                delay = min(IDLE_PERIOD, max(0.0, self.wake_at - now) + LATE)
            beat.due = time.monotonic() + delay
            loop.call_later(delay, self._tick, loop, beat)
        except Exception:  # never let the probe's timer raise into the host's loop
            self._beats.pop(loop, None)


PACE = 0.002  # seconds of probe work between two deliberate yields in a long pass
YIELD = 0.0001  # seconds the probe sleeps then, so that the host's threads take the GIL
TURN_WAIT = 0.005  # longest a yield waits for the loops' turns (CPython's switch interval)
TURN_PATIENCE = 0.05  # a turn unanswered this long: its loop is blocked, not waited for
TURN_ROUNDS = 8  # iterations a loop runs for one turn before it answers anyway
BLIND_ROUNDS = 3  # iterations of a loop whose ready queue is hidden (a timer, a future, a step)
#: The probe thread's timer slack (Linux, ns): the kernel's default 50 µs made each ``YIELD``
#: last 180 µs; only the probe thread's own timers are changed.
TIMER_SLACK_NS = 1


def _awake(loop: Any) -> bool:
    """Whether asyncio's own loop runs a callback put on its ready queue without being woken:
    it has callbacks ready, or its next timer is due, so its wait for I/O has ended (or ends
    within the millisecond it is rounded up to).  A pass's yields find the loop so nearly every
    time (a timer due within its ``PACE``), and then a turn costs no byte down the self-pipe, no
    GIL hand-off for the probe's ``send`` and no extra iteration of the loop to read it."""
    try:
        if type(loop)._run_once is not _RUN_ONCE:  # uvloop, or a loop that runs its queue its own way
            return False
        if loop._ready:
            return True
        scheduled = loop._scheduled
        return bool(scheduled) and scheduled[0]._when <= loop.time()
    except Exception:
        return False


_RUN_ONCE = asyncio.BaseEventLoop._run_once


def exact_sleeps() -> None:
    """Let the calling thread's short sleeps end on time (Linux: ``PR_SET_TIMERSLACK``); does
    nothing elsewhere or if it cannot.  Called on the probe thread only."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        zero = ctypes.c_ulong(0)
        ctypes.CDLL(None).prctl(29, ctypes.c_ulong(TIMER_SLACK_NS), zero, zero, zero)  # PR_SET_TIMERSLACK
    except Exception:
        pass


class Pacer:
    """The other direction: a long pass on the probe thread (100,000 tasks) gives the GIL
    away every ``PACE`` seconds of work, instead of holding it until CPython's 5 ms switch
    interval makes it let go; each time, a turn of every loop (``Handoff.give_turn``), so that
    an event loop waits at most about ``PACE`` for it, for both of an iteration's takings.
    Call it every few hundred items: it reads the clock, and bumps ``handoff.progress``."""

    __slots__ = ("next", "handoff", "asking", "asked")

    def __init__(self, handoff: Handoff | None = None, asking: Callable[[], bool] | None = None) -> None:
        self.next = time.perf_counter() + PACE
        self.handoff = handoff
        #: ``asking()``: whether a client waits to be answered, looked at each time the GIL is
        #: given away; ``asked`` turns true once one does (a background pass then gives way).
        self.asking = asking
        self.asked = False

    def __call__(self) -> None:
        if self.handoff is not None:
            self.handoff.progress += 1
        if time.perf_counter() >= self.next:
            self.now()

    def now(self) -> None:
        """Give the GIL away now (before a few milliseconds of work that cannot pause): until
        the loops have run what they had ready, and at least ``YIELD`` for other threads."""
        start = time.perf_counter()
        if self.handoff is None or not self.handoff.give_turn():
            time.sleep(YIELD)
        else:
            left = start + YIELD - time.perf_counter()
            if left > 0:
                time.sleep(left)
        if self.asking is not None and not self.asked:
            self.asked = self.asking()
        self.next = time.perf_counter() + PACE
