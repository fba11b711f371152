"""Waiters: what a blocked task or thread waits on, and which objects are its own.

A waiter in a state of ``PRIMITIVES`` (``Queue.get``, ``Event.wait``...) waits on the primitive
its innermost frame of that state runs a method of: ``self`` of that frame.  A task's own objects
are the task and its coroutine chain; a thread's are the thread and what its frames' locals hold.
The proof (``proof.Proof``) counts the references these hold, so nothing here makes a frame
object for a task, and a thread's frames are only read while the gatherer holds them.
"""
from __future__ import annotations

import asyncio
import gc
import operator
import queue as queue_mod
import sys
import threading
import types
import weakref
from typing import Any

from .tasks import state_of

# States whose waiters wake on their own or through the OS: never a proven leak.
SELF_WAKING = {"sleep", "running", "ready", "socket read", "socket write", "socket accept",
               "socket connect", "stream read", "stream write", "subprocess wait", "executor",
               "idle loop", "I/O wait", "executor idle", "wait_for", "unknown", "waiting"}
# The primitive a waiter in each state waits on: ``self`` of the primitive's frame.
PRIMITIVES = {
    "Queue.get": (asyncio.Queue, queue_mod.Queue), "Queue.put": (asyncio.Queue, queue_mod.Queue),
    "Queue.join": (asyncio.Queue, queue_mod.Queue), "Event.wait": (asyncio.Event, threading.Event),
    "Lock.acquire": (asyncio.Lock,), "Condition.wait": (asyncio.Condition, threading.Condition),
    "Semaphore.acquire": (asyncio.Semaphore, threading.Semaphore),
    "Barrier.wait": tuple(t for t in (getattr(asyncio, "Barrier", None), threading.Barrier) if t),
}

_LOCALS_IN_COROUTINE = sys.version_info >= (3, 11)  # else in the frame object
# A running thread's references are counted from its frames' locals.  Up to 3.10 a caller
# keeps a callee's arguments on its evaluation stack, which nothing can see, for the whole
# call (``q.get()`` keeps ``q``): such a thread is never proven anyway.  From 3.14 a local may
# hold a borrowed reference (``LOAD_FAST_BORROW`` passed on to a callee), which is not in the
# count: counting it would take a reference from outside for the thread's own.
THREAD_PROOFS = (3, 11) <= sys.version_info < (3, 14)
_LOCALS_SNAPSHOT = sys.version_info < (3, 13)  # f_locals is a dict the frame keeps (PEP 667)
_Coro, _Gen, _AGen = types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType
COROUTINES = (_Coro, _Gen, _AGen)
#: What a frame (or a coroutine, 3.11+) references before its locals: its code, names,
#: function, frame object, locals dict, globals and builtins.
_NOT_LOCALS = {types.CodeType, str, types.FunctionType, types.FrameType, dict}
WRAPPERS = ("async_generator_asend", "async_generator_athrow", "coroutine_wrapper")


_CALL = weakref.ReferenceType.__call__
_TARGET = operator.attrgetter("target")


def known_target_refs(records: list) -> list | None:
    """The weak references to what the tasks of ``records`` wait on, as the passes that walked
    their chains kept them (``info.target``, one per object), in C calls: None unless every
    task is alive and every reference kept (the records are then looked at one at a time).  A
    task and a reference are never false, unless a subclass makes them so: such a slice goes
    one at a time too."""
    if not all(map(_CALL, records)):
        return None
    refs = list(map(_TARGET, records))
    return refs if all(refs) else None


def known_targets(records: list) -> list | None:
    """What the tasks of ``records`` wait on (see ``known_target_refs``); None unless every
    one of those is alive too."""
    refs = known_target_refs(records)
    if refs is None:
        return None
    targets = list(map(_CALL, refs))
    return targets if all(targets) else None


def task_target(task: Any, state: str) -> Any:
    """What a task blocked in ``state`` waits on: its future, or the primitive (``self`` of
    the primitive's frame, its first local).  No frame object is made on 3.11+.  A pass that
    walks the chain finds it with ``own_primitive`` instead (``TaskPasses.describe``, which
    keeps it in the record)."""
    if state == "future":
        return getattr(task, "_fut_waiter", None)
    types_ = PRIMITIVES.get(state)
    if not types_:
        return None
    try:
        obj = task.get_coro()
    except Exception:
        return None
    for _ in range(512):
        kind = type(obj)
        if kind is _Coro:
            code, nxt = obj.cr_code, obj.cr_await
        elif kind is _Gen:
            code, nxt = obj.gi_code, obj.gi_yieldfrom
        elif kind is _AGen:
            code, nxt = obj.ag_code, obj.ag_await
        elif obj is not None and kind.__name__ in WRAPPERS:
            obj = next((r for r in gc.get_referents(obj) if type(r) in (_Coro, _Gen, _AGen)), None)
            continue
        else:
            return None
        if state_of(code) == state:
            return own_primitive(obj, types_)
        obj = nxt
    return None


