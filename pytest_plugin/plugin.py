"""A pytest plugin that fails tests which leave asyncio tasks or threads behind, like Go's goleak.

Off unless asked for: loaded through its entry point it only adds an option, an ini setting, a
marker and a fixture.  Nothing is hooked and no test pays anything until the run is started
with ``--tasktop-leaks`` (every test is checked), or a collected test carries
``@pytest.mark.tasktop_leaks`` or requests the ``tasktop_leaks`` fixture (those tests are
checked).  Then, for the rest of the session, the probe's task-factory hooks record where each
task is created, ``threading.Thread.start`` records where each thread is started, and two
asyncio calls are watched: "a loop stops running" and "a runner cancels what is left" (below).
All of it is undone when the session ends.

A checked test takes a baseline before its first fixture is set up: the live threads (by ident
*and* ``Thread`` object, so a reused ident is still a new thread) and the pending tasks.  What
fixtures of a wider scope create while they are set up joins the baseline, since a
session-scoped server is not this test's leak.  After the test's own fixtures are torn down,
every thread that was not in the baseline and every task that is not done and was not in it is
a leftover.  Leftovers get up to ``timeout`` seconds (1 s by default) to go away, re-checked
with a growing pause (joining a leftover thread, so its end wakes us at once), as goleak does
for goroutines that are still winding down.  Whatever is left fails the test's teardown with a
report grouped like ``tasktop dump``: count, kind, state, the stack innermost first and where
the members were created.

A pending task whose loop has stopped will never finish, and nothing may refer to it: loop
and task form a cycle that the garbage collector can reclaim at any moment, taking the
evidence with it (asyncio logs "Task was destroyed but it is pending!", to whichever test is
running then).  So while a test is checked, when a loop stops running its pending tasks
created during the test are held until the check, which then reports them.

``asyncio.run`` and ``asyncio.Runner`` (which pytest-asyncio runs every test on) cancel
whatever is still pending when they shut their loop down, so such a leftover is gone by the
time the test's fixtures are torn down.  It was left behind all the same (in a service whose
loop runs for days it piles up), so the runners' ``_cancel_all_tasks`` is wrapped: the tasks
it is about to cancel that the test created and did not itself ask to cancel are described
there, while they still have a stack, and reported as "cancelled when its runner shut the
loop down".  ``runner_cancelled=False`` (or the ini option) lets them through.

What runs the tests is never a leftover: the tasks of the test harness (anyio's test runner
task, of this session or of a nested one) are known by identity, by the runner coroutine they
run, so the rule holds on uvloop, with eager tasks and with an application's task factory
(:mod:`pytest_harness`).  Known library services (anyio's process-pool shutdown task, a loop's
idle default-executor workers...) are let through with a reason, and so is whatever the
``tasktop_leaks_allow`` lines and ``ignore`` patterns match (:mod:`pytest_services`); the
teardown report notes what was, and ``pytest -v`` lists the notes at the end.

A test may run a pytest session of its own in this process (``pytester``).  While a test of
that inner session is checked, what happens is that test's: the outer check does not record
it, and when the inner check ends, what its test left joins the outer check's baseline.

A test whose setup or call already failed (or was skipped or xfailed) is not checked: its
failure is the news, and what it left behind is ignored by the next test like anything else
that existed before it.
"""
from __future__ import annotations

import functools
import os
import re
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterable

import pytest

