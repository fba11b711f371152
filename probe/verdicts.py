"""Leak verdicts: which groups grow, which have been stuck for long, and which are *proven* leaks.

A task (or thread) blocked on a queue, event, lock, condition, semaphore or bare future can only
be woken by code that can reach that object.  If nothing references the object but the waiters
themselves — no module, no running frame, no other task, no scheduled callback, no loop — then
nothing can ever wake them: the leak is proven, not suspected.  The probe checks this by walking
``gc.get_referrers`` backwards from the object, through plain containers, and failing as soon as
it meets anything alive.  Each step is one scan of the gc heap, so the walk is bounded in steps
and time, done on demand only, and yields between steps so the event loop keeps running; an
object it could not settle within the budget gets no verdict rather than a wrong one.
"""
from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import types
from typing import Any

from .tasks import STATES

_PROBE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# States whose waiters wake on their own or through the OS: never a proven leak.
_SELF_WAKING = {"sleep", "running", "ready", "socket read", "socket write", "socket accept",
                "socket connect", "stream read", "stream write", "subprocess wait", "executor",
                "idle loop", "I/O wait", "executor idle", "wait_for", "unknown", "waiting"}
_WAKE_STATES = {"Queue.get", "Queue.put", "Queue.join", "Event.wait", "Lock.acquire",
                "Condition.wait", "Semaphore.acquire", "Barrier.wait"}
_NOUN = {"Queue.get": "queue", "Queue.put": "queue", "Queue.join": "queue", "Event.wait": "event",
         "Lock.acquire": "lock", "Condition.wait": "condition", "Semaphore.acquire": "semaphore",
         "Barrier.wait": "barrier", "future": "future"}
_WHAT = {"queue": "put to it or read from it", "event": "set it", "lock": "release it",
         "condition": "notify it", "semaphore": "release it", "barrier": "reach it",
         "future": "complete it"}


def wake_object(state: str, frames: list, waiter: Any) -> Any:
    """The object whose change would wake a waiter in ``state`` (``frames`` innermost last)."""
    if state == "future":
        return waiter
    if state not in _WAKE_STATES:
        return None
    for frame in reversed(frames):
        if STATES.get(frame.f_code) == state:
            try:
                return frame.f_locals.get("self")
            except Exception:
                return None
    return None


class _Walk:
    """One bounded backwards walk from an object to see whether anything alive holds it."""

    def __init__(self, allowed: set, deadline: float, max_steps: int) -> None:
        self.allowed = allowed
        self.deadline = deadline
        self.max_steps = max_steps  # per object: the time budget is the global bound

    def only_waiters_hold(self, target: Any) -> bool | None:
        frontier = [target]
        seen = {id(target), id(frontier)}
        steps = self.max_steps
        while frontier:
            if steps <= 0 or time.monotonic() > self.deadline:
                return None
            steps -= 1
            obj = frontier.pop()
            referrers = gc.get_referrers(obj)
            seen.add(id(referrers))
            for ref in referrers:
                if id(ref) in seen or id(ref) in self.allowed:
                    continue
                if isinstance(ref, types.FrameType):
                    if ref.f_code.co_filename.startswith(_PROBE_DIR):
                        continue  # our own frames, looking at it right now
                    return False  # a frame that is not a waiter's: live code holds it
                if isinstance(ref, (types.ModuleType, type, asyncio.Task, threading.Thread,
                                    types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType,
                                    asyncio.AbstractEventLoop)):
                    return False
                seen.add(id(ref))
                frontier.append(ref)  # a container (dict, list, deque, cell, future, method...)
            del referrers
            time.sleep(0)  # let the host's threads (and its event loop) run between heap scans
        return True


def _chain_ids(owner: Any, frames: list) -> set[int]:
    """Ids of what a waiter is made of: itself, its frames, its coroutine chain, its Thread."""
    ids = {id(owner)}
    ids.update(id(f) for f in frames)
    coro = getattr(owner, "get_coro", None)
    node = coro() if coro is not None else None
    for _ in range(64):
        if node is None:
            break
        ids.add(id(node))
        node = getattr(node, "cr_await", None) or getattr(node, "gi_yieldfrom", None)
    if isinstance(owner, threading.Thread):
        for attr in ("_target", "_args", "__dict__"):
            value = getattr(owner, attr, None)
            if value is not None:
                ids.add(id(value))
    return ids


