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
(:mod:`harness`).  Known library services (anyio's process-pool shutdown task, a loop's
idle default-executor workers...) are let through with a reason, and so is whatever the
``tasktop_leaks_allow`` lines and ``ignore`` patterns match (:mod:`services`); the
teardown report notes what was, and ``pytest -v`` lists the notes at the end.

A test may run a pytest session of its own in this process (``pytester``).  While a test of
that inner session is checked, what happens is that test's: the outer check does not record
it, and when the inner check ends, what its test left joins the outer check's baseline.

A test whose setup or call already failed (or was skipped or xfailed) is not checked: its
failure is the news, and what it left behind is ignored by the next test like anything else
that existed before it.

This module is the entry point and only declares things; the rest is loaded once a test is to
be checked.  ``options``: the option, ini settings and marker; ``patches``: what is changed in
the process while active; ``checker``: the pytest hooks of the active check; ``baseline``: what
existed before a test; ``leak_check``: what counts as left behind, and the wait; ``harness``,
``services`` and ``thread_sites``: what is let through, and why; ``leftovers``: the row of each
leftover; ``report``: the failure message.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .options import MARKER, NOTES_SECTION, OPTION, add_marker, add_options, asked, validate

if TYPE_CHECKING:
    from .checker import Checker
    from .leak_check import LeakCheck

#: The name the active checker is registered under, so that a session has at most one.
_PLUGIN_NAME = "tasktop-leaks-checker"


# -- pytest hooks that are always there: they only declare things --------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    add_marker(config)
    if config.getoption(OPTION, False):
        activate(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    wanted = False
    for item in items:
        for mark in item.iter_markers(MARKER):
            validate(mark, item.nodeid)  # a misspelt option is an error of the whole run
        wanted = wanted or asked(item)
    if wanted and checker_of(config) is None:
        activate(config)


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
    checker = checker_of(config)
    if checker is not None:
        config.pluginmanager.unregister(checker, _PLUGIN_NAME)
        checker.close()


@pytest.fixture
def tasktop_leaks(request: pytest.FixtureRequest) -> "LeakCheck":
    """Fail this test if it leaves asyncio tasks or threads behind.

    Returns the test's :class:`~tasktop.pytest_plugin.leak_check.LeakCheck`: append to its
    ``ignore`` list or change its ``timeout`` during the test.  Requested as an argument, the
    baseline is taken before any fixture is set up; through ``request.getfixturevalue`` only
    from then on.
    """
    return activate(request.config).check_for(request.node)


# -- the checker, registered once a test is to be checked ------------------------------------------
def checker_of(config: pytest.Config) -> "Checker | None":
    """The session's active checker, if some test was to be checked."""
    return config.pluginmanager.get_plugin(_PLUGIN_NAME)


def activate(config: pytest.Config) -> "Checker":
    """The session's checker, registered (and the process hooked) on first use."""
    from .checker import Checker  # only now: an idle plugin hooks and imports nothing more

    checker = checker_of(config)
    if checker is None:
        checker = Checker(config)
        config.pluginmanager.register(checker, _PLUGIN_NAME)
    return checker


def __getattr__(name: str) -> Any:
    """``LeakCheck``, the fixture's value, still importable from here without loading it idle."""
    if name == "LeakCheck":
        from .leak_check import LeakCheck

        return LeakCheck
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
