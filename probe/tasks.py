"""What one asyncio task is doing: its whole await chain, and what it is blocked on.

``Task.get_stack()`` only gives the task's outer frame; the chain continues through each
coroutine's ``cr_await`` (``gi_yieldfrom`` for generators, ``ag_await`` for async generators).
Under ``async for`` ``cr_await`` is an ``async_generator_asend`` with no attributes, and
``gc.get_referents`` leads on to the generator.  At the bottom sits a ``FutureIter`` (C) or a
future; the future the task is blocked on is ``task._fut_waiter``.

States are named the way a user thinks: the innermost frame that is a known asyncio
primitive (found by code-object identity, so ``Lock.acquire`` and ``Semaphore.acquire`` are
told apart on every version), else what the awaited future is.
"""
from __future__ import annotations

import asyncio
import gc
import types
from asyncio import base_events, locks, queues, selector_events, streams, tasks as _tasks
from typing import Any

from .frames import RawStack

_Coro, _Gen, _AGen = types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType
_REFERENT_WRAPPERS = ("async_generator_asend", "async_generator_athrow", "coroutine_wrapper",
                      "async_generator_wrapped_value")

# Code object -> state.
STATES: dict = {}
# A state reached through another primitive: Condition.wait re-acquires its lock, so a task
# stuck in [Lock.acquire, Condition.wait] is in Condition.wait.  (inner state -> outer states)
ABSORBS = {
    "Lock.acquire": {"Condition.wait", "Thread.join", "Semaphore.acquire"},
    "Condition.wait": {"Event.wait", "Queue.get", "Queue.put", "Queue.join", "Semaphore.acquire",
                       "Barrier.wait", "Future.result", "executor wait"},
    "Queue.get": {"executor idle"},
    "stream read": {"stream read"},
    "stream write": {"stream write"},
    "subprocess wait": {"subprocess wait"},
}


def _add(state: str, owner: Any, *names: str) -> None:
    for name in names:
        fn = getattr(owner, name, None)
        fn = getattr(fn, "__func__", fn)
        code = getattr(fn, "__code__", None)
        if code is not None:
            STATES[code] = state


def _register_asyncio() -> None:
    _add("Queue.get", queues.Queue, "get")
    _add("Queue.put", queues.Queue, "put")
    _add("Queue.join", queues.Queue, "join")
    _add("Event.wait", locks.Event, "wait")
    _add("Lock.acquire", locks.Lock, "acquire")
    _add("Condition.wait", locks.Condition, "wait", "wait_for")
    _add("Semaphore.acquire", locks.Semaphore, "acquire")
    _add("Barrier.wait", getattr(locks, "Barrier", None), "wait")
    _add("sleep", _tasks, "sleep")
    _add("wait_for", _tasks, "wait_for")
    _add("wait", _tasks, "wait", "_wait")
    _add("stream read", streams.StreamReader, "_wait_for_data", "read", "readline", "readexactly",
         "readuntil")
    _add("stream write", streams.StreamWriter, "drain", "wait_closed")
    _add("stream write", streams.FlowControlMixin, "_drain_helper")
    _add("socket read", selector_events.BaseSelectorEventLoop, "sock_recv", "sock_recv_into",
         "sock_recvfrom", "sock_recvfrom_into")
    _add("socket write", selector_events.BaseSelectorEventLoop, "sock_sendall", "sock_sendto")
    _add("socket accept", selector_events.BaseSelectorEventLoop, "sock_accept")
    _add("socket connect", selector_events.BaseSelectorEventLoop, "sock_connect")
    _add("socket connect", base_events.BaseEventLoop, "create_connection", "sock_connect")
    _add("executor", base_events.BaseEventLoop, "getaddrinfo", "getnameinfo")
    try:
        from asyncio import subprocess, base_subprocess

        _add("subprocess wait", subprocess.Process, "wait", "communicate")
        _add("subprocess wait", base_subprocess.BaseSubprocessTransport, "_wait")
    except ImportError:  # pragma: no cover - platforms without subprocess support
        pass
    taskgroups = getattr(asyncio, "taskgroups", None)
    if taskgroups is not None:
        _add("TaskGroup", taskgroups.TaskGroup, "__aexit__", "_aexit")


