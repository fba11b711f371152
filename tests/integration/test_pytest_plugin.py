"""The leak-checking pytest plugin, run on real test files in subprocesses with ``pytester``.

Each test writes a small test module, runs pytest on it in a fresh interpreter (the checked
tests start threads and event loops; a subprocess keeps them out of this one) and reads what
pytest reported.  Leftover threads wait on events that nobody sets, so no test here depends
on timing, except the one that is about a slow shutdown finishing within the retry window.
"""
from __future__ import annotations

import sys
import textwrap
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "tasktop.pytest_plugin.plugin"


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs below load no installed plugin but this one (``-p``): faster, and the same
    whether or not the entry point is installed."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


# Helpers the test modules share: a thread that stays until told, a task that never ends.
HELPERS = '''
import asyncio
import threading

forever = threading.Event()


def worker(stop):
    stop.wait()


def start_worker(stop=forever, name="worker-1"):
    thread = threading.Thread(target=worker, args=(stop,), name=name, daemon=True)
    thread.start()
    return thread


async def ticker():
    while True:
        await asyncio.sleep(3600)


def leave_task_on_open_loop():
    loop = asyncio.new_event_loop()
    loop.create_task(ticker())
    loop.run_until_complete(asyncio.sleep(0))


def loop_thread(ready):
    loop = asyncio.new_event_loop()

    async def spawn():
        loop.create_task(ticker(), name="bg-ticker")
        ready.set()

    loop.create_task(spawn())
    loop.run_forever()


def start_loop_thread():
    ready = threading.Event()
    threading.Thread(target=loop_thread, args=(ready,), name="bg-loop", daemon=True).start()
    ready.wait()
'''


def run(pytester: pytest.Pytester, source: str, *args: str, timeout: str | None = "0.2") -> pytest.RunResult:
    """pytest on ``source`` (as ``test_target.py``, beside ``helpers.py``), in a subprocess.

    Leftovers get ``timeout`` seconds (short: the tests below leak for good or not at all),
    unless it is None (the test's ini file says).
    """
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(test_target=textwrap.dedent(source).strip("\n") + "\n")
    options = ["-o", f"tasktop_leaks_timeout={timeout}"] if timeout is not None else []
    return pytester.runpytest_subprocess("-p", PLUGIN, "-p", "no:cacheprovider", "-rA", *options,
                                         *args, timeout=120)


def line(source: str, fragment: str) -> int:
    """The line number of ``fragment`` in the test module ``run`` writes from ``source``."""
    lines = textwrap.dedent(source).strip("\n").splitlines()
    return next(n for n, text in enumerate(lines, 1) if fragment in text)


def outcomes(result: pytest.RunResult) -> dict:
    """``{test name: [outcomes]}`` of ``test_target.py`` from the ``-rA`` summary (a test can
    pass *and* error; a nested session's summary, in captured output, is left out)."""
    found: dict = {}
    for line in result.outlines:
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS") and rest.startswith("test_target.py::"):
            name = rest.split(" ", 1)[0].rsplit("::", 1)[1]
            found.setdefault(name, []).append(word)
    return found


