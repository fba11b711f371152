"""Test sessions: the probe on every Python from 3.9 to 3.15 that the machine has, and the
whole suite on 3.11.

``nox`` runs every test on every Python: the probe's tests on 3.9, 3.10, 3.12, 3.13, 3.14 and 3.15, and the
whole suite (the probe's tests included) on 3.11, so nothing runs twice.  ``nox -s probe`` runs
the probe's tests on every version, ``nox -s probe-3.12`` on one, ``nox -s tests`` the whole
suite.  Arguments after ``--`` go to pytest.

The project is installed the way users install it (``pip install .``, not editable): only
that puts ``tasktop.pth``, the ``TASKTOP=1`` start-up hook, into site-packages, and the tests
start real processes that rely on it.  A Python the machine lacks is skipped with a one-line
note.  Interpreters installed with pyenv count as present even when pyenv is not told to use
them (see ``_expose_pyenv_versions``).
"""
from __future__ import annotations

import glob
import os
import re

import nox

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]
#: The Python of the whole suite (TUI snapshots are taken on it).
MAIN_PYTHON = "3.11"
#: The probe's tests: what must hold on every Python.  Globs, relative to the project root.
PROBE_TESTS = [
    "tests/*/test_probe*.py",  # unit/ and integration/
    "tests/unit/test_wire_*.py",  # the protocol the probe speaks (its table of ops, its encoding)
    "tests/integration/test_creation_paths.py",
    "tests/integration/test_servers.py",
    "tests/integration/test_demo.py",  # the demo target, dumped and checked
    "tests/*/test_verdict*.py",  # leak proofs count references: what a frame holds differs by version
    "tests/integration/test_pytest_plugin.py",  # eager tasks (3.12+), and the harness on every version
    "tests/unit/test_recording_format.py",  # the format the flight recorder writes in the target
    "tests/unit/test_flight_ring.py",
    "tests/integration/test_recordings.py",  # the flight recorder killed by SIGKILL, on every version
    "tests/integration/test_end_following.py",  # the end history's rate limit; cancel() callers (3.12+)
    "tests/integration/test_endings_aiohttp.py",  # issue 13's aiohttp case: every consumer live or lost
]
#: Tests in those files whose subject is the same on every Python (the tool's side, or the
#: order and pacing of a pass rather than what it reads): run once, in the whole suite.
#: Among them the costliest (200,000 tasks, a pass every millisecond, nested pytest sessions).
MAIN_ONLY_TESTS = [
    "tests/integration/test_verdicts.py::test_orphans_among_a_hundred_thousand_tasks_that_only_await_others",
    "tests/integration/test_probe_cold.py::test_walking_goes_on_where_the_last_pass_stopped",
    "tests/integration/test_probe_cold.py::test_groups_filling_in_are_no_growth",
    "tests/integration/test_recordings.py::test_record_then_dump_at_and_diff",  # the recorder is the tool
    "tests/integration/test_recordings.py::test_record_ends_cleanly_on_ctrl_c",
    "tests/integration/test_recordings.py::test_a_pass_in_another_process_packs_summaries_the_replay_reads_from",
    # the pytest plugin's options, reports and registration: pytest's side, not the harness's
    "tests/integration/test_pytest_plugin.py::test_registered_through_its_entry_point_and_idle",
    "tests/integration/test_pytest_plugin.py::test_under_xdist_workers_check_and_the_controller_lists_what_they_let_through",
    "tests/integration/test_pytest_plugin.py::test_the_option_checks_every_test_and_ini_settings_apply",
    "tests/integration/test_pytest_plugin.py::test_marker_options",
    "tests/integration/test_pytest_plugin.py::test_a_misspelt_marker_option_is_a_usage_error",
    "tests/integration/test_pytest_plugin.py::test_report_paths_are_relative_to_the_root_directory",
    "tests/integration/test_pytest_plugin.py::test_a_failing_test_is_not_also_reported_for_its_leftovers",
]
# Four pytest workers (pytest-xdist), whatever the cores: the tests mostly wait on the target
# processes they start, so on 2 cores 4 workers finish a probe session in about 50 s instead
# of 75 s, and the whole run stays well under 10 minutes.  Workers steal tests from each other
# (``worksteal``): a few tests take 15-30 s, and one left last to one worker made the whole suite
# wait (3.11's whole suite 143-154 s -> 125 s, a probe session 51 -> 47 s).
PYTEST = ["pytest", "-p", "no:cacheprovider", "-q", "-n", "4", "--dist", "worksteal"]