MARKER = "tasktop_leaks"
FIXTURE = "tasktop_leaks"
OPTION = "--tasktop-leaks"
INI_TIMEOUT = "tasktop_leaks_timeout"
INI_IGNORE = "tasktop_leaks_ignore"
INI_RUNNER = "tasktop_leaks_runner_cancelled"
INI_ALLOW = "tasktop_leaks_allow"
#: The title of the teardown report's section saying what was let through.
NOTES_SECTION = "tasktop_leaks: let through"
DEFAULT_TIMEOUT = 1.0
#: Frames shown of each creation stack.
CREATION_DEPTH = 6
#: The probe's own thread is never a leftover.
PROBE_THREAD = "tasktop-probe"
_PLUGIN_NAME = "tasktop-leaks-checker"
_MARKER_KEYS = ("ignore", "timeout", "tasks", "threads", "runner_cancelled", "check")
#: Modules whose ``_cancel_all_tasks(loop)`` cancels what is left when a runner shuts its loop
#: down: asyncio.run and asyncio.Runner (pytest-asyncio 1.x), and the backports of Runner that
#: pytest-asyncio and anyio use on 3.9 and 3.10.
_RUNNER_MODULES = ("asyncio.runners", "backports.asyncio.runner.runner", "anyio._backends._asyncio")
_SHUTDOWN = "cancelled when its runner shut the loop down (asyncio.run, asyncio.Runner)"


# -- pytest hooks that are always there: they only declare things --------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tasktop", "tasktop: leaked asyncio tasks and threads")
    group.addoption(OPTION, action="store_true", default=False,
                    help="fail every test that leaves asyncio tasks or threads behind")
    parser.addini(INI_TIMEOUT, default=str(DEFAULT_TIMEOUT),
                  help="seconds leftovers get to finish before a test fails for them "
                       f"(default {DEFAULT_TIMEOUT})")
    parser.addini(INI_IGNORE, type="linelist", default=[],
                  help="leftovers never reported: globs matched against thread and task names "
                       "and the function names on their stacks")
    parser.addini(INI_ALLOW, type="linelist", default=[],
                  help="known services never reported, one 'pattern = reason' a line: the "
                       "pattern is a glob matched like tasktop_leaks_ignore's; what they let "
                       "through is listed by pytest -v")
    parser.addini(INI_RUNNER, type="bool", default=True,
                  help="whether tasks still pending when asyncio.run or asyncio.Runner (as "
                       "pytest-asyncio uses) shuts the loop down, and so cancels them, count as "
                       "left behind (default true)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(ignore=(), timeout=None, tasks=True, threads=True, runner_cancelled=True, "
        "check=True): fail the test "
        "if it leaves asyncio tasks or threads behind (check=False exempts it from "
        f"{OPTION})")
    if config.getoption(OPTION, False):
        _activate(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    asked = False
    for item in items:
        for mark in item.iter_markers(MARKER):
            _validate(mark, item.nodeid)  # a misspelt option is an error of the whole run
        asked = asked or _asked(item)
    if asked and _checker(config) is None:
        _activate(config)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: Any, config: pytest.Config) -> None:
    """What the checks let through: each test's notes with ``-v``, else how many there were.
    Read from the teardown reports, so that it works under pytest-xdist too."""
    noted = []
    for reports in list(terminalreporter.stats.values()):
        for report in reports:
            if getattr(report, "when", None) != "teardown":
                continue
            for title, text in getattr(report, "sections", ()):
                if title == NOTES_SECTION:
                    noted.append((report.nodeid, text.splitlines()))
    if not noted:
        return
    if config.getoption("verbose", 0) < 1:
        count = sum(len(lines) for _nodeid, lines in noted)
        terminalreporter.write_line(f"{NOTES_SECTION}: {count} known service(s) or ignored "
                                    f"leftover(s) in {len(noted)} test(s); -v lists them")
        return
    terminalreporter.write_sep("=", NOTES_SECTION)
    for nodeid, lines in sorted(noted):
        for line in lines:
            terminalreporter.write_line(f"{nodeid}: {line}")


def pytest_unconfigure(config: pytest.Config) -> None:
    checker = _checker(config)
    if checker is not None:
        config.pluginmanager.unregister(checker, _PLUGIN_NAME)
        checker.close()


@pytest.fixture
def tasktop_leaks(request: pytest.FixtureRequest) -> "LeakCheck":
    """Fail this test if it leaves asyncio tasks or threads behind.

    Returns the test's :class:`LeakCheck`: append to its ``ignore`` list or change its
    ``timeout`` during the test.  Requested as an argument, the baseline is taken before any
    fixture is set up; through ``request.getfixturevalue`` only from then on.
    """
    checker = _activate(request.config)
    return checker.check_for(request.node)