def primitive_at(codes: list, state: str | None) -> int | None:
    """The place, in ``codes`` (an await chain's, outermost first), of the frame whose ``self``
    a waiter in ``state`` waits on (the first of that state, as ``task_target`` finds it); None
    when the state has no primitive."""
    if state not in PRIMITIVES:
        return None
    return next((n for n, code in enumerate(codes) if state_of(code) == state), None)


#: Where among a primitive's coroutine's referents its first local (``self``) was last found:
#: after the code, names and function, which every such coroutine has (a frame object or a
#: locals dict made for one puts it further), so checked there first.
_first_local = 0


def own_primitive(obj: Any, types_: tuple) -> Any:
    """``self`` of the frame of ``obj`` (a coroutine, generator or async generator running a
    primitive's method) if it is one of ``types_``; else None."""
    global _first_local
    kind = type(obj)
    where = obj if _LOCALS_IN_COROUTINE else (obj.cr_frame if kind is _Coro else
                                             obj.gi_frame if kind is _Gen else obj.ag_frame)
    if where is None:
        return None
    found = gc.get_referents(where)
    at = _first_local  # where it was last time: the same place in most of them
    if 0 < at < len(found) and type(found[at - 1]) in _NOT_LOCALS:
        r = found[at]
        if type(r) not in _NOT_LOCALS and isinstance(r, types_):
            return r
    for at, r in enumerate(found):  # ``self`` is the first local: mostly the first referent of another type
        if type(r) not in _NOT_LOCALS:
            if isinstance(r, types_):
                _first_local = at
                return r
            break
    for r in found:  # where it is not (a tracer set on the frame, ...)
        if isinstance(r, types_):
            return r
    return None


def task_chain(task: Any, state: str | None) -> list:
    """The task's own objects: the task, its coroutine chain (with their frames up to 3.10, which
    hold the locals there), and for a task blocked on a bare future the object awaiting it at
    the bottom (a ``FutureIter``, which references the future)."""
    holders = [task]
    try:
        obj = task.get_coro()
    except Exception:
        obj = None
    for _ in range(512):
        kind = type(obj)
        if kind is _Coro:
            holders.append(obj)
            if not _LOCALS_IN_COROUTINE:
                holders.append(obj.cr_frame)
            obj = obj.cr_await
        elif kind is _Gen:
            holders.append(obj)
            if not _LOCALS_IN_COROUTINE:
                holders.append(obj.gi_frame)
            obj = obj.gi_yieldfrom
        elif kind is _AGen:
            holders.append(obj)
            if not _LOCALS_IN_COROUTINE:
                holders.append(obj.ag_frame)
            obj = obj.ag_await
        elif obj is not None and kind.__name__ in WRAPPERS:
            holders.append(obj)  # followed as a holder, never as a node (see proof._OPAQUE_NAMES)
            obj = next((r for r in gc.get_referents(obj) if type(r) in (_Coro, _Gen, _AGen)), None)
        else:
            if state == "future" and obj is not None:
                holders.append(obj)
            break
    return [h for h in holders if h is not None]


def thread_target(state: str, frames: list) -> Any:
    """What a thread blocked in ``state`` waits on (``frames`` innermost last): ``self`` of
    its innermost frame of that state, if it is one of the state's primitives; else None."""
    types_ = PRIMITIVES.get(state)
    if not types_:
        return None
    for frame in reversed(frames):
        if state_of(frame.f_code) == state:
            try:
                found = frame.f_locals.get("self")
            except Exception:
                return None
            return found if isinstance(found, types_) else None
    return None


def thread_holders(thread: threading.Thread, frames: list) -> tuple[list, list]:
    """``(holders, extra)`` of a thread: the thread and, up to 3.12, its frames' locals
    snapshot dicts (the objects whose references are counted), and the values of its frames'
    plain locals (references counted one by one)."""
    holders: list = [thread]
    extra: list = []
    for frame in frames:
        # A running thread's frame is not traversed by the collector: its plain locals
        # are counted from f_locals, and on 3.11/3.12 the snapshot dict it keeps holds
        # them once more.  Cells are left out: another function may share them.
        code = frame.f_code
        plain = set(code.co_varnames) - set(code.co_cellvars) - set(code.co_freevars)
        try:
            values = frame.f_locals
            extra.extend(value for name, value in values.items() if name in plain)
            if _LOCALS_SNAPSHOT:
                holders.append(values)
        except Exception:
            pass
        values = None
    return holders, extra
