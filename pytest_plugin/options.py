"""What a run and a test ask of the leak check: the command-line option, the ini settings and
the marker, declared, read and checked.

Kept apart from everything that hooks the process: the plugin, loaded through its entry point
in every pytest run, imports only this module until some test is to be checked.
"""
from __future__ import annotations

from typing import Any

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
MARKER_KEYS = ("ignore", "timeout", "tasks", "threads", "runner_cancelled", "check")


def add_options(parser: pytest.Parser) -> None:
    """The option and the ini settings, with their help."""
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


def add_marker(config: pytest.Config) -> None:
    """The marker, for ``pytest --markers`` and ``--strict-markers``."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(ignore=(), timeout=None, tasks=True, threads=True, runner_cancelled=True, "
        "check=True): fail the test "
        "if it leaves asyncio tasks or threads behind (check=False exempts it from "
        f"{OPTION})")


def validate(mark: Any, nodeid: str) -> None:
    """A misspelt marker option is an error of the whole run, not a silent no-op."""
    if mark.args:
        raise pytest.UsageError(f"{nodeid}: @pytest.mark.{MARKER} takes keyword arguments only "
                                f"({', '.join(MARKER_KEYS)}), not {mark.args!r}")
    unknown = set(mark.kwargs) - set(MARKER_KEYS)
    if unknown:
        raise pytest.UsageError(f"{nodeid}: @pytest.mark.{MARKER}: unknown option(s) "
                                f"{', '.join(sorted(unknown))}; known: {', '.join(MARKER_KEYS)}")


def marker_options(item: pytest.Item) -> dict:
    """The test's marker options, the closest marker winning (``ignore`` lists add up)."""
    merged: dict = {}
    ignore: list = []
    for mark in item.iter_markers(MARKER):
        validate(mark, item.nodeid)
        for key, value in mark.kwargs.items():
            if key == "ignore":
                ignore.extend([value] if isinstance(value, str) or callable(value) else value)
            else:
                merged.setdefault(key, value)
    merged["ignore"] = ignore
    return merged


def asked(item: pytest.Item) -> bool:
    """Whether the test itself asks to be checked (marker or fixture), regardless of the option."""
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        return bool(marker.kwargs.get("check", True))
    return FIXTURE in getattr(item, "fixturenames", ())


def wanted(item: pytest.Item) -> bool:
    """Whether the test is checked: asked for by the run or by the test, not exempted."""
    marker = item.get_closest_marker(MARKER)
    if marker is not None and not marker.kwargs.get("check", True):
        return False
    return bool(item.config.getoption(OPTION, False)) or asked(item)


def timeout_of(config: pytest.Config) -> float:
    """The ini file's seconds leftovers get to go (a bad value is a usage error)."""
    raw = config.getini(INI_TIMEOUT)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{INI_TIMEOUT} must be a number of seconds, not {raw!r}") from None
    return max(0.0, value)


def configured_allowances(config: pytest.Config) -> list:
    """The known services and the ini file's ``tasktop_leaks_allow`` and ``tasktop_leaks_ignore``."""
    from .services import SERVICES, from_ignore, parse_allow

    return (list(SERVICES) + parse_allow(config.getini(INI_ALLOW), INI_ALLOW)
            + from_ignore(config.getini(INI_IGNORE), INI_IGNORE))
