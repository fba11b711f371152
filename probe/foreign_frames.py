"""Frames another thread runs, read without crashing the host on CPython 3.11.

On 3.11 a function's frame lives in its thread's own stack memory, and a frame object is made
for it on demand: by ``sys._current_frames()``, ``frame.f_back``, ``coro.cr_frame``, or when
its locals are read.  Making one allocates, an allocation may run the garbage collector right
there, and the collector runs finalizers (``__del__``, weak reference callbacks) whose Python
code may hand the GIL to another thread.  If that thread returns from the frame the C code was
reading meanwhile, the C code goes on reading freed memory: the host dies of a segfault in
``PyFrame_GetBack`` (seen here with a thread walking its siblings' stacks, probe or not, in a
host whose finalizers sleep; sentry-python's sampling profiler met it in production,
getsentry/sentry-python#6119).  Up to 3.10 frames are objects of their own, and from 3.12 the
collector runs only between instructions, never inside an allocation (CPython gh-97922): only
3.11 needs this.

``with paused:`` turns the collector's automatic runs off while the probe holds other threads'
frames (a walk of their stacks: a fraction of a millisecond), on 3.11 only; a ``gc.collect()``
called meanwhile still runs, and the collector catches up at the next allocation after it.  The
price: a host thread that calls ``gc.disable()`` inside that window finds it undone at its end.
The child of a ``fork()`` has only the forking thread, so it starts with no pause.
"""
from __future__ import annotations

import gc
import os
import sys
import threading

#: Whether reading another thread's frames needs the collector paused (see the docstring).
NEEDED = sys.version_info[:2] == (3, 11)


#: Seconds a pause may stay entered with no use entering or leaving before the probe's
#: heartbeat ends it (``_Paused.unstick``): a walk of other threads' stacks takes under 1 ms.
STUCK_S = 5.0


class _Paused:
    """The collector's automatic runs off while any thread is inside ``with paused:``
    (nested and concurrent uses count: it is turned back on by the last one out, and only if
    it was on when the first one came in)."""

    __slots__ = ("_lock", "_inside", "_ours", "_moves", "_seen")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._ours = False  # whether the collector was turned off here
        self._moves = 0  # uses entered and left, in all
        self._seen = (0, 0.0)  # (moves, when) at the heartbeat that last saw them move

    def __enter__(self) -> "_Paused":
        if NEEDED:
            with self._lock:
                self._moves += 1
                self._inside += 1
                if self._inside == 1:
                    try:
                        self._ours = gc.isenabled()
                        if self._ours:
                            gc.disable()
                    except BaseException:  # a signal's exception in the main thread: as before
                        self._end()
                        raise
        return self

    def __exit__(self, *_exc: object) -> None:
        if NEEDED:
            with self._lock:
                self._moves += 1
                if self._inside > 1:
                    self._inside -= 1
                else:  # the last one out (or one ``unstick`` ended already)
                    self._end()

    def _end(self) -> None:
        """No use is inside any more: the collector back on if it was ours to turn off."""
        self._inside = 0
        if self._ours:
            self._ours = False
            gc.enable()

    def unstick(self, now: float) -> bool:
        """Called by the probe's heartbeat: end a pause no use has entered or left for
        ``STUCK_S`` seconds, turning the collector back on if it was ours to turn off.  A
        signal's exception can leave one entered (raised in the main thread between two
        bytecodes of ``__enter__`` or ``__exit__``, which no Python code can rule out), and
        the host would run without the automatic collector for good.  True if it did."""
        if not NEEDED or self._inside == 0:
            return False
        moves = self._moves
        if moves != self._seen[0]:
            self._seen = (moves, now)
            return False
        if now - self._seen[1] < STUCK_S:
            return False
        with self._lock:
            if self._moves != moves or self._inside == 0:
                return False
            self._end()
        return True

    def after_fork_in_child(self) -> None:
        """The child of a fork has only the thread that forked, inside no pause: a pause that
        another thread was in would otherwise last for ever (the collector off, or the lock
        held by a thread that is not there)."""
        self._lock = threading.Lock()
        self._end()


paused = _Paused()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=paused.after_fork_in_child)