def test_a_leaked_thread_fails_the_test_naming_where_it_was_started(pytester):
    source = """
        from helpers import start_worker

        def start_pool():
            start_worker()

        def test_leaks_a_thread():
            start_pool()
    """
    result = run(pytester, source, "--tasktop-leaks")
    assert outcomes(result) == {"test_leaks_a_thread": ["PASSED", "ERROR"]}
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_leaks_a_thread*",
        "tasktop_leaks: the test left 1 thread behind (still there after *s)",
        "",
        "1 thread: Event.wait, daemon  ?worker-1?",
        "    *wait (threading.py:*)",  # Condition.wait: the class shows from 3.11 on
        "    *wait (threading.py:*)",
        "    worker (helpers.py:*)",
        "*",
        "  created by start_worker (helpers.py:*)  ×1",
        f"      start_pool (test_target.py:{line(source, 'start_worker()')})",
        f"      test_leaks_a_thread (test_target.py:{line(source, '    start_pool()')})",
        "",
        "Threads and tasks that existed before the test are not counted.",
    ])
    # pytest's own frames are cut off the creation stack; the summary line names the test.
    assert "_pytest/" not in result.stdout.str() and "pluggy/" not in result.stdout.str()
    result.stdout.fnmatch_lines(["ERROR test_target.py::test_leaks_a_thread - Failed: tasktop_leaks: *"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_task_left_on_an_open_or_closed_loop_fails_with_its_creation_site(pytester):
    source = """
        import asyncio
        import gc
        from helpers import leave_task_on_open_loop, ticker

        def test_open_loop():
            leave_task_on_open_loop()
            # Nothing refers to that loop any more: a collection would reclaim loop and task
            # (asyncio: "Task was destroyed but it is pending!"), but the plugin held the task
            # when its loop stopped.
            gc.collect()

        def make_on_closed_loop():
            loop = asyncio.new_event_loop()
            loop.create_task(ticker(), name="on-closed")
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        def test_closed_loop():
            make_on_closed_loop()
    """
    result = run(pytester, source, "--tasktop-leaks")
    assert outcomes(result) == {"test_open_loop": ["PASSED", "ERROR"],
                                "test_closed_loop": ["PASSED", "ERROR"]}
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_open_loop*",
        "tasktop_leaks: the test left 1 asyncio task behind (still there after *s)",
        "1 task: sleep, its loop is not running  ?Task-*?",
        "    sleep (asyncio/tasks.py:*)",
        "    ticker (helpers.py:*)",
        "  created by leave_task_on_open_loop (helpers.py:*)  ×1",
        f"      test_open_loop (test_target.py:{line(source, '    leave_task_on_open_loop()')})",
        "*ERROR at teardown of test_closed_loop*",
        "1 task: sleep, its loop is closed  ?on-closed?",
        "    sleep (asyncio/tasks.py:*)",
        "    ticker (helpers.py:*)",
        f"  created by make_on_closed_loop (test_target.py:{line(source, 'on-closed')})  ×1",
        f"      test_closed_loop (test_target.py:{line(source, '    make_on_closed_loop()')})",
    ])


def test_a_task_asyncio_run_had_to_cancel_was_left_behind(pytester):
    source = """
        import asyncio
        import pytest
        from helpers import ticker

        async def main():
            asyncio.create_task(ticker(), name="forgotten")
            await asyncio.sleep(0)

        def test_run():
            asyncio.run(main())

        @pytest.mark.tasktop_leaks(runner_cancelled=False)
        def test_run_relying_on_its_clean_up():
            asyncio.run(main())
    """
    result = run(pytester, source, "--tasktop-leaks")
    assert outcomes(result) == {"test_run": ["PASSED", "ERROR"],
                                "test_run_relying_on_its_clean_up": ["PASSED"]}
    result.stdout.fnmatch_lines([
        "tasktop_leaks: the test left 1 asyncio task behind",
        "",
        "1 task: sleep, cancelled when its runner shut the loop down (asyncio.run, asyncio.Runner)"
        "  ?forgotten?",
        "    sleep (asyncio/tasks.py:*)",
        "    ticker (helpers.py:*)",
        f"  created by main (test_target.py:{line(source, 'forgotten')})  ×1",
        f"      test_run (test_target.py:{line(source, '    asyncio.run(main())')})",
        "*",
        "Tasks a runner had to cancel count unless runner_cancelled=False "
        "(or tasktop_leaks_runner_cancelled = false).",
    ])
    pytester.makeini("[pytest]\ntasktop_leaks_runner_cancelled = false\n")
    result = run(pytester, source, "--tasktop-leaks")
    result.assert_outcomes(passed=2)


def test_a_loop_thread_and_its_task_are_both_reported(pytester):
    source = """
        from helpers import start_loop_thread

        def test_loop_in_a_thread():
            start_loop_thread()
    """
    result = run(pytester, source, "--tasktop-leaks")
    assert outcomes(result) == {"test_loop_in_a_thread": ["PASSED", "ERROR"]}
    result.stdout.fnmatch_lines([
        "tasktop_leaks: the test left 1 thread and 1 asyncio task behind (still there after *s)",
    ])
    result.stdout.fnmatch_lines([
        "1 task: sleep, its loop runs in thread bg-loop  ?bg-ticker?",
        "    sleep (asyncio/tasks.py:*)",
        "    ticker (helpers.py:*)",
        "  created by *spawn (helpers.py:*)  ×1",  # loop_thread.<locals>.spawn from 3.11 on
        "      loop_thread (helpers.py:*)",
    ])
    result.stdout.fnmatch_lines([
        "1 thread: idle loop, daemon  ?bg-loop?",
        "*",
        "*run_forever (asyncio/base_events.py:*)",
        "    loop_thread (helpers.py:*)",
        "*",
        "  created by start_loop_thread (helpers.py:*)  ×1",
        f"      test_loop_in_a_thread (test_target.py:{line(source, '    start_loop_thread()')})",
    ])


