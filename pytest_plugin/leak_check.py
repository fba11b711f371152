"""The leak check of one test: what counts as left behind, and the wait for it to go.

A leftover is a thread or a pending task that is not in the test's baseline, is not the test
harness's or the probe's, and is not let through (:mod:`services`).  Leftovers get ``timeout``
seconds to go, re-checked with a growing pause (joining a leftover thread, so that its end
wakes the check at once), as goleak does for goroutines still winding down.  Tasks of a loop
that stopped during the test are held until the check (else the collector may take them and
the evidence with them), and tasks a runner cancels at shutdown are described as it does.
"""
from __future__ import annotations

import gc
import sys
import threading
import time
from typing import Any, Iterable

import pytest

from tasktop.probe import endings

from .baseline import Baseline, all_tasks, live_threads, pending

#: The probe's own thread is never a leftover.
PROBE_THREAD = "tasktop-probe"
#: What the report says of a task that a runner cancelled when it shut its loop down.
SHUTDOWN = "cancelled when its runner shut the loop down (asyncio.run, asyncio.Runner)"

#: The checks under way in this process, outermost first.  A test that runs a pytest session of
#: its own in the same process (``pytester``) has the inner session's checks above its own:
#: what an inner test leaves is that test's, reported (or let through) by the inner session.
_under_way: list = []


def lost_counts() -> dict:
    """Tasks destroyed while pending so far, by creation site (the probe's ``endings``)."""
    return {site: row[0] for site, row in list(endings.lost.items())}


def _cancel_requested(task: Any) -> bool:
    """Whether someone already asked ``task`` to cancel (it will be, whoever gathers it)."""
    try:
        cancelling = getattr(task, "cancelling", None)  # 3.11+
        if cancelling is not None:
            return cancelling() > 0
        if getattr(task, "_must_cancel", False):
            return True
        waiter = getattr(task, "_fut_waiter", None)
        return waiter is not None and waiter.cancelled()
    except Exception:
        return False


def _thread_codes(idents: Iterable) -> dict:
    """``{ident: [code, ...]}``, innermost first, of the threads' stacks now.  The frames are
    let go of at once (see ``threads.current``)."""
    from tasktop.probe.foreign_frames import paused
    from tasktop.probe.frames import frame_stack

    with paused:  # 3.11: see probe/foreign_frames.py
        frames = sys._current_frames()
        out = {ident: [code for code, _line in frame_stack(frames.get(ident))] for ident in idents}
        frames.clear()
    return out