# -- what a test asked for ------------------------------------------------------------------------
def _validate(mark: Any, nodeid: str) -> None:
    if mark.args:
        raise pytest.UsageError(f"{nodeid}: @pytest.mark.{MARKER} takes keyword arguments only "
                                f"({', '.join(_MARKER_KEYS)}), not {mark.args!r}")
    unknown = set(mark.kwargs) - set(_MARKER_KEYS)
    if unknown:
        raise pytest.UsageError(f"{nodeid}: @pytest.mark.{MARKER}: unknown option(s) "
                                f"{', '.join(sorted(unknown))}; known: {', '.join(_MARKER_KEYS)}")


def _marker_options(item: pytest.Item) -> dict:
    """The test's marker options, the closest marker winning (``ignore`` lists add up)."""
    merged: dict = {}
    ignore: list = []
    for mark in item.iter_markers(MARKER):
        _validate(mark, item.nodeid)
        for key, value in mark.kwargs.items():
            if key == "ignore":
                ignore.extend([value] if isinstance(value, str) or callable(value) else value)
            else:
                merged.setdefault(key, value)
    merged["ignore"] = ignore
    return merged


def _asked(item: pytest.Item) -> bool:
    """Whether the test itself asks to be checked (marker or fixture), regardless of the option."""
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        return bool(marker.kwargs.get("check", True))
    return FIXTURE in getattr(item, "fixturenames", ())


def _wanted(item: pytest.Item) -> bool:
    marker = item.get_closest_marker(MARKER)
    if marker is not None and not marker.kwargs.get("check", True):
        return False
    return bool(item.config.getoption(OPTION, False)) or _asked(item)


def _timeout(config: pytest.Config) -> float:
    raw = config.getini(INI_TIMEOUT)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{INI_TIMEOUT} must be a number of seconds, not {raw!r}") from None
    return max(0.0, value)


def _configured_allowances(config: pytest.Config) -> list:
    """The known services and the ini file's ``tasktop_leaks_allow`` and ``tasktop_leaks_ignore``."""
    from .services import SERVICES, from_ignore, parse_allow

    return (list(SERVICES) + parse_allow(config.getini(INI_ALLOW), INI_ALLOW)
            + from_ignore(config.getini(INI_IGNORE), INI_IGNORE))


def _checker(config: pytest.Config) -> "_Checker | None":
    return config.pluginmanager.get_plugin(_PLUGIN_NAME)


def _activate(config: pytest.Config) -> "_Checker":
    checker = _checker(config)
    if checker is None:
        checker = _Checker(config)
        config.pluginmanager.register(checker, _PLUGIN_NAME)
    return checker