def test_tests_that_clean_up_pass_without_waiting(pytester):
    pytester.makeini("[pytest]\ntasktop_leaks_timeout = 60\n")
    result = run(pytester, """
        import asyncio
        import threading
        from concurrent.futures import ThreadPoolExecutor
        from helpers import start_worker, ticker

        def test_joined_thread():
            stop = threading.Event()
            thread = start_worker(stop)
            stop.set()
            thread.join()

        def test_asyncio_run_with_tasks_cancelled_and_an_executor():
            async def main():
                task = asyncio.create_task(ticker())
                await asyncio.get_running_loop().run_in_executor(None, sum, [1, 2])
                await asyncio.sleep(0)
                task.cancel()  # asked, not yet done: asyncio.run's clean-up finishes it
            asyncio.run(main())

        def test_executor_shut_down():
            with ThreadPoolExecutor(4) as pool:
                assert list(pool.map(abs, [-1, -2])) == [1, 2]

        def test_loop_closed_after_cancelling():
            loop = asyncio.new_event_loop()
            task = loop.create_task(ticker())
            loop.run_until_complete(asyncio.sleep(0))
            task.cancel()
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            loop.close()
    """, "--tasktop-leaks", timeout=None)
    result.assert_outcomes(passed=4)
    assert result.duration < 30  # nothing waited for the 60 s timeout


def test_a_thread_that_finishes_within_the_retry_window_passes(pytester):
    pytester.makeini("[pytest]\ntasktop_leaks_timeout = 30\n")
    result = run(pytester, """
        import asyncio
        import threading
        import time
        import pytest
        from helpers import start_worker

        def slow_shutdown():
            time.sleep(0.3)  # a thread that takes a while to wind down

        def test_slow_thread():
            threading.Thread(target=slow_shutdown).start()

        async def winding_down():
            await asyncio.sleep(0.3)

        def run_loop(started):
            loop = asyncio.new_event_loop()
            task = loop.create_task(winding_down())
            loop.call_soon(started.set)
            loop.run_until_complete(task)
            loop.close()

        def test_slow_task_in_a_loop_thread():
            started = threading.Event()
            threading.Thread(target=run_loop, args=(started,)).start()
            started.wait()

        @pytest.mark.tasktop_leaks(timeout=0.1)
        def test_gives_up_after_its_timeout():
            start_worker()
    """, "--tasktop-leaks", timeout=None)
    assert outcomes(result) == {"test_slow_thread": ["PASSED"],
                                "test_slow_task_in_a_loop_thread": ["PASSED"],
                                "test_gives_up_after_its_timeout": ["PASSED", "ERROR"]}
    result.stdout.fnmatch_lines(["tasktop_leaks: the test left 1 thread behind (still there after 0.1s)"])


def test_what_existed_before_the_test_is_ignored(pytester):
    result = run(pytester, """
        import pytest
        from helpers import leave_task_on_open_loop, start_loop_thread, start_worker

        start_worker(name="at-import")    # before any test
        leave_task_on_open_loop()

        @pytest.fixture(scope="session")
        def server():
            start_worker(name="session-server")
            start_loop_thread()  # a thread and a task, kept for the session
            yield

        def test_first_leaks():
            start_worker(name="first")

        def test_second_is_clean():
            pass

        def test_uses_the_session_server(server):
            pass

        def test_after_the_session_server_started(server):
            pass
    """, "--tasktop-leaks")
    assert outcomes(result) == {"test_first_leaks": ["PASSED", "ERROR"],
                                "test_second_is_clean": ["PASSED"],
                                "test_uses_the_session_server": ["PASSED"],
                                "test_after_the_session_server_started": ["PASSED"]}
    result.stdout.fnmatch_lines(["1 thread: Event.wait, daemon  ?first?"])
    for name in ("at-import", "session-server", "bg-loop", "bg-ticker"):
        assert name not in result.stdout.str()


def test_a_function_fixture_must_clean_up_in_its_teardown(pytester):
    source = """
        import threading
        import pytest
        from helpers import start_worker

        @pytest.fixture
        def tidy():
            stop = threading.Event()
            thread = start_worker(stop, name="tidy")
            yield
            stop.set()
            thread.join()

        @pytest.fixture
        def sloppy():
            start_worker(name="sloppy")
            yield

        def test_tidy(tidy):
            pass

        def test_sloppy(sloppy):
            pass
    """
    result = run(pytester, source, "--tasktop-leaks")
    assert outcomes(result) == {"test_tidy": ["PASSED"], "test_sloppy": ["PASSED", "ERROR"]}
    started = line(source, 'start_worker(name="sloppy")')
    result.stdout.fnmatch_lines(["1 thread: Event.wait, daemon  ?sloppy?", "*created by start_worker*",
                                 f"      sloppy (test_target.py:{started})"])