class LeakCheck:
    """The leak check of one test.  ``ignore`` and ``timeout`` may be changed during the test.

    ``ignore`` holds globs (matched against thread and task names and against the function
    names on their stacks, ``Class.method`` or bare) and callables (given the
    ``threading.Thread`` or ``asyncio.Task``, true to ignore it).  ``allow`` holds the known
    services and the ``tasktop_leaks_allow`` entries (:mod:`services`).
    """

    def __init__(self, item: pytest.Item, timeout: float, ignore: list, tasks: bool = True,
                 threads: bool = True, runner_cancelled: bool = True,
                 thread_sites: Any = None, allow: Iterable = ()) -> None:
        self.nodeid = item.nodeid
        self.thread_sites = thread_sites if thread_sites is not None else {}
        self.timeout = timeout
        self.ignore = list(ignore)
        self.allow = list(allow)
        self.tasks = tasks
        self.threads = threads
        self.runner_cancelled = runner_cancelled
        self.skipped = False
        self.baseline: Baseline | None = None
        self._held: set = set()  # pending tasks of loops that stopped during the test
        self._cancelled: list = []  # (task, row) of tasks a runner cancelled at shutdown
        self._passed: dict = {}  # (kind, allowance) -> {id: name}, found by the last look
        self._passed_cancelled: dict = {}  # the same, of the tasks a runner cancelled
        self._lock = threading.Lock()

    def begin(self) -> None:
        if self.baseline is None:
            self.baseline = Baseline(self.threads, self.tasks)
            self.lost_before = lost_counts()
            _under_way.append(self)

    def lost(self) -> list[tuple[Any, int]]:
        """``(creation site, count)`` of the tasks destroyed while pending during the test: a
        young collection first, so that what the test dropped is destroyed now and counted
        here rather than in a later test."""
        if not self.tasks or getattr(self, "lost_before", None) is None:
            return []
        gc.collect(1)
        before = self.lost_before
        return [(site, count - before.get(site, 0)) for site, count in lost_counts().items()
                if count > before.get(site, 0)]

    def innermost(self) -> bool:
        """Whether no check of a nested session's test is under way inside this one."""
        return bool(_under_way) and _under_way[-1] is self

    def end(self) -> None:
        """The check is over: what appeared since it began was its test's, not that of the
        checks it ran inside of (the outer test that ran this test's session)."""
        if self in _under_way:
            _under_way.remove(self)
            for outer in _under_way:
                if outer.baseline is not None and self.baseline is not None:
                    outer.baseline.adopt(self.baseline, outer.threads and self.threads,
                                         outer.tasks and self.tasks)
        self.release()

    def _new_pending(self, loop: Any) -> list:
        """The pending tasks of ``loop`` that are not in the baseline."""
        import asyncio

        baseline = self.baseline
        if baseline is None:
            return []
        for _ in range(100):
            try:
                return [t for t in asyncio.all_tasks(loop) if t not in baseline.tasks]
            except RuntimeError:  # a set changed size under us: asyncio retries the same way
                continue
        return []

    def hold_pending(self, loop: Any) -> None:
        """``loop`` stops running: keep its pending tasks alive until the check looks at them."""
        if self.tasks and self.innermost():
            pending = self._new_pending(loop)
            with self._lock:
                self._held.update(pending)

    def runner_cancels(self, loop: Any) -> None:
        """A runner is about to cancel what is left on ``loop``: what the test created and did
        not cancel itself was left behind.  Described now, while it still has a stack."""
        from .harness import is_harness_task
        from .leftovers import describe_task

        if self.tasks and self.runner_cancelled and self.innermost():
            left = [t for t in self._new_pending(loop)
                    if not _cancel_requested(t) and not is_harness_task(t)]
            rows = [(task, describe_task(task, SHUTDOWN)) for task in left]
            with self._lock:
                self._cancelled.extend(rows)

    def cancelled_rows(self, live: Iterable = ()) -> list:
        """The rows of tasks a runner had to cancel, but for those let through and those still
        ``live`` (a task may refuse to be cancelled)."""
        with self._lock:
            found = list(self._cancelled)
        from .services import let_through

        live = {id(task) for task in live}
        allowances = self._allowances()
        passed: dict = {}
        out = []
        for task, row in found:
            if id(task) in live or let_through(allowances, task, "task", row["name"], row["codes"], passed):
                continue
            out.append(dict(row, final=True))
        self._passed_cancelled = passed
        return out

    def notes(self) -> list:
        """What was let through, and by what: lines for ``pytest -v``."""
        from .services import note

        merged: dict = {}
        for passed in (self._passed, self._passed_cancelled):
            for key, names in passed.items():
                merged.setdefault(key, {}).update(names)
        return note({key: list(names.values()) for key, names in merged.items()})

    def release(self) -> None:
        with self._lock:
            self._held.clear()
            self._cancelled.clear()

    # -- finding leftovers --------------------------------------------------------------
    def _allowances(self) -> list:
        """What lets a leftover through: the known services and ini lines, then ``ignore``
        (which the test may have changed)."""
        from .services import from_ignore

        return self.allow + from_ignore(self.ignore, "the test's ignore")

    def leftovers(self) -> tuple[list, list]:
        """``([(ident, Thread or None)], [task])`` left now, those let through left out."""
        from .harness import is_harness_task
        from .services import let_through
        from .thread_sites import is_harness_thread

        baseline = self.baseline
        if baseline is None:
            return [], []
        allowances = self._allowances()
        passed: dict = {}
        threads = []
        if self.threads:
            me = threading.get_ident()
            for ident, thread in live_threads().items():
                if ident == me or baseline.knows_thread(ident, thread):
                    continue
                name = thread.name if thread is not None else None
                if name == PROBE_THREAD or (thread is not None and is_harness_thread(thread, self.thread_sites)):
                    continue
                threads.append((ident, thread))
            if threads:
                codes = _thread_codes([ident for ident, _ in threads])
                threads = [(ident, thread) for ident, thread in threads
                           if not let_through(allowances, thread, "thread", getattr(thread, "name", None),
                                               codes.get(ident, []), passed)]
        tasks = []
        if self.tasks:
            from tasktop.probe import tasks as tasks_mod

            candidates = all_tasks()
            with self._lock:
                candidates |= self._held
            for task in pending(candidates):
                if task in baseline.tasks or is_harness_task(task):
                    continue
                try:
                    name = task.get_name()
                    codes = tasks_mod.chain_codes(task.get_coro())
                except Exception:
                    name, codes = None, []
                if not let_through(allowances, task, "task", name, codes, passed):
                    tasks.append(task)
        self._passed = passed
        return threads, tasks

    def wait(self) -> tuple[list, list]:
        """The leftovers once they had ``timeout`` seconds to go: ``(threads, tasks)``."""
        deadline = time.monotonic() + self.timeout
        pause = 0.001
        while True:
            threads, tasks = self.leftovers()
            now = time.monotonic()
            if (not threads and not tasks) or now >= deadline:
                return threads, tasks
            step = min(pause, deadline - now)
            joinable = next((t for _, t in threads if t is not None
                             and not isinstance(t, threading._DummyThread)), None)  # type: ignore[attr-defined]
            if joinable is not None:
                joinable.join(step)  # returns as soon as it ends
            else:
                time.sleep(step)
            pause = min(pause * 2, 0.05)
