"""What the leak-checking pytest plugin lets through, and why: known services and patterns.

Some libraries start a task or a thread the first time they are used and keep it for as long as
its loop or the process lives: a service, not a leak of the test that happened to use the
library first.  goleak keeps such a list for Go (``IgnoreTopFunction``, its known runtime
goroutines); ``SERVICES`` is ours, each entry with a one-line reason, each recognised by identity
(the code it runs, the executor it works for), never by a name another thread could also have.

A user adds to it with the ``tasktop_leaks_allow`` ini option, one ``pattern = reason`` per
line; a pattern is a glob matched against the thread's or task's name and against every
function name on its stack (``Class.method`` or bare), like ``ignore``.  Whatever is let
through is noted with the entry that let it through, shown by ``pytest -v``.

Library modules are looked up in ``sys.modules``, never imported.
"""
from __future__ import annotations

import fnmatch
import sys
from typing import Any, Callable, Iterable, NamedTuple

from .report import plural


class Allowance(NamedTuple):
    """One reason to let a leftover through."""

    label: str  # what the note shows: the service's name, or the glob
    reason: str  # one line
    origin: str  # "built in", the ini option, "marker" ...
    test: Any  # a glob (str), or a callable: (obj, kind, name, codes) -> bool

    def matches(self, obj: Any, kind: str, name: str | None, codes: Iterable) -> bool:
        test = self.test
        if callable(test):
            try:
                return bool(test(obj, kind, name, codes))
            except Exception:
                return False
        return glob_matches(test, name, codes)


def glob_matches(pattern: str, name: str | None, codes: Iterable) -> bool:
    """Whether ``pattern`` matches ``name`` or a function on the stack (``Class.method`` or bare)."""
    if name is not None and fnmatch.fnmatchcase(name, pattern):
        return True
    for code in codes:
        if fnmatch.fnmatchcase(code.co_name, pattern):
            return True
        qualname = getattr(code, "co_qualname", None)
        if qualname is not None and fnmatch.fnmatchcase(qualname, pattern):
            return True
    return False


def _function_code(module_name: str, qualname: str) -> Any:
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return getattr(obj, "__code__", None)


def _runs(*functions: tuple) -> Callable:
    """A task test: its stack holds one of ``functions``, ``(module, qualname)`` pairs."""

    def test(obj: Any, kind: str, name: str | None, codes: Iterable) -> bool:
        if kind != "task":
            return False
        wanted = {_function_code(module, qualname) for module, qualname in functions}
        wanted.discard(None)
        return bool(wanted) and any(code in wanted for code in codes)

    return test


def _executor_of(thread: Any) -> Any:
    """The ``ThreadPoolExecutor`` a worker thread works for, or None (the worker holds it
    weakly in its arguments while it runs)."""
    from concurrent.futures import thread as cf_thread

    if getattr(thread, "_target", None) is not cf_thread._worker:
        return None
    args = getattr(thread, "_args", None) or (None,)
    ref = args[0]
    return ref() if callable(ref) else None


def _idle(codes: Iterable) -> bool:
    """Whether a pool worker's stack (innermost first) is waiting for work."""
    from tasktop.probe.threads import classify

    return classify(tuple((code, 0) for code in codes), {}) == "executor idle"


def _default_executor_worker(obj: Any, kind: str, name: str | None, codes: Iterable) -> bool:
    if kind != "thread":
        return False
    executor = _executor_of(obj)
    if executor is None or not _idle(codes):
        return False
    from tasktop.probe import hooks
    from tasktop.probe.registry import copy_set

    for loop in copy_set(hooks.loops):
        if getattr(loop, "_default_executor", None) is executor and not loop.is_closed():
            return True
    return False


def _asgiref_executor_worker(obj: Any, kind: str, name: str | None, codes: Iterable) -> bool:
    if kind != "thread":
        return False
    sync_to_async = getattr(sys.modules.get("asgiref.sync"), "SyncToAsync", None)
    executor = getattr(sync_to_async, "single_thread_executor", None)
    return executor is not None and _executor_of(obj) is executor and _idle(codes)


BUILT_IN = "built in"

#: Known library service tasks and threads.
SERVICES = (
    Allowance("anyio process pool shutdown task",
              "made by a loop's first anyio.to_process call; lives as long as the loop, and "
              "stops the pool's worker processes when the loop shuts it down",
              BUILT_IN, _runs(("anyio._backends._asyncio", "_shutdown_process_pool_on_exit"))),
    Allowance("idle worker of an open loop's default executor",
              "run_in_executor(None, ...) keeps its workers for the next call; the loop shuts "
              "them down when it closes (asyncio.run and asyncio.Runner do)",
              BUILT_IN, _default_executor_worker),
    Allowance("asgiref's thread-sensitive executor",
              "sync_to_async(thread_sensitive=True) outside a request runs on one process-wide "
              "worker, started on first use and kept for the life of the process",
              BUILT_IN, _asgiref_executor_worker),
)


def parse_allow(lines: Iterable[str], origin: str) -> list:
    """Allowances from ini lines ``pattern = reason`` (the reason may be left out)."""
    out = []
    for line in lines:
        pattern, _sep, reason = line.partition("=")
        pattern, reason = pattern.strip(), reason.strip()
        if not pattern:
            continue
        out.append(Allowance(pattern, reason, origin, pattern))
    return out


def from_ignore(patterns: Iterable, origin: str) -> list:
    """Allowances for ``ignore`` entries: globs, and callables given the Thread or Task."""
    out = []
    for pattern in patterns:
        if callable(pattern):
            label = getattr(pattern, "__qualname__", None) or repr(pattern)
            out.append(Allowance(label, "", origin, _CalledWithObj(pattern)))
        else:
            out.append(Allowance(str(pattern), "", origin, str(pattern)))
    return out


class _CalledWithObj(NamedTuple):
    """An ``ignore`` callable, given only the Thread or Task; equal for the same callable, so
    that one callable makes one note however often it is wrapped."""

    function: Callable

    def __call__(self, obj: Any, kind: str, name: str | None, codes: Iterable) -> bool:
        return self.function(obj)


def let_through(allowances: Iterable, obj: Any, kind: str, name: str | None, codes: list,
                passed: dict) -> bool:
    """Whether one of ``allowances`` lets ``obj`` (a ``kind``, "task" or "thread") through; if
    so, noted in ``passed``: ``{(kind, allowance): {id(obj): name}}``."""
    for allowance in allowances:
        if allowance.matches(obj, kind, name, codes):
            passed.setdefault((kind, allowance), {})[id(obj)] = name if name is not None else repr(obj)
            return True
    return False


def note(count_by_entry: dict) -> list:
    """Lines saying what was let through: ``{(kind, allowance): [names]}``."""
    lines = []
    for (kind, allowance), names in count_by_entry.items():
        shown = ", ".join(sorted(map(str, names))[:3]) + (", …" if len(names) > 3 else "")
        noun = plural(len(names), "asyncio task" if kind == "task" else "thread")
        why = f": {allowance.reason}" if allowance.reason else ""
        lines.append(f"let through {noun} [{shown}]: {allowance.label} ({allowance.origin}){why}")
    return lines