# The default run: the whole suite on MAIN_PYTHON covers the probe's tests there.
nox.options.sessions = [f"probe-{v}" for v in PYTHONS if v != MAIN_PYTHON] + ["tests"]
# A Python the machine lacks is a skip, even where $CI is set (nox makes it an error there).
nox.options.error_on_missing_interpreters = False
nox.options.reuse_venv = "yes"  # the project is reinstalled from this checkout every time
# uv (in the test extra) makes and fills the five environments in seconds instead of minutes;
# plain virtualenv and pip where it is missing.
nox.options.default_venv_backend = "uv|virtualenv"
if hasattr(nox.options, "download_python"):  # nox >= 2025.02
    nox.options.download_python = "never"  # no interpreter is fetched: a missing one is a skip


def _expose_pyenv_versions() -> None:
    """Let nox find every pyenv-installed 3.9-3.15.

    pyenv's ``python3.9`` shim refuses to run unless 3.9 is among the versions pyenv is told
    to use (``pyenv global``, ``.python-version``, ``$PYENV_VERSION``), and nox's discovery
    follows the same rule.  When nobody set ``$PYENV_VERSION``, set it for this nox run to the
    version pyenv uses now followed by the newest installed patch release of each wanted
    version, so plain ``python`` stays what it was.
    """
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    versions_dir = os.path.join(root, "versions")
    if os.environ.get("PYENV_VERSION") or not os.path.isdir(versions_dir):
        return
    newest: dict[str, tuple[int, str]] = {}
    for name in os.listdir(versions_dir):
        match = re.fullmatch(r"(3\.\d+)\.(\d+)", name)
        if match and match.group(1) in PYTHONS:
            patch = int(match.group(2))
            if match.group(1) not in newest or patch > newest[match.group(1)][0]:
                newest[match.group(1)] = (patch, name)
    if not newest:
        return
    current = []
    try:
        with open(os.path.join(root, "version")) as fh:
            current = [line.strip() for line in fh if line.strip() and not line.startswith("#")]
    except OSError:
        pass
    wanted = current + [name for _patch, name in newest.values() if name not in current]
    os.environ["PYENV_VERSION"] = ":".join(wanted)


_expose_pyenv_versions()


def _probe_test_files() -> list[str]:
    files = []
    for pattern in PROBE_TESTS:
        files.extend(sorted(glob.glob(pattern)))
    return files


def _install(session: nox.Session, extra: str = "test") -> None:
    # Byte-code caches, even where the environment turns them off (PYTHONDONTWRITEBYTECODE=1):
    # the tests start hundreds of Pythons (targets, nested pytest runs), and without the caches
    # each compiles what it imports again and pytest rewrites the asserts of every plugin's
    # modules, about 2 s of CPU a nested run (bench/README.md, "The test suite's time").
    session.env["PYTHONDONTWRITEBYTECODE"] = ""  # empty is off (Python reads only non-empty)
    if session.venv_backend == "uv":
        # uv would reuse its cached build of this directory while pyproject.toml is unchanged;
        # unlike pip it compiles nothing at install unless asked.
        session.install("--reinstall-package", "tasktop", "--compile-bytecode", f".[{extra}]")
    else:
        session.install(f".[{extra}]")  # pip always rebuilds and reinstalls a local directory


@nox.session(python=PYTHONS)
def probe(session: nox.Session) -> None:
    """The probe's tests (hooks, task creation paths, real servers, the demo target)."""
    for test in MAIN_ONLY_TESTS:  # a renamed test would otherwise run on every Python unnoticed
        path, name = test.split("::")
        try:
            with open(path) as fh:
                there = f"def {name}(" in fh.read()
        except OSError:
            there = False
        if not there:
            session.error(f"MAIN_ONLY_TESTS names {test}, which is not there")
    _install(session, "test-probe")
    deselected = [arg for test in MAIN_ONLY_TESTS for arg in ("--deselect", test)]
    session.run(*PYTEST, *_probe_test_files(), *deselected, *session.posargs)


@nox.session(python=MAIN_PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite."""
    _install(session)
    session.run(*PYTEST, "tests", *session.posargs)
