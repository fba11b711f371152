"""What existed at one moment: the threads and the pending tasks of the process.

A test's leftovers are what is there after it and was not before it; fixtures of a wider scope
add what they create to the test's baseline (:meth:`Baseline.adopt`).
"""
from __future__ import annotations

import sys
import threading
import weakref
from typing import Any, Iterable

from tasktop.probe.foreign_frames import paused


def live_threads() -> dict:
    """``{ident: Thread or None}`` of every thread running Python code (``None``: no Thread object)."""
    with paused:  # 3.11: its frame objects are made like f_back's (see probe/foreign_frames.py)
        idents = list(sys._current_frames())
    by_ident = {t.ident: t for t in threading.enumerate()}
    return {ident: by_ident.get(ident) for ident in idents}


def all_tasks() -> set:
    """Every task the process has: those the probe recorded and asyncio's own registry."""
    import asyncio.tasks as asyncio_tasks
    from tasktop.probe import record_lists, registry

    records: list = []
    record_lists.copy_live(records)
    found = {info() for info in records}
    found.discard(None)
    for name in ("_all_tasks", "_scheduled_tasks", "_eager_tasks"):
        tasks = getattr(asyncio_tasks, name, None)
        if tasks is not None:
            found.update(registry.copy_set(tasks))
    return found


def pending(tasks: Iterable) -> list:
    """The tasks that are not done (a task that cannot say is left out)."""
    out = []
    for task in tasks:
        try:
            if not task.done():
                out.append(task)
        except Exception:
            pass
    return out


class Baseline:
    """What existed at one moment: threads by ident and object, pending tasks (held weakly).

    The Thread objects are held: a thread that ends during the test may hand its ident on to
    a new one, and only the object tells them apart.  (A finished Thread holds little: its
    target and arguments are dropped when it ends.)
    """

    def __init__(self, threads: bool, tasks: bool) -> None:
        self.threads: dict = {}  # ident -> the Thread, or None for a thread without one
        self.tasks: "weakref.WeakSet" = weakref.WeakSet()
        if threads:
            self.add_threads(live_threads())
        if tasks:
            self.tasks.update(pending(all_tasks()))

    def add_threads(self, live: dict) -> None:
        for ident, thread in live.items():
            self.threads[ident] = thread

    def knows_thread(self, ident: int, thread: Any) -> bool:
        if ident not in self.threads:
            return False
        before = self.threads[ident]
        if before is None:  # a thread without a Thread object, maybe given a dummy one since
            return thread is None or isinstance(thread, threading._DummyThread)  # type: ignore[attr-defined]
        return thread is None or thread is before  # None: the known thread is just ending

    def adopt(self, earlier: "Baseline", threads: bool, tasks: bool) -> None:
        """Add what appeared since ``earlier`` (what a wider-scoped fixture just created)."""
        if threads:
            live = live_threads()
            self.add_threads({i: t for i, t in live.items() if not earlier.knows_thread(i, t)})
        if tasks:
            self.tasks.update(t for t in pending(all_tasks()) if t not in earlier.tasks)