# -- process-wide hooks, on while a checker is active ---------------------------------------------
class _Patches:
    """What the plugin changes in the process while it is active, and how it undoes it."""

    def __init__(self) -> None:
        self.thread_sites: "weakref.WeakKeyDictionary[threading.Thread, tuple]" = weakref.WeakKeyDictionary()
        self.on_loop_stop: Callable[[Any], None] | None = None
        self.on_runner_cancel: Callable[[Any], None] | None = None
        self._runners: list = []  # (module, original _cancel_all_tasks, ours)
        self._installed_hooks = False
        self._orig_start: Callable | None = None
        self._start: Callable | None = None
        self._orig_set_running: Callable | None = None
        self._set_running: Callable | None = None
        self._uvloop_init: tuple | None = None  # (uvloop.Loop, our __init__)

    def install(self) -> None:
        from tasktop.probe import hooks
        from asyncio import events
        import asyncio

        if not hooks._active:  # the probe may be running already, with its own settings
            hooks.install(depth=CREATION_DEPTH)
            self._installed_hooks = True
        self._hook_uvloop()

        orig_start = threading.Thread.start
        sites = self.thread_sites

        @functools.wraps(orig_start)
        def start(thread, *args, **kwargs):
            try:
                sites[thread] = _raw_stack(sys._getframe(1), CREATION_DEPTH + 10)
            except Exception:
                pass
            return orig_start(thread, *args, **kwargs)

        threading.Thread.start = start  # type: ignore[method-assign]
        self._orig_start, self._start = orig_start, start

        orig_set_running = events._set_running_loop
        get_running = events._get_running_loop

        def set_running_loop(loop):
            if loop is None and self.on_loop_stop is not None:
                try:
                    stopping = get_running()
                    if stopping is not None:
                        self.on_loop_stop(stopping)
                except Exception:
                    pass
            return orig_set_running(loop)

        events._set_running_loop = set_running_loop
        asyncio._set_running_loop = set_running_loop
        self._orig_set_running, self._set_running = orig_set_running, set_running_loop

        import asyncio.runners  # noqa: F401 - so that it is in sys.modules

        self.patch_runners()

    def _hook_uvloop(self) -> None:
        """Give uvloop loops made from now on the probe's task factory, so that their tasks have
        creation stacks: uvloop calls neither ``BaseEventLoop.__init__`` nor, when it was
        imported before the hooks were in place (by a conftest), their ``_set_running_loop``."""
        from tasktop.probe import hooks

        cls = getattr(sys.modules.get("uvloop"), "Loop", None)
        if not isinstance(cls, type) or "__init__" in vars(cls):
            return  # no uvloop yet (the hooks will see it run), or hooked already
        base_init = cls.__init__

        def __init__(loop, *args, **kwargs):
            base_init(loop, *args, **kwargs)
            if hooks._active:
                try:
                    hooks.note_loop(loop, None)
                except Exception:
                    pass

        try:
            cls.__init__ = __init__
        except (TypeError, AttributeError):
            return
        self._uvloop_init = (cls, __init__)

    def patch_runners(self) -> None:
        """Wrap ``_cancel_all_tasks`` of the runner modules imported by now (idempotent: a
        runner module may be imported late, as anyio imports its backend on first use)."""
        done = {id(module) for module, _orig, _ours in self._runners}
        for name in _RUNNER_MODULES:
            module = sys.modules.get(name)
            orig_cancel = getattr(module, "_cancel_all_tasks", None)
            if orig_cancel is None or id(module) in done:
                continue

            def cancel_all_tasks(loop, _orig=orig_cancel):
                if self.on_runner_cancel is not None:
                    try:
                        self.on_runner_cancel(loop)
                    except Exception:
                        pass
                return _orig(loop)

            module._cancel_all_tasks = cancel_all_tasks
            self._runners.append((module, orig_cancel, cancel_all_tasks))

    def uninstall(self) -> None:
        from asyncio import events
        import asyncio

        self.on_loop_stop = None
        self.on_runner_cancel = None
        for module, orig_cancel, ours in self._runners:
            if getattr(module, "_cancel_all_tasks", None) is ours:
                module._cancel_all_tasks = orig_cancel
        self._runners.clear()
        if self._uvloop_init is not None:
            cls, ours = self._uvloop_init
            if vars(cls).get("__init__") is ours:
                del cls.__init__
            self._uvloop_init = None
        if self._start is not None and threading.Thread.start is self._start:
            threading.Thread.start = self._orig_start  # type: ignore[method-assign]
        if self._set_running is not None:
            for module in (events, asyncio):
                if getattr(module, "_set_running_loop", None) is self._set_running:
                    module._set_running_loop = self._orig_set_running
        if self._installed_hooks:
            from tasktop.probe import hooks, is_running

            if not is_running():  # the probe, started since, keeps its hooks
                hooks.uninstall()
            self._installed_hooks = False


def _raw_stack(frame, limit: int) -> tuple:
    out = []
    while frame is not None and len(out) < limit:
        out.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    return tuple(out)


