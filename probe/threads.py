"""What each thread is doing: its Python stack, and its state from the kernel.

A thread blocked in C (``lock.acquire()``, ``time.sleep``, ``sock.recv``) shows only the Python
frame that called it; the kernel says what it waits for: ``/proc/self/task/TID/syscall`` names
the system call (futex: a lock or condition, clock_nanosleep: sleep, epoll/poll/select: I/O,
read/recv: a socket), ``/proc/self/task/TID/stat`` gives the run state and CPU time, and
``schedstat`` how often it was scheduled, which tells a parked thread from a busy ticker.

A thread is blocked since the first sample that saw it at the same frame and instruction, not
scheduled since (``ThreadWatch``): a thread cannot be asked what it waits on, only seen again.
"""
from __future__ import annotations

import contextlib
import os
import queue
import selectors
import subprocess
import sys
import threading
import time
from typing import Iterator

from tasktop.wire.kernel import SYSCALL_STATES, kernel_state as read_kernel_state

from . import procfs
from .foreign_frames import paused
from .handoff import Handoff
from .frames import RawStack, frame_stack, is_internal
from .tasks import ABSORBS, _add, STATES

def _register_threading() -> None:
    _add("Condition.wait", threading.Condition, "wait", "wait_for")
    _add("Event.wait", threading.Event, "wait")
    _add("Semaphore.acquire", threading.Semaphore, "acquire")
    _add("Barrier.wait", threading.Barrier, "wait")
    _add("Thread.join", threading.Thread, "join", "_wait_for_tstate_lock")
    _add("Queue.get", queue.Queue, "get")
    _add("Queue.put", queue.Queue, "put")
    _add("Queue.join", queue.Queue, "join")
    for name in dir(selectors):
        cls = getattr(selectors, name)
        if isinstance(cls, type) and issubclass(cls, selectors.BaseSelector):
            _add("I/O wait", cls, "select")
    _add("subprocess wait", subprocess.Popen, "wait", "_wait", "communicate", "_try_wait")
    try:
        from concurrent.futures import _base, thread as cf_thread

        _add("Future.result", _base.Future, "result", "exception")
        _add("executor wait", _base, "wait", "as_completed")
        _add("executor idle", cf_thread, "_worker")
    except ImportError:  # pragma: no cover
        pass


_register_threading()
_LOOP_FRAMES = ("run_forever", "_run_once")


def kernel_state(native_id: int | None, pid: int | str = "self") -> dict:
    """``{state, syscall, cpu_s, switches}`` of a thread (of this process by default), from /proc,
    read without letting go of the GIL."""
    return read_kernel_state(native_id, pid, procfs.read)


def classify(stack: RawStack, kernel: dict) -> str:
    """The thread's state: running, else the Python primitive it is in, else the system call."""
    if kernel.get("state") == "R" or kernel.get("syscall") == "running":
        return "running"
    state = None
    for code, _line in stack:
        found = STATES.get(code)
        if state is None:
            if found is not None:
                state = found
                continue
            break  # the innermost frame is the caller's own: the kernel knows better
        if found is not None and found in ABSORBS.get(state, ()):
            state = found
            continue
        break
    in_loop = any(code.co_name in _LOOP_FRAMES for code, _ in stack[:12])
    if state == "I/O wait" and in_loop:
        return "idle loop"
    if state is not None:
        return state
    syscall = kernel.get("syscall")
    state = SYSCALL_STATES.get(syscall or "")
    if syscall == "futex" and stack and is_internal(stack[0][0]):
        # asyncio's own code does not block on locks: its thread waits for the GIL, which the
        # probe holds while it looks (seen when the loop was switched out mid-iteration).
        return "running"
    if state == "I/O wait" and in_loop:
        return "idle loop"
    if state is not None:
        return state
    return "waiting" if syscall else "unknown"


#: The probe's hand-off timer on a loop (and what it calls), and its answer to a pacer's turn: a
#: thread seen in them was running its loop's callbacks and lets go of the GIL a moment only to
#: let the probe in (``time.sleep``, the ``select`` of ``Handoff.wanted``, the end of a turn),
#: which is exactly when the probe looks.
_HANDOFF_CODES = frozenset((Handoff._tick.__code__, Handoff.check.__code__, Handoff.wanted.__code__,
                            Handoff._turn.__code__))


