"""The active leak checker: the pytest hooks that take each checked test's baseline, widen it
with what wider-scoped fixtures create, and fail the test's teardown for what it left behind.

Registered only once some test is to be checked (:func:`plugin.activate`); it owns the
process-wide patches (:mod:`patches`) for the rest of the session.
"""
from __future__ import annotations

from typing import Any

import pytest

from .baseline import Baseline
from .leak_check import LeakCheck
from .leftovers import describe_task, describe_thread
from .options import INI_RUNNER, NOTES_SECTION, configured_allowances, marker_options, timeout_of, wanted
from .patches import Patches
from .report import render, render_lost


class Checker:
    """Registered only when some test is to be checked; holds the process-wide hooks."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.timeout = timeout_of(config)
        self.allow = configured_allowances(config)
        self.runner_cancelled = bool(config.getini(INI_RUNNER))
        # The report's paths are relative to pytest's root directory, as its node ids are.
        self.root = str(getattr(config, "rootpath", None) or config.rootdir)
        self.checks: dict = {}  # item -> LeakCheck
        self.errors: dict = {}  # item -> what went wrong taking its baseline
        self.notes: dict = {}  # item -> what its check let through, for its teardown report
        self.current: LeakCheck | None = None
        self.patches = Patches()
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
            options = marker_options(item)
            timeout = options.get("timeout")
            check = LeakCheck(
                item,
                timeout=self.timeout if timeout is None else max(0.0, float(timeout)),
                ignore=options["ignore"],
                tasks=bool(options.get("tasks", True)),
                threads=bool(options.get("threads", True)),
                runner_cancelled=bool(options.get("runner_cancelled", self.runner_cancelled)),
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
            if wanted(item):
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
        before = Baseline(check.threads, check.tasks)
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
            rows = [describe_thread(ident, thread, self.patches.thread_sites)
                    for ident, thread in threads]
            rows += [describe_task(task) for task in tasks]
            rows += check.cancelled_rows(tasks)
            del threads, tasks
            lost = check.lost()
            self.notes[item] = check.notes()
            if not rows and not lost:
                return
        finally:
            self._forget()
        message = render(rows, check.timeout, self.root) if rows else ""
        if lost:
            message = (message + "\n\n" if message else "") + render_lost(lost, self.root)
        pytest.fail(message, pytrace=False)
