"""What the report says of each leftover thread and task: its name, state, stack and where it
was created, as a row.

A row is made while the leftover still runs (or, for a task a runner is about to cancel, while
it still has a stack): the report is rendered from rows, never from live objects.
"""
from __future__ import annotations

import os
import re
import sys
import threading
from typing import Any, Iterable

from .harness import until_harness
from .options import CREATION_DEPTH
from .thread_sites import shown_site

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


def describe_thread(ident: int, thread: Any, sites: Any, root: str) -> dict:
    """The row of a leftover thread: its state as ``tasktop dump`` would say it."""
    from tasktop.probe import threads as threads_mod
    from tasktop.probe.frames import frame_stack

    frame = sys._current_frames().get(ident)
    stack = frame_stack(frame)
    del frame
    native_id = getattr(thread, "native_id", None)
    state = threads_mod.classify(stack, threads_mod.kernel_state(native_id)) if stack else "exited"
    name = thread.name if thread is not None else f"<thread {ident}>"
    if thread is not None and thread.daemon:
        state += ", daemon"
    site = shown_site(sites.get(thread)) if thread is not None else None
    return {"kind": "thread", "name": name, "state": state, "stack": _frames_text(stack, root),
            "site": _frames_text(site, root) if site else None}


def describe_task(task: Any, root: str, where: str = "") -> dict:
    """The row of a leftover task; ``where`` says what became of its loop, found out when
    not given."""
    import asyncio
    from tasktop.probe import hooks, tasks as tasks_mod
    from tasktop.probe.frames import creation_site

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