# -- the state of one process: threads and tasks ---------------------------------------------------
def _live_threads() -> dict:
    """``{ident: Thread or None}`` of every thread running Python code (``None``: no Thread object)."""
    idents = list(sys._current_frames())
    by_ident = {t.ident: t for t in threading.enumerate()}
    return {ident: by_ident.get(ident) for ident in idents}


def _all_tasks() -> set:
    """Every task the process has: those the probe recorded and asyncio's own registry."""
    import asyncio.tasks as asyncio_tasks
    from tasktop.probe import hooks, registry

    found = {info() for info in list(hooks.records)}
    found.discard(None)
    for name in ("_all_tasks", "_scheduled_tasks", "_eager_tasks"):
        tasks = getattr(asyncio_tasks, name, None)
        if tasks is not None:
            found.update(registry.copy_set(tasks))
    return found


def _pending(tasks: Iterable) -> list:
    out = []
    for task in tasks:
        try:
            if not task.done():
                out.append(task)
        except Exception:
            pass
    return out


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


class _Baseline:
    """What existed at one moment: threads by ident and object, pending tasks (held weakly).

    The Thread objects are held: a thread that ends during the test may hand its ident on to
    a new one, and only the object tells them apart.  (A finished Thread holds little: its
    target and arguments are dropped when it ends.)
    """

    def __init__(self, threads: bool, tasks: bool) -> None:
        self.threads: dict = {}  # ident -> the Thread, or None for a thread without one
        self.tasks: "weakref.WeakSet" = weakref.WeakSet()
        if threads:
            self.add_threads(_live_threads())
        if tasks:
            self.tasks.update(_pending(_all_tasks()))

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

    def adopt(self, earlier: "_Baseline", threads: bool, tasks: bool) -> None:
        """Add what appeared since ``earlier`` (what a wider-scoped fixture just created)."""
        if threads:
            live = _live_threads()
            self.add_threads({i: t for i, t in live.items() if not earlier.knows_thread(i, t)})
        if tasks:
            self.tasks.update(t for t in _pending(_all_tasks()) if t not in earlier.tasks)


# -- one test's check ------------------------------------------------------------------------------
#: The checks under way in this process, outermost first.  A test that runs a pytest session of
#: its own in the same process (``pytester``) has the inner session's checks above its own:
#: what an inner test leaves is that test's, reported (or let through) by the inner session.
_under_way: list = []


class LeakCheck:
    """The leak check of one test.  ``ignore`` and ``timeout`` may be changed during the test.

    ``ignore`` holds globs (matched against thread and task names and against the function
    names on their stacks, ``Class.method`` or bare) and callables (given the
    ``threading.Thread`` or ``asyncio.Task``, true to ignore it).  ``allow`` holds the known
    services and the ``tasktop_leaks_allow`` entries (:mod:`pytest_services`).
    """

    def __init__(self, item: pytest.Item, timeout: float, ignore: list, tasks: bool = True,
                 threads: bool = True, runner_cancelled: bool = True, root: str = "",
                 thread_sites: Any = None, allow: Iterable = ()) -> None:
        self.nodeid = item.nodeid
        self.thread_sites = thread_sites if thread_sites is not None else {}
        self.timeout = timeout
        self.ignore = list(ignore)
        self.allow = list(allow)
        self.tasks = tasks
        self.threads = threads
        self.runner_cancelled = runner_cancelled
        self.root = root
        self.skipped = False
        self.baseline: _Baseline | None = None
        self._held: set = set()  # pending tasks of loops that stopped during the test
        self._cancelled: list = []  # (task, row) of tasks a runner cancelled at shutdown
        self._passed: dict = {}  # (kind, allowance) -> {id: name}, found by the last look
        self._passed_cancelled: dict = {}  # the same, of the tasks a runner cancelled
        self._lock = threading.Lock()

    def begin(self) -> None:
        if self.baseline is None:
            self.baseline = _Baseline(self.threads, self.tasks)
            _under_way.append(self)

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

        if self.tasks and self.runner_cancelled and self.innermost():
            left = [t for t in self._new_pending(loop)
                    if not _cancel_requested(t) and not is_harness_task(t)]
            rows = [(task, _describe_task(task, self.root, _SHUTDOWN)) for task in left]
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

        baseline = self.baseline
        if baseline is None:
            return [], []
        allowances = self._allowances()
        passed: dict = {}
        threads = []
        if self.threads:
            me = threading.get_ident()
            for ident, thread in _live_threads().items():
                if ident == me or baseline.knows_thread(ident, thread):
                    continue
                name = thread.name if thread is not None else None
                if name == PROBE_THREAD or (thread is not None and _harness_thread(thread, self.thread_sites)):
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

            candidates = _all_tasks()
            with self._lock:
                candidates |= self._held
            for task in _pending(candidates):
                if task in baseline.tasks or is_harness_task(task):
                    continue
                try:
                    name = task.get_name()
                    codes = [f.f_code for f in tasks_mod.walk(task.get_coro())]
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