def test_nothing_is_checked_or_hooked_unless_asked(pytester):
    result = run(pytester, """
        import sys
        import threading
        from helpers import leave_task_on_open_loop, start_worker

        def test_leaks_unchecked():
            start_worker()
            leave_task_on_open_loop()

        def test_nothing_was_hooked():
            assert "tasktop.probe.hooks" not in sys.modules
            assert "tasktop.pytest_plugin.plugin" in sys.modules  # loaded, idle
            assert threading.Thread.start.__code__.co_filename == threading.__file__
    """)
    result.assert_outcomes(passed=2)
    help_text = pytester.runpytest_subprocess("-p", PLUGIN, "--help").stdout.str()
    assert "--tasktop-leaks" in help_text and "tasktop_leaks_timeout" in help_text


def test_what_it_changed_is_undone_when_the_session_ends(pytester):
    result = run(pytester, """
        import atexit, gc, sys, threading

        def report():  # after pytest's end, the plugin's undoing included
            hooks = sys.modules["tasktop.probe.hooks"]
            print("after the session:", hooks._on_collection in gc.callbacks,
                  threading.Thread.start.__code__.co_filename == threading.__file__)

        atexit.register(report)

        def test_hooked():
            from tasktop.probe import hooks
            assert hooks._on_collection in gc.callbacks
            assert threading.Thread.start.__code__.co_filename != threading.__file__
    """, "--tasktop-leaks")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["after the session: False True"])


def test_the_marker_checks_only_the_tests_it_marks(pytester):
    result = run(pytester, """
        import pytest
        from helpers import start_worker

        def test_unmarked():
            start_worker(name="unmarked")

        @pytest.mark.tasktop_leaks
        def test_marked():
            start_worker(name="marked")

        @pytest.mark.tasktop_leaks
        class TestMarkedClass:
            def test_in_class(self):
                start_worker(name="in-class")

            @pytest.mark.tasktop_leaks(check=False)
            def test_exempt(self):
                start_worker(name="exempt")
    """)
    assert outcomes(result) == {"test_unmarked": ["PASSED"],
                                "test_marked": ["PASSED", "ERROR"],
                                "test_in_class": ["PASSED", "ERROR"],
                                "test_exempt": ["PASSED"]}
    assert "[unmarked]" not in result.stdout.str() and "[exempt]" not in result.stdout.str()


def test_marker_options(pytester):
    result = run(pytester, """
        import pytest
        from helpers import leave_task_on_open_loop, start_worker

        def not_mine(obj):
            return getattr(obj, "name", "") == "by-callable"

        @pytest.mark.tasktop_leaks(ignore=["pool-*"])
        def test_ignore_by_name():
            start_worker(name="pool-7")

        @pytest.mark.tasktop_leaks(ignore="worker")
        def test_ignore_by_function_on_the_stack():
            start_worker(name="anything")

        @pytest.mark.tasktop_leaks(ignore=[not_mine])
        def test_ignore_by_callable():
            start_worker(name="by-callable")

        @pytest.mark.tasktop_leaks(ignore=["ticker"])
        def test_ignore_a_task_by_its_coroutine():
            leave_task_on_open_loop()

        @pytest.mark.tasktop_leaks(threads=False)
        def test_tasks_only():
            start_worker(name="not-counted")
            leave_task_on_open_loop()

        @pytest.mark.tasktop_leaks(tasks=False)
        def test_threads_only():
            leave_task_on_open_loop()
    """, "--tasktop-leaks")
    assert outcomes(result) == {"test_ignore_by_name": ["PASSED"],
                                "test_ignore_by_function_on_the_stack": ["PASSED"],
                                "test_ignore_by_callable": ["PASSED"],
                                "test_ignore_a_task_by_its_coroutine": ["PASSED"],
                                "test_tasks_only": ["PASSED", "ERROR"],
                                "test_threads_only": ["PASSED"]}
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_tasks_only*",
                                 "tasktop_leaks: the test left 1 asyncio task behind*"])


def test_a_misspelt_marker_option_is_a_usage_error(pytester):
    result = run(pytester, """
        import pytest

        @pytest.mark.tasktop_leaks(timout=2)
        def test_typo():
            pass
    """)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_typo: @pytest.mark.tasktop_leaks: unknown option(s) timout; "
                                 "known: ignore, timeout, tasks, threads, runner_cancelled, check"])


