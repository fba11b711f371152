"""The test harness's own tasks and threads, for the leak-checking pytest plugin.

What runs a test is not the test's leftover.  An async test runs inside a runner that a pytest
plugin owns: pytest-asyncio's ``asyncio.Runner`` makes one task per test and fixture, and those
end with them; anyio's ``TestRunner`` keeps one task alive on its loop for as long as the runner
lives (``_run_tests_and_fixtures``, parked on a memory stream between the tests and fixtures it
runs).  That task belongs to the runner, never to the test that happened to open the runner,
nor to an outer test whose nested pytest session (``pytester``, hypothesis's examples) opened
and closed runners of its own.

A harness task is known by identity: by the runner coroutine the task runs (its await chain
holds the frame of a runner's own coroutine method), never by where it was created.  Creation
stacks are missing on loops the probe's hooks never saw (uvloop loops made before the plugin
started) and change with eager tasks and with an application's task factory (which may wrap
the coroutine: the whole chain is looked at, not only its outer frame); the coroutine a runner
task runs is the same in every one of these cases, on every session of the process.

Threads are different: the plugin records where every thread is started itself
(``Thread.start``), so a thread whose creation stack begins in pytest, pluggy or a runner plugin
is the harness's, whichever loop or session is involved.

The harness's modules are looked up in ``sys.modules``, never imported.
"""
from __future__ import annotations

import os
import sys
from typing import Any

#: Where the test harness's frames come from: creation stacks are cut at the first of them, and
#: a thread whose creation stack starts in one is the harness's.
HARNESS = ("_pytest", "pluggy", "pytest_asyncio", "anyio.pytest_plugin")

#: Test runners that keep a task of their own alive between the tests they run: (module,
#: class).  Their methods are the harness's: a task running one (``_run_tests_and_fixtures``) is
#: the runner's, and a creation stack is cut where one begins.
RUNNERS = (("anyio._backends._asyncio", "TestRunner"),)

_codes: frozenset = frozenset()
_modules_seen = -1  # len(sys.modules) when _codes was found


def harness_dirs() -> tuple:
    """Path prefixes of the ``HARNESS`` modules that are loaded (a package: its directory)."""
    found = []
    for name in HARNESS:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            path = os.path.abspath(path)
            found.append(os.path.dirname(path) + os.sep if path.endswith("__init__.py") else path)
    return tuple(found)


def until_harness(site: tuple | None) -> tuple | None:
    """A creation stack cut where the test harness begins (its modules, a runner's methods): the
    test function (or the fixture) is the last frame worth showing."""
    if not site:
        return site
    harness, runners = harness_dirs(), runner_codes()
    for index, (code, _line) in enumerate(site):
        if code.co_filename.startswith(harness) or code in runners:
            return site[:index] or site[:1]
    return site


def starts_in_harness(site: tuple | None) -> bool:
    """Whether a thread's creation stack (threading's own frames dropped) begins in the harness."""
    return bool(site) and site[0][0].co_filename.startswith(harness_dirs())


def runner_codes() -> frozenset:
    """Code objects of the ``RUNNERS``' methods, looked for again only when ``sys.modules``
    has grown (a runner's module is imported when its first test runs)."""
    global _codes, _modules_seen
    seen = len(sys.modules)
    if seen != _modules_seen:
        _modules_seen = seen
        found = set()
        for module_name, class_name in RUNNERS:
            cls = getattr(sys.modules.get(module_name), class_name, None)
            for value in vars(cls).values() if isinstance(cls, type) else ():
                code = getattr(getattr(value, "__func__", value), "__code__", None)
                if code is not None:
                    found.add(code)
        _codes = frozenset(found)
    return _codes


def is_harness_task(task: Any) -> bool:
    """Whether ``task`` is a test runner's own task: its await chain is in a runner's method."""
    codes = runner_codes()
    if not codes:
        return False
    from tasktop.probe.tasks import chain_codes

    try:
        return any(code in codes for code in chain_codes(task.get_coro()))
    except Exception:
        return False