def without_handoff(stack: RawStack) -> RawStack:
    """``stack`` without the probe's hand-off frames at its inner end (``stack`` itself if it
    has none there): a thread seen in them is running."""
    n = 0
    while n < len(stack) and stack[n][0] in _HANDOFF_CODES:
        n += 1
    return stack[n:] if n else stack


def current(exclude: set[int]) -> list[dict]:
    """Every Python thread but those in ``exclude``: ident, names, stack and kernel state.

    Other threads' frames are held for as short a time as possible: only while their stacks
    are copied into ``(code, line)`` pairs.  A frame object that is still referenced when its
    function returns takes its locals over (CPython 3.11+), and a reference held across a
    switch to that thread made objects of the host outlive their function and end up with the
    garbage collector (seen: ``BytesIO`` "Existing exports of data" at a multiprocessing
    child's exit)."""
    with paused:  # 3.11: see foreign_frames
        frames = sys._current_frames()
        taken = [(ident, frame_stack(frame), id(frame), frame.f_lasti)
                 for ident, frame in frames.items() if ident not in exclude]
        frames.clear()
        del frames
    by_ident = {t.ident: t for t in threading.enumerate()}
    main_ident = threading.main_thread().ident
    out = []
    for ident, stack, frame_id, lasti in taken:
        thread = by_ident.get(ident)
        native_id = getattr(thread, "native_id", None)
        if native_id is None and ident == main_ident:
            native_id = os.getpid()
        kernel = kernel_state(native_id)
        host_stack = without_handoff(stack)
        state = "running" if host_stack is not stack else classify(stack, kernel)
        stack = host_stack
        out.append({
            "ident": ident,
            "native_id": native_id,
            "name": thread.name if thread is not None else f"<thread {ident}>",
            "daemon": bool(thread.daemon) if thread is not None else None,
            "frame_id": frame_id,
            "lasti": lasti,
            "stack": stack,
            "kernel": kernel,
            "state": state,
        })
    return out


#: Threads of this process waiting for the probe's answer (see ``asking``).
ASKING: set[int] = set()


@contextlib.contextmanager
def asking() -> Iterator[None]:
    """The calling thread asks this process's own probe (the OpenTelemetry instrumentor's
    reader): shown running meanwhile, since caught waiting for the GIL the answering probe holds,
    in a futex, it would read as parked on a lock."""
    ident = threading.get_ident()
    ASKING.add(ident)
    try:
        yield
    finally:
        ASKING.discard(ident)


class ThreadWatch:
    """What the probe remembers of every thread from one sample to the next: where it was,
    and since when.  Used only from the probe thread."""

    def __init__(self) -> None:
        self.exclude: set[int] = set()  # the probe's own thread(s)
        self.seen: dict[int, tuple] = {}  # ident -> (signature, since)

    def rows(self) -> list[dict]:
        """``current()``'s rows, each with ``blocked_s``: how long the thread has been where
        it is (0 while it runs)."""
        now = time.monotonic()
        rows = current(self.exclude)
        seen = {}
        for row in rows:
            switches = row["kernel"].get("switches")
            sig = (row.pop("frame_id"), row["lasti"], switches)
            prev = self.seen.get(row["ident"])
            if row["ident"] in ASKING:
                row["state"] = "running"
            elif (row["state"] == "Lock.acquire" and row["kernel"].get("syscall") == "futex"
                    and prev is not None and switches is not None and prev[0][2] != switches):
                # Scheduled since the last look and in a futex now: a busy thread waiting for
                # the GIL the probe holds while it looks, not one parked on a lock.
                row["state"] = "running"
            since = prev[1] if prev is not None and prev[0] == sig and row["state"] != "running" else now
            seen[row["ident"]] = (sig, since)
            row["blocked_s"] = round(now - since, 3)
        self.seen = seen
        return rows
