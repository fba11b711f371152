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
import sys
import types
from asyncio import base_events, locks, queues, selector_events, streams, tasks as _tasks
from typing import Any

from . import positions
from .foreign_frames import paused
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


_state_of: dict[int, tuple] = {}  # id(code) -> (code, state or None): codes hash slowly


def state_of(code: Any) -> str | None:
    """The state a frame of ``code`` names (a known primitive), or None; cached by identity."""
    found = _state_of.get(id(code))
    if found is None or found[0] is not code:
        if len(_state_of) > 50_000:
            _state_of.clear()
        found = _state_of[id(code)] = (code, STATES.get(code) or _BY_NAME.get((code.co_filename, code.co_name)))
    return found[1]


def classify(stack: RawStack) -> str | None:
    """The state named by the stack (innermost first), or None when no primitive is on it."""
    return classify_codes([code for code, _line in stack])


def classify_codes(codes: list) -> str | None:
    """``classify`` over codes, innermost first."""
    state = None
    for code in codes:
        found = state_of(code)
        if state is None:
            if found is not None:
                state = found
            continue
        if found is not None and found in ABSORBS.get(state, ()):
            state = found
            continue
        break
    return state


_FRAME_ATTR = {_Coro: "cr_frame", _Gen: "gi_frame", _AGen: "ag_frame"}
_NO_FRAME = object()  # what a coroutine-like object without ``cr_frame`` gives (see _chain)
_FRAMELESS = sys.version_info >= (3, 11)  # see positions


#: Types a chain ends at: neither coroutine-like (``cr_frame``, ``cr_await``) nor a wrapper,
#: and of no instance attributes (which could make one instance coroutine-like).
ENDS: set = set()


def _chain(coro: Any) -> tuple[list, list]:
    """(the coroutines, generators and async generators of the await chain of ``coro``,
    outermost first; their ``[code, line, code, line, ...]``), without frame objects where
    ``positions`` can help it."""
    objs: list = []
    flat: list = []
    obj = coro
    for _ in range(512):
        if obj is None:
            break
        kind = type(obj)
        if kind is _Coro and _FRAMELESS:
            start, run = len(objs), []
            nxt = positions.suspended_run(obj, objs, run)
            if nxt is not obj:
                flat += positions.codes_of(objs[start:], run)
                obj = nxt
                continue
        if kind is _Coro:
            code, nxt = obj.cr_code, obj.cr_await
        elif kind is _Gen:
            code, nxt = obj.gi_code, obj.gi_yieldfrom
        elif kind is _AGen:
            code, nxt = obj.ag_code, obj.ag_await
        elif kind in ENDS:
            break
        elif kind.__name__ in _REFERENT_WRAPPERS:
            obj = next((r for r in gc.get_referents(obj) if type(r) in (_Coro, _Gen, _AGen)), None)
            continue
        else:
            with paused:  # 3.11: a wrapped generator's frame is made here (see foreign_frames)
                frame = getattr(obj, "cr_frame", _NO_FRAME)  # coroutine-like objects (Cython, ...)
                if frame is _NO_FRAME and not (hasattr(obj, "cr_await") or hasattr(obj, "__dict__")):
                    ENDS.add(kind)  # a future, a FutureIter, ...: where parked chains end
                    break
                if frame is not None and frame is not _NO_FRAME:
                    objs.append(obj)
                    flat.append(frame.f_code)
                    flat.append(frame.f_lineno)
                frame = None
            obj = getattr(obj, "cr_await", None)
            continue
        attr = _FRAME_ATTR[kind]
        if not positions.alive(obj, attr):
            break  # finished
        objs.append(obj)
        flat.append(code)
        flat.append(positions.where(obj, code, attr))
        obj = nxt
    return objs, flat


def chain_codes(coro: Any) -> list:
    """The code objects of the whole await chain of ``coro``, outermost first, read without
    making a frame object (see ``positions``)."""
    return _chain(coro)[1][0::2]


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


def _locals(obj: Any) -> dict:
    """The locals of ``obj``'s frame (a coroutine, generator or async generator)."""
    try:
        with paused:  # 3.11: its frame may be another thread's to run (see foreign_frames)
            return getattr(obj, _FRAME_ATTR.get(type(obj), "cr_frame")).f_locals
    except Exception:
        return {}


def describe(task: asyncio.Task, current: asyncio.Task | None) -> tuple[RawStack, str, Any, tuple]:
    """``(stack innermost first, state, awaited task or None, awaited children)``."""
    flat, state, awaiting, children = describe_flat(task, current)
    return tuple(zip(flat[0::2], flat[1::2])), state, awaiting, children


def describe_flat(task: asyncio.Task, current: asyncio.Task | None) -> tuple[list, str, Any, tuple]:
    """``describe`` with the stack as ``[code, line, code, line, ...]`` innermost first: what a
    pass needs to find the task's group without making a tuple per frame."""
    objs, outer_first = chain_of(task)
    flat = innermost_first(outer_first)
    state, awaiting, children = state_of_task(task, current, classify_codes(flat[0::2]), objs)
    return flat, state, awaiting, children


def chain_of(task: asyncio.Task) -> tuple[list, list]:
    """The task's await chain: its objects and their ``[code, line, ...]``, outermost first."""
    try:
        coro = task.get_coro()
    except Exception:
        coro = None
    return _chain(coro)


def innermost_first(outer_first: list) -> list:
    """``[code, line, ...]`` outermost first, turned innermost first (pairs kept in order)."""
    flat = outer_first[::-1]  # [line, code, ...] innermost first: swap each pair, in C
    flat[0::2], flat[1::2] = flat[1::2], flat[0::2]
    return flat


#: States whose awaited tasks sit in the primitive's frame (see ``state_of_task``).
LOCALS_STATES = ("wait_for", "wait", "TaskGroup")


def state_of_task(task: asyncio.Task, current: asyncio.Task | None, named: str | None,
                  objs: list) -> tuple[str, Any, tuple]:
    """``(state, awaited task or None, awaited children)`` of a task whose chain (``objs``,
    outermost first) names the state ``named`` (``classify_codes``, None if no primitive)."""
    waiter = getattr(task, "_fut_waiter", None)
    awaiting = None
    children: tuple = ()
    if isinstance(waiter, asyncio.Task):
        awaiting = waiter
    elif waiter is not None and type(waiter).__name__ == "_GatheringFuture":
        children = tuple(c for c in getattr(waiter, "_children", ()) if isinstance(c, asyncio.Task))
    state = named
    if task is current and waiter is None:  # a task's step clears its waiter first
        # (With a waiter, ``current`` is stale: looked up once per loop and pass, before the
        # loop ran on during the pass's hand-offs and the task parked.)
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
    elif awaiting is None and not children and state in LOCALS_STATES:
        # The awaited tasks sit in the primitive's frame: wait_for's inner task (3.9-3.11),
        # wait's set, the TaskGroup's tasks (the one frame object made here).
        for obj in reversed(objs):
            code = getattr(obj, "cr_code", None) or getattr(obj, "gi_code", None) or getattr(obj, "ag_code", None)
            if state_of(code) != state:
                continue
            loc = _locals(obj)
            if state == "wait_for" and isinstance(loc.get("fut"), asyncio.Task):
                awaiting = loc["fut"]
            elif state == "wait":
                children = tuple(t for t in loc.get("fs", ()) if isinstance(t, asyncio.Task))
            elif state == "TaskGroup":
                group = loc.get("self")
                children = tuple(t for t in getattr(group, "_tasks", ()) if isinstance(t, asyncio.Task))
            break
    return state, awaiting, children