def test_the_fixture_checks_its_test_and_can_be_told_what_to_ignore(pytester):
    result = run(pytester, """
        from helpers import start_worker

        def test_with_fixture(tasktop_leaks):
            start_worker(name="with-fixture")

        def test_fixture_ignore(tasktop_leaks):
            tasktop_leaks.ignore.append("allowed")
            start_worker(name="allowed")

        def test_without_fixture():
            start_worker(name="without")
    """)
    assert outcomes(result) == {"test_with_fixture": ["PASSED", "ERROR"],
                                "test_fixture_ignore": ["PASSED"],
                                "test_without_fixture": ["PASSED"]}
    result.stdout.fnmatch_lines(["1 thread: Event.wait, daemon  ?with-fixture?"])


def test_the_option_checks_every_test_and_ini_settings_apply(pytester):
    pytester.makeini("[pytest]\ntasktop_leaks_timeout = 0.2\ntasktop_leaks_ignore =\n    keep-*\n")
    result = run(pytester, """
        from helpers import leave_task_on_open_loop, start_worker

        def test_one():
            start_worker(name="one")

        def test_two():
            leave_task_on_open_loop()

        def test_three():
            start_worker(name="three")

        def test_ignored_by_ini():
            start_worker(name="keep-me")
    """, "--tasktop-leaks", timeout=None)
    assert outcomes(result) == {"test_one": ["PASSED", "ERROR"], "test_two": ["PASSED", "ERROR"],
                                "test_three": ["PASSED", "ERROR"], "test_ignored_by_ini": ["PASSED"]}
    result.stdout.fnmatch_lines(["*still there after 0.2s*"])


def test_a_failing_test_is_not_also_reported_for_its_leftovers(pytester):
    result = run(pytester, """
        import pytest
        from helpers import start_worker

        def test_fails():
            start_worker(name="after-failure")
            assert False, "the real failure"

        @pytest.mark.xfail(strict=True)
        def test_xfails():
            start_worker(name="after-xfail")
            assert False
    """, "--tasktop-leaks")
    assert outcomes(result) == {"test_fails": ["FAILED"], "test_xfails": ["XFAIL"]}
    assert "tasktop_leaks:" not in result.stdout.str()


def test_many_leftovers_are_grouped(pytester):
    source = """
        import asyncio
        from helpers import start_worker, ticker

        def test_many():
            for n in range(5):
                start_worker(name=f"w{n}")
            loop = asyncio.new_event_loop()
            for _ in range(20):
                loop.create_task(ticker())
            loop.run_until_complete(asyncio.sleep(0))
    """
    result = run(pytester, source, "--tasktop-leaks")
    result.stdout.fnmatch_lines([
        "tasktop_leaks: the test left 5 threads and 20 asyncio tasks behind*",
        "20 tasks: sleep, its loop is not running  ?Task-*, Task-*, Task-*, … 17 more?",
        "*",
        f"  created by test_many (test_target.py:{line(source, 'create_task')})  ×20",
        "",
        "5 threads: Event.wait, daemon  ?w0, w1, w2, … 2 more?",  # names in natural order
    ])


def test_report_paths_are_relative_to_the_root_directory(pytester, monkeypatch):
    """Run from a subdirectory of pytest's root directory, the report still names files from
    the root, where node ids are counted from (``tasktop dump`` names them from the current
    directory)."""
    source = """
        from helpers import start_worker

        def test_leaks():
            start_worker()
    """
    pytester.makeini("[pytest]\n")
    sub = pytester.mkdir("sub")
    (sub / "helpers.py").write_text(HELPERS)
    (sub / "test_target.py").write_text(textwrap.dedent(source).strip("\n") + "\n")
    monkeypatch.chdir(sub)
    result = pytester.runpytest_subprocess("-p", PLUGIN, "-p", "no:cacheprovider", "--tasktop-leaks",
                                           "-o", "tasktop_leaks_timeout=0.2", "test_target.py", timeout=120)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "    worker (sub/helpers.py:*)",
        "  created by start_worker (sub/helpers.py:*)  ×1",
        f"      test_leaks (sub/test_target.py:{line(source, '    start_worker()')})",
    ])