_register_asyncio()
# Nested functions cannot be reached as attributes: name them by (file, name).
_BY_NAME = {(_tasks.__file__, "_wait_for_one"): "as_completed",
            (_tasks.__file__, "as_completed"): "as_completed"}


def classify(stack: RawStack) -> str | None:
    """The state named by the stack (innermost first), or None when no primitive is on it."""
    state = None
    for code, _line in stack:
        found = STATES.get(code) or _BY_NAME.get((code.co_filename, code.co_name))
        if state is None:
            if found is not None:
                state = found
            continue
        if found is not None and found in ABSORBS.get(state, ()):
            state = found
            continue
        break
    return state


def walk(coro: Any) -> list:
    """The frames of the whole await chain of ``coro``, outermost first."""
    frames = []
    obj = coro
    for _ in range(512):
        if obj is None:
            break
        kind = type(obj)
        if kind is _Coro:
            frame, obj = obj.cr_frame, obj.cr_await
        elif kind is _Gen:
            frame, obj = obj.gi_frame, obj.gi_yieldfrom
        elif kind is _AGen:
            frame, obj = obj.ag_frame, obj.ag_await
        elif kind.__name__ in _REFERENT_WRAPPERS:
            frame = None
            obj = next((r for r in gc.get_referents(obj) if type(r) in (_Coro, _Gen, _AGen)), None)
        else:
            frame = getattr(obj, "cr_frame", None)  # coroutine-like objects (Cython, ...)
            obj = getattr(obj, "cr_await", None)
        if frame is None:
            if kind in (_Coro, _Gen, _AGen):
                break  # finished
            continue
        frames.append(frame)
    return frames


def _is_executor(fut: Any) -> bool:
    # run_in_executor's future is chained to a concurrent future by futures._chain_future.
    try:
        for cb in fut._callbacks or ():
            fn = cb[0] if isinstance(cb, tuple) else cb
            if "_chain_future" in getattr(fn, "__qualname__", ""):
                return True
    except Exception:
        pass
    return False


def _locals(frame: Any) -> dict:
    try:
        return frame.f_locals  # the task is suspended: its frames are not running
    except Exception:
        return {}


def describe(task: asyncio.Task, current: asyncio.Task | None) -> tuple[RawStack, str, Any, tuple]:
    """``(stack innermost first, state, awaited task or None, awaited children)``."""
    try:
        coro = task.get_coro()
    except Exception:
        coro = None
    frames = walk(coro)
    stack = tuple((f.f_code, f.f_lineno) for f in reversed(frames))
    waiter = getattr(task, "_fut_waiter", None)
    awaiting = None
    children: tuple = ()
    if isinstance(waiter, asyncio.Task):
        awaiting = waiter
    elif waiter is not None and type(waiter).__name__ == "_GatheringFuture":
        children = tuple(c for c in getattr(waiter, "_children", ()) if isinstance(c, asyncio.Task))
    state = classify(stack)
    if task is current:
        state = "running"
    elif waiter is None:
        state = "ready"  # not waiting on anything: scheduled, or not started yet
    elif state is None:
        if awaiting is not None:
            state = "await task"
        elif children:
            state = "gather"
        elif _is_executor(waiter):
            state = "executor"
        else:
            state = "future"
    elif awaiting is None and not children and state in ("wait_for", "wait", "TaskGroup"):
        # The awaited tasks sit in the primitive's frame: wait_for's inner task (3.9-3.11),
        # wait's set, the TaskGroup's tasks.
        for frame in reversed(frames):
            if STATES.get(frame.f_code) != state:
                continue
            loc = _locals(frame)
            if state == "wait_for" and isinstance(loc.get("fut"), asyncio.Task):
                awaiting = loc["fut"]
            elif state == "wait":
                children = tuple(t for t in loc.get("fs", ()) if isinstance(t, asyncio.Task))
            elif state == "TaskGroup":
                group = loc.get("self")
                children = tuple(t for t in getattr(group, "_tasks", ()) if isinstance(t, asyncio.Task))
            break
    return stack, state, awaiting, children