def _thread_codes(idents: Iterable) -> dict:
    """``{ident: [code, ...]}``, innermost first, of the threads' stacks now.  The frames are
    let go of at once (see ``threads.current``)."""
    frames = sys._current_frames()
    out = {}
    for ident in idents:
        frame, codes = frames.get(ident), []
        while frame is not None and len(codes) < 128:
            codes.append(frame.f_code)
            frame = frame.f_back
        out[ident] = codes
    frame = None
    frames.clear()
    return out


# -- the report --------------------------------------------------------------------------------
_LIB = re.compile(r"/lib/python3\.\d+/(?:(?:site|dist)-packages/)?")


def _short_path(path: str, root: str) -> str:
    """As ``tasktop dump`` shows it: the module path for the standard library and installed
    packages, relative to the root directory under it, else as it is."""
    found = _LIB.search(path)
    if found:
        return path[found.end():]
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _frames_text(stack: Iterable, root: str) -> tuple:
    from tasktop.probe.frames import func_name

    return tuple(f"{func_name(code)} ({_short_path(code.co_filename, root)}:{line or 0})"
                 for code, line in stack)


def _thread_internal(code) -> bool:
    from tasktop.probe.frames import is_internal

    name = code.co_filename
    return (is_internal(code) or name == threading.__file__
            or os.sep + os.path.join("concurrent", "futures") + os.sep in name)


def _harness_thread(thread: Any, sites: Any) -> bool:
    from .harness import starts_in_harness

    return starts_in_harness(_thread_own_frames(sites.get(thread)))


def _thread_own_frames(raw: tuple | None) -> tuple:
    """A thread's raw creation stack without threading's, concurrent.futures', asyncio's and the
    probe's frames (all of it if that leaves nothing)."""
    if not raw:
        return ()
    return tuple(item for item in raw if not _thread_internal(item[0])) or raw[:1]


def _thread_site(raw: tuple | None) -> tuple | None:
    """The creation stack shown for a thread."""
    from .harness import until_harness

    own = _thread_own_frames(raw)
    return until_harness(own)[:CREATION_DEPTH] if own else None


def _describe_thread(ident: int, thread: Any, sites: Any, root: str) -> dict:
    from tasktop.probe import threads as threads_mod
    from tasktop.probe.frames import frame_stack

    frame = sys._current_frames().get(ident)
    stack = frame_stack(frame) if frame is not None else ()
    del frame
    native_id = getattr(thread, "native_id", None)
    state = threads_mod.classify(stack, threads_mod.kernel_state(native_id)) if stack else "exited"
    name = thread.name if thread is not None else f"<thread {ident}>"
    if thread is not None and thread.daemon:
        state += ", daemon"
    site = _thread_site(sites.get(thread)) if thread is not None else None
    return {"kind": "thread", "name": name, "state": state, "stack": _frames_text(stack, root),
            "site": _frames_text(site, root) if site else None}


