"""What the report says of each leftover thread and task: its name, state, stack and where it
was created, as a row.

A row is made while the leftover still runs (or, for a task a runner is about to cancel, while
it still has a stack): the report is rendered from rows, never from live objects.
"""
from __future__ import annotations

import sys
import threading
from typing import Any, List, Optional, TypedDict

from tasktop.wire.shapes import Stack

from .harness import until_harness
from .options import CREATION_DEPTH
from .thread_sites import shown_site


class Leftover(TypedDict):
    """One thread or task the test left behind, as its report shows it."""

    kind: str  # "thread" | "task"
    name: str
    state: str  # as tasktop dump says it, and what became of a task's loop
    stack: Stack  # innermost first
    site: Optional[Stack]  # where it was created; None: not recorded
    codes: List[Any]  # the stack's code objects, matched by ignore globs and services
    final: bool  # a runner cancelled it: no wait could have made it go


def _row(kind: str, name: str, state: str, stack: tuple, site: tuple | None) -> Leftover:
    from tasktop.probe.frames import to_wire

    return Leftover(kind=kind, name=name, state=state, stack=to_wire(stack),
                    site=to_wire(site) if site else None, codes=[code for code, _line in stack], final=False)


def describe_thread(ident: int, thread: Any, sites: Any) -> Leftover:
    """The row of a leftover thread: its state as ``tasktop dump`` would say it."""
    from tasktop.probe import threads as threads_mod
    from tasktop.probe.foreign_frames import paused
    from tasktop.probe.frames import frame_stack

    with paused:  # 3.11: see probe/foreign_frames.py
        frame = sys._current_frames().get(ident)
        stack = frame_stack(frame)
        del frame
    native_id = getattr(thread, "native_id", None)
    state = threads_mod.classify(stack, threads_mod.kernel_state(native_id)) if stack else "exited"
    name = thread.name if thread is not None else f"<thread {ident}>"
    if thread is not None and thread.daemon:
        state += ", daemon"
    site = shown_site(sites.get(thread)) if thread is not None else None
    return _row("thread", name, state, stack, site)


def describe_task(task: Any, where: str = "") -> Leftover:
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
    return _row("task", name, f"{state}, {where}" if where else state, stack, site)