def unreachable(members: dict[str, list], states: dict[str, str], dependents: dict[str, list] | None = None,
                budget_s: float = 2.0, max_steps: int = 100) -> dict[str, dict]:
    """``{group id: {"proven", "open", "unknown", "objects", "object"}}``.

    ``members`` maps a group to its waiters ``(owner, frames, wake object)`` (tasks or threads);
    ``dependents`` maps a group to tasks that wait only on other tasks, ``(task, frames, ids of
    the awaited tasks)`` — a ``gather`` over the consumers of an orphaned queue, say.

    A waiter's own references to an object only do not count if that waiter is itself dead: a
    task holding a lock while it waits for a future may still release it if the future can be
    completed.  So every waiter starts assumed dead; the walks run with the assumed-dead
    waiters allowed as holders; the waiters not proven dead by those walks (and the dependents
    awaiting a live task) are dropped from the assumption; and this repeats until nothing
    changes: the greatest consistent set of dead waiters (cycles of waiters included).
    """
    deadline = time.monotonic() + budget_s
    objects: dict[int, Any] = {}
    waiters: list[tuple] = []  # (gid, owner, chain ids, object key | None, awaited ids | None)
    for gid, items in members.items():
        if states[gid] in _SELF_WAKING:
            continue
        for owner, frames, obj in items:
            if obj is not None:
                objects[id(obj)] = obj
                waiters.append((gid, owner, _chain_ids(owner, frames), id(obj), None))
    for gid, items in (dependents or {}).items():
        for owner, frames, awaited in items:
            if awaited:
                waiters.append((gid, owner, _chain_ids(owner, frames), None, awaited))
    assumed = set(range(len(waiters)))
    verdicts: dict[int, bool | None] = {}
    while True:
        allowed: set[int] = set()
        for i in assumed:
            allowed |= waiters[i][2]
        walker = _Walk(allowed, deadline, max_steps)
        wanted = {waiters[i][3] for i in assumed if waiters[i][3] is not None}
        verdicts = {key: walker.only_waiters_hold(objects[key]) for key in wanted}
        dead = {i for i in assumed if waiters[i][3] is not None and verdicts.get(waiters[i][3])}
        dependents_left = {i for i in assumed if waiters[i][4] is not None}
        while True:  # dependents are dead when everything they await is dead
            owners = {id(waiters[i][1]) for i in dead | dependents_left}
            keep = {i for i in dependents_left if waiters[i][4] <= owners}
            if keep == dependents_left:
                break
            dependents_left = keep
        dead |= dependents_left
        if dead == assumed:
            break
        assumed = dead
    out: dict[str, dict] = {}
    for i, (gid, _owner, _ids, key, _awaited) in enumerate(waiters):
        noun = "tasks" if key is None else _NOUN.get(states[gid], "object")
        e = out.setdefault(gid, {"proven": 0, "open": 0, "unknown": 0, "objects": set(), "object": noun})
        if i in assumed:
            e["proven"] += 1
            if key is not None:
                e["objects"].add(key)
        elif key is not None and verdicts.get(key, False) is None:
            e["unknown"] += 1
        else:
            e["open"] += 1
    for e in out.values():
        e["objects"] = len(e["objects"])
    return out


def reason_unreachable(count: int, kind: str, state: str, blocked: float, noun: str, objects: int) -> str:
    """The reasoning of a proven leak, in words."""
    kinds = kind if count == 1 else kind + "s"
    if objects == 1:
        held = (f"the {noun} is referenced only by the {count} {kinds} waiting on it" if count > 1
                else f"the {noun} is referenced only by the {kind} waiting on it")
    else:
        held = f"each of the {objects} {noun}s is referenced only by the {kinds} waiting on it"
    return f"blocked {_duration(blocked)} on {state}; {held}: nothing else can ever {_WHAT.get(noun, 'wake it')}"


def growth(history: list[tuple[float, dict]], gid: str, min_span: float = 20.0) -> dict | None:
    """Steady growth of one group across the probe's history: ``{rate_per_min, first, last, span_s, rises, steps}``."""
    points = [(t, counts.get(gid, 0)) for t, counts in history]
    if len(points) < 3 or points[-1][0] - points[0][0] < min_span:
        return None
    rises = sum(1 for (_, a), (_, b) in zip(points, points[1:]) if b > a)
    falls = sum(1 for (_, a), (_, b) in zip(points, points[1:]) if b < a)
    first, last = points[0][1], points[-1][1]
    steps = len(points) - 1
    if last - first < 3 or rises < steps / 2 or falls > steps / 4:
        return None
    span = points[-1][0] - points[0][0]
    return {"rate_per_min": round((last - first) / span * 60, 2), "first": first, "last": last,
            "span_s": round(span, 1), "rises": rises, "steps": steps}


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