def _describe_task(task: Any, root: str, where: str = "") -> dict:
    """What the report says of a task; ``where`` says what became of its loop, found out when
    not given."""
    import asyncio
    from tasktop.probe import hooks, tasks as tasks_mod
    from tasktop.probe.frames import creation_site
    from .harness import until_harness

    try:
        loop = task.get_loop()
    except Exception:
        loop = None
    current = None
    if loop is not None and not where:
        try:
            if loop.is_closed():
                where = "its loop is closed"
            elif not loop.is_running():
                where = "its loop is not running"
            else:
                current = asyncio.current_task(loop)
                ident = getattr(loop, "_thread_id", None)
                names = {t.ident: t.name for t in threading.enumerate()}
                where = f"its loop runs in thread {names.get(ident, ident)}"
        except Exception:
            pass
    try:
        stack, state, _awaiting, _children = tasks_mod.describe(task, current)
    except Exception:
        stack, state = (), "unknown"
    raw = hooks.creation_stack(task)
    site = until_harness(creation_site(raw, CREATION_DEPTH)) if raw else None
    try:
        name = task.get_name()
    except Exception:
        name = repr(task)
    return {"kind": "task", "name": name, "state": f"{state}, {where}" if where else state,
            "stack": _frames_text(stack, root), "site": _frames_text(site, root) if site else None,
            "codes": [code for code, _line in stack]}