def test_pytest_asyncio_tests(pytester):
    pytest.importorskip("pytest_asyncio")
    source = """
        import asyncio
        import pytest
        from helpers import ticker

        @pytest.mark.asyncio
        async def test_clean():
            task = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            task.cancel()

        @pytest.mark.asyncio
        async def test_leaks_a_task():
            asyncio.get_running_loop().create_task(ticker(), name="left")
            await asyncio.sleep(0)
    """
    result = run(pytester, source, "--tasktop-leaks", "-p", "pytest_asyncio.plugin",
                 "-o", "asyncio_default_fixture_loop_scope=function")
    assert outcomes(result) == {"test_clean": ["PASSED"], "test_leaks_a_task": ["PASSED", "ERROR"]}
    # pytest-asyncio's runner cancels what a test leaves on its loop: that is reported.
    created = line(source, 'name="left"')
    result.stdout.fnmatch_lines([
        "1 task: sleep, cancelled when its runner shut the loop down * ?left?",
        "*ticker (helpers.py:*)",
        f"  created by test_leaks_a_task (test_target.py:{created})  ×1",
        "",
    ])


def test_registered_through_its_entry_point_and_idle(pytester, monkeypatch):
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    # (Read from the installed metadata: a nested `pytest --help` costs seconds of CPU.)
    found = entry_points()
    pytest11 = found.select(group="pytest11") if hasattr(found, "select") else found.get("pytest11", ())
    if not any(point.value.startswith("tasktop.") for point in pytest11):
        pytest.skip("the pytest11 entry point is not installed")
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile(test_target="""
        import sys
        from helpers import start_worker

        def test_leaks():
            start_worker()

        def test_idle():
            assert "tasktop.pytest_plugin.plugin" in sys.modules
            assert "tasktop.probe.hooks" not in sys.modules
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tasktop-leaks", "-k", "leaks",
                                           "-o", "tasktop_leaks_timeout=0.2", timeout=120)
    result.assert_outcomes(passed=1, errors=1, deselected=1)


# Loops an anyio test may run on.  uvloop is imported by the conftest, before the plugin starts
# (as anyio's own conftest does), so uvloop binds asyncio's _set_running_loop unhooked.
LOOPS = '''
import asyncio

import uvloop


def app_factory(loop, coro, **kwargs):
    """An application's task factory that wraps every coroutine, as tracing libraries do."""
    async def traced():
        return await coro
    return asyncio.Task(traced(), loop=loop, **kwargs)


def app_factory_loop():
    loop = asyncio.new_event_loop()
    loop.set_task_factory(app_factory)
    return loop


def eager_loop():
    loop = asyncio.new_event_loop()
    loop.set_task_factory(asyncio.eager_task_factory)
    return loop


FACTORIES = {"asyncio": None, "uvloop": uvloop.new_event_loop, "app-factory": app_factory_loop,
             "eager": eager_loop}
'''

ANYIO_CONFTEST = '''
import pytest
from loops import FACTORIES


@pytest.fixture
def anyio_backend():
    factory = FACTORIES[{kind!r}]
    return ("asyncio", {{"loop_factory": factory}} if factory else {{}})
'''


ANYIO_TESTS = """
    import asyncio
    import pytest
    from helpers import start_worker, ticker

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    async def resource():
        await asyncio.sleep(0)
        yield "resource"
        await asyncio.sleep(0)

    async def test_clean(resource):
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        task.cancel()

    async def test_clean_without_fixtures():
        await asyncio.sleep(0)

    async def test_leaks_a_task():
        asyncio.get_running_loop().create_task(ticker(), name="left")
        await asyncio.sleep(0)
"""


@pytest.mark.parametrize("kind", [
    "asyncio", "uvloop", "app-factory",
    pytest.param("eager", marks=pytest.mark.skipif(sys.version_info < (3, 12), reason="3.12+")),
])
def test_anyio_s_runner_task_is_the_harness_s_on_every_kind_of_loop(pytester, kind):
    pytest.importorskip("anyio")
    pytest.importorskip("uvloop")
    pytester.makepyfile(loops=LOOPS)
    pytester.makeconftest(ANYIO_CONFTEST.format(kind=kind))
    source = ANYIO_TESTS
    result = run(pytester, source, "--tasktop-leaks", "-p", "anyio.pytest_plugin")
    created = line(source, 'name="left"')
    # The runner's own task, parked between tests on its stream, is never reported.
    assert "TestRunner" not in result.stdout.str()
    assert outcomes(result) == {"test_clean": ["PASSED"], "test_clean_without_fixtures": ["PASSED"],
                                "test_leaks_a_task": ["PASSED", "ERROR"]}
    result.stdout.fnmatch_lines([
        "tasktop_leaks: the test left 1 asyncio task behind",
        "",
        "1 task: sleep, cancelled when its runner shut the loop down * ?left?",
        "*ticker (helpers.py:*)",
        # uvloop loops get the probe's task factory too, so the site is known on every loop.
        f"  created by test_leaks_a_task (test_target.py:{created})  ×1",
    ])


NESTED_INNER = '''
import asyncio
import pytest
from hypothesis import given, settings, strategies as st

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def ticker():
    while True:
        await asyncio.sleep(3600)


@given(x=st.integers())
@settings(max_examples=5, database=None)
async def test_property(x):  # each example opens and closes a runner of its own
    await asyncio.sleep(0)


async def test_plain():
    await asyncio.sleep(0)
'''


def test_a_nested_session_s_runner_tasks_and_leaks_are_its_own(pytester):
    pytest.importorskip("anyio")
    pytest.importorskip("hypothesis")
    inner = NESTED_INNER.replace("\n", "\\n").replace('"', '\\"')
    source = f"""
        INNER = "{inner}"
        INNER_ARGS = ["-p", "anyio.pytest_plugin", "-p", "tasktop.pytest_plugin.plugin",
                      "-p", "no:cacheprovider", "-o", "tasktop_leaks_timeout=0.2"]
        LEAK = '''
        async def test_inner_leak():
            asyncio.get_running_loop().create_task(ticker(), name="inner-left")
            await asyncio.sleep(0)
        '''

        def test_runs_a_session_unchecked(pytester):
            pytester.makepyfile(test_inner=INNER)
            result = pytester.runpytest(*INNER_ARGS)  # in this process, inside this test
            result.assert_outcomes(passed=2)

        def test_runs_a_checked_session_with_a_leak(pytester):
            pytester.makepyfile(test_inner=INNER + LEAK)
            result = pytester.runpytest(*INNER_ARGS, "--tasktop-leaks")
            result.assert_outcomes(passed=3, errors=1)
            result.stdout.fnmatch_lines(["*ERROR at teardown of test_inner_leak*",
                                         "tasktop_leaks: the test left 1 asyncio task behind",
                                         "1 task: sleep, cancelled when its runner shut * ?inner-left?"])
    """
    result = run(pytester, source, "--tasktop-leaks", "-p", "pytester")
    # Neither the inner runners' tasks (hypothesis opens one per example) nor the inner test's
    # leak, which the inner session reported itself, count against the outer tests.
    assert outcomes(result) == {"test_runs_a_session_unchecked": ["PASSED"],
                                "test_runs_a_checked_session_with_a_leak": ["PASSED"]}


SERVICES_TESTS = """
    import asyncio
    import threading
    import anyio.to_process
    import pytest
    from helpers import forever, start_worker

    @pytest.mark.asyncio(loop_scope="module")  # the module's loop stays open after the test
    async def test_default_executor_idle_on_an_open_loop():
        assert await asyncio.get_running_loop().run_in_executor(None, abs, -2) == 2

    @pytest.mark.anyio
    @pytest.mark.tasktop_leaks(timeout=10)  # the pool's waitpid thread ends with its worker
    async def test_process_pool(anyio_backend):
        assert await anyio.to_process.run_sync(abs, -1) == 1

    def test_default_executor_busy():
        loop = asyncio.new_event_loop()
        loop.run_in_executor(None, forever.wait)  # left running: a leak, even in a service's pool
        loop.run_until_complete(asyncio.sleep(0))

    def test_allowed_by_the_ini_file():
        start_worker(name="keep-1")

    def heartbeat():
        forever.wait()

    def test_allowed_without_a_reason():
        threading.Thread(target=heartbeat, name="hb", daemon=True).start()

    def test_not_allowed():
        start_worker(name="other")
"""

SERVICES_CONFTEST = """
    import helpers
    import pytest

    @pytest.fixture
    def anyio_backend():
        return "asyncio"

    def pytest_sessionfinish():
        helpers.forever.set()  # the busy executor worker, so that the process can exit
"""


def test_known_services_and_ini_allowances_are_let_through_and_listed_with_v(pytester):
    pytest.importorskip("anyio")
    pytest.importorskip("pytest_asyncio")
    pytester.makeini(textwrap.dedent("""
        [pytest]
        asyncio_default_fixture_loop_scope = function
        tasktop_leaks_allow =
            keep-* = the session's pool, shut down at exit
            heartbeat
    """))
    pytester.makeconftest(textwrap.dedent(SERVICES_CONFTEST))
    args = ("--tasktop-leaks", "-p", "anyio.pytest_plugin", "-p", "pytest_asyncio.plugin")
    result = run(pytester, SERVICES_TESTS, *args, "-v")
    assert outcomes(result) == {"test_default_executor_idle_on_an_open_loop": ["PASSED"],
                                "test_process_pool": ["PASSED"],
                                "test_default_executor_busy": ["PASSED", "ERROR"],
                                "test_allowed_by_the_ini_file": ["PASSED"],
                                "test_allowed_without_a_reason": ["PASSED"],
                                "test_not_allowed": ["PASSED", "ERROR"]}
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_default_executor_busy*",
                                 "tasktop_leaks: the test left 1 thread behind*",
                                 "1 thread: Event.wait  ?asyncio_0?"])
    result.stdout.fnmatch_lines([
        "*= tasktop_leaks: let through =*",
        "test_target.py::test_allowed_by_the_ini_file: let through 1 thread [keep-1]: keep-* "
        "(tasktop_leaks_allow): the session's pool, shut down at exit",
        "test_target.py::test_allowed_without_a_reason: let through 1 thread [hb]: heartbeat "
        "(tasktop_leaks_allow)",
        "test_target.py::test_default_executor_idle_on_an_open_loop: let through 1 thread "
        "?asyncio_0?: idle worker of an open loop's default executor (built in): *",
        "test_target.py::test_process_pool: let through 1 asyncio task "
        "?AnyIO process pool shutdown task?: anyio process pool shutdown task (built in): *",
    ])
    # Without -v, one line says how many were let through.
    result = run(pytester, SERVICES_TESTS, *args)
    result.stdout.fnmatch_lines(["tasktop_leaks: let through: 4 known service(s) or ignored "
                                 "leftover(s) in 4 test(s); -v lists them"])
    assert "test_allowed_by_the_ini_file: let through" not in result.stdout.str()


def test_under_xdist_workers_check_and_the_controller_lists_what_they_let_through(pytester):
    pytest.importorskip("xdist")
    pytest.importorskip("anyio")
    pytest.importorskip("uvloop")
    pytester.makepyfile(loops=LOOPS)
    pytester.makeconftest(ANYIO_CONFTEST.format(kind="uvloop"))
    pytester.makeini("[pytest]\ntasktop_leaks_allow =\n    keep-* = kept for the session\n")
    source = ANYIO_TESTS + """
    def test_allowed():
        start_worker(name="keep-1")

    def test_leaks_a_thread():
        start_worker(name="left-thread")
    """
    result = run(pytester, source, "--tasktop-leaks", "-p", "anyio.pytest_plugin", "-p", "xdist",
                 "-n", "2", "-v")
    assert outcomes(result) == {"test_clean": ["PASSED"], "test_clean_without_fixtures": ["PASSED"],
                                "test_leaks_a_task": ["PASSED", "ERROR"], "test_allowed": ["PASSED"],
                                "test_leaks_a_thread": ["PASSED", "ERROR"]}
    assert "TestRunner" not in result.stdout.str()
    result.stdout.fnmatch_lines([
        "*= tasktop_leaks: let through =*",
        "test_target.py::test_allowed: let through 1 thread ?keep-1?: keep-* (tasktop_leaks_allow): "
        "kept for the session",
    ])
    result.stdout.fnmatch_lines(["1 task: sleep, cancelled when its runner shut the loop down * ?left?"])
    result.stdout.fnmatch_lines(["1 thread: Event.wait, daemon  ?left-thread?"])


def test_a_task_the_test_lost_fails_it_naming_where_it_was_made(pytester):
    """A task nothing referenced, destroyed while still pending: the work never happened."""
    source = """
        import asyncio, gc

        async def read_replies(q):
            await q.get()

        async def handle():
            asyncio.create_task(read_replies(asyncio.Queue()))
            await asyncio.sleep(0)

        def test_loses_a_task():
            async def serve():
                await handle()
                gc.collect()  # as the collector would, some time later, while the loop runs
                await asyncio.sleep(0)
            asyncio.run(serve())

        def test_keeps_its_task():
            async def main():
                task = asyncio.create_task(read_replies(asyncio.Queue()))
                await asyncio.sleep(0)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            asyncio.run(main())
    """
    result = run(pytester, source, "--tasktop-leaks", "-p", "no:randomly")
    outcome = outcomes(result)
    assert outcome["test_keeps_its_task"] == ["PASSED"]
    assert outcome["test_loses_a_task"] == ["PASSED", "ERROR"]
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_loses_a_task*",
        "tasktop_leaks: 1 asyncio task of the test was destroyed while pending (lost)*",
        f"  1 created by handle (test_target.py:{line(source, 'asyncio.create_task(read_replies')})",
    ])