def _natural(text: str) -> list:
    """Sort key: ``Task-9`` before ``Task-10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def render(rows: list, timeout: float) -> str:
    """The failure message: a summary line, then the leftovers grouped by kind, state and stack,
    largest group first, each with where its members were created."""
    groups: dict = {}
    for row in rows:
        key = (row["kind"], row["state"], row["stack"])
        group = groups.setdefault(key, {"rows": [], "sites": {}})
        group["rows"].append(row)
        site = row["site"]
        group["sites"][site] = group["sites"].get(site, 0) + 1
    n_threads = sum(1 for r in rows if r["kind"] == "thread")
    n_tasks = len(rows) - n_threads
    parts = []
    if n_threads:
        parts.append(_plural(n_threads, "thread"))
    if n_tasks:
        parts.append(_plural(n_tasks, "asyncio task"))
    still = f" (still there after {timeout:g}s)" if any(not r.get("final") for r in rows) else ""
    lines = [f"tasktop_leaks: the test left {' and '.join(parts)} behind{still}"]
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]["rows"]), kv[0][0], kv[0][1]))
    for (kind, state, stack), group in ordered:
        members = sorted(group["rows"], key=lambda m: _natural(str(m["name"])))
        names = [m["name"] for m in members[:3]]
        more = f", … {len(members) - 3} more" if len(members) > 3 else ""
        lines.append("")
        lines.append(f"{_plural(len(members), kind)}: {state}  [{', '.join(map(str, names))}{more}]")
        lines.extend("    " + frame for frame in stack or ("(no Python frames)",))
        for site, count in sorted(group["sites"].items(), key=lambda kv: -kv[1]):
            if not site:  # asyncio.Task() called directly, _thread.start_new_thread()...
                lines.append(f"  creation site not recorded  ×{count}")
                continue
            lines.append(f"  created by {site[0]}  ×{count}")
            lines.extend("      " + frame for frame in site[1:])
    lines.append("")
    lines.append("Threads and tasks that existed before the test are not counted.")
    lines.append(f"To let some through: @pytest.mark.{MARKER}(ignore=[\"name or function glob\"]), "
                 f"or in every test a line \"glob = reason\" of the {INI_ALLOW} ini option;")
    lines.append(f"to wait longer for them: @pytest.mark.{MARKER}(timeout=seconds) or {INI_TIMEOUT}.")
    if any(r.get("final") for r in rows):
        lines.append(f"Tasks a runner had to cancel count unless runner_cancelled=False "
                     f"(or {INI_RUNNER} = false).")
    return "\n".join(lines)


# -- the active plugin -----------------------------------------------------------------------------
class _Checker:
    """Registered only when some test is to be checked; holds the process-wide hooks."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.timeout = _timeout(config)
        self.allow = _configured_allowances(config)
        self.runner_cancelled = bool(config.getini(INI_RUNNER))
        self.root = str(getattr(config, "rootpath", None) or config.rootdir)
        self.checks: dict = {}  # item -> LeakCheck
        self.errors: dict = {}  # item -> what went wrong taking its baseline
        self.notes: dict = {}  # item -> what its check let through, for its teardown report
        self.current: LeakCheck | None = None
        self.patches = _Patches()
        self.patches.install()
        self.patches.on_loop_stop = self._loop_stopped
        self.patches.on_runner_cancel = self._runner_cancels

    def close(self) -> None:
        self._forget()
        self.patches.uninstall()

    def _loop_stopped(self, loop: Any) -> None:
        check = self.current
        if check is not None:
            check.hold_pending(loop)

    def _runner_cancels(self, loop: Any) -> None:
        check = self.current
        if check is not None:
            check.runner_cancels(loop)

    def check_for(self, item: pytest.Item) -> LeakCheck:
        """The item's check, created and begun (its baseline taken) if it was not yet; a test
        marked ``check=False`` gets one that never begins."""
        check = self.checks.get(item)
        if check is None:
            options = _marker_options(item)
            timeout = options.get("timeout")
            check = LeakCheck(
                item,
                timeout=self.timeout if timeout is None else max(0.0, float(timeout)),
                ignore=options["ignore"],
                tasks=bool(options.get("tasks", True)),
                threads=bool(options.get("threads", True)),
                runner_cancelled=bool(options.get("runner_cancelled", self.runner_cancelled)),
                root=self.root,
                thread_sites=self.patches.thread_sites,
                allow=self.allow,
            )
            self.checks[item] = check
            self.current = check
            if options.get("check", True):
                check.begin()
        return check

    def _forget(self) -> None:
        for check in self.checks.values():
            check.end()
        self.checks.clear()
        self.errors.clear()
        self.current = None

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item):
        # Nothing may raise here, before the other plugins' set-up: a failure is kept and
        # reported by this test's teardown instead.
        self._forget()  # a check whose teardown never came (an error in pytest's own teardown)
        self.notes.clear()
        try:
            if _wanted(item):
                self.check_for(item)
        except Exception as exc:
            self.errors[item] = exc
        yield
        self.patches.patch_runners()  # a runner module its fixtures imported

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        yield
        self.patches.patch_runners()  # a runner module the test imported

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any):
        check = self.current
        if check is None or check.baseline is None or fixturedef.scope == "function":
            yield
            return
        before = _Baseline(check.threads, check.tasks)
        yield
        check.baseline.adopt(before, check.threads, check.tasks)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any):
        outcome = yield
        if call.when == "teardown":
            notes = self.notes.pop(item, None)
            if notes:  # shown under a failure, and listed by the terminal summary with -v
                outcome.get_result().sections.append((NOTES_SECTION, "\n".join(notes)))
            return
        check = self.checks.get(item)
        if check is None:
            return
        if not outcome.get_result().passed:
            check.skipped = True

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: Any) -> None:
        # trylast: after pytest's own implementation has torn the test's fixtures down.
        check = self.checks.get(item)
        error = self.errors.get(item)
        try:
            if error is not None:
                raise error
            if check is None or check.skipped or check.baseline is None:
                return
            threads, tasks = check.wait()
            rows = [_describe_thread(ident, thread, self.patches.thread_sites, self.root)
                    for ident, thread in threads]
            rows += [_describe_task(task, self.root) for task in tasks]
            rows += check.cancelled_rows(tasks)
            del threads, tasks
            self.notes[item] = check.notes()
            if not rows:
                return
        finally:
            self._forget()
        pytest.fail(render(rows, check.timeout), pytrace=False)
