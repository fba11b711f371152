"""Waits, by what is waited on: every queue, lock, semaphore, event or condition that at least one
task or thread waits on, with its own numbers (size and maxsize, waiting getters and putters,
or whether it is held and how many wait) and how they moved since the last look.

The objects are found the way the leak proof finds them (``waiters.task_target`` and
``thread_target``: ``self`` of the primitive's frame), only for groups whose state is one of
``waiters.PRIMITIVES``.  What a task waits on is kept while its waiter is the same (a parked
task is looked at once), and the numbers are read from the objects' own fields, never by calling
into them (no lock taken, nothing woken).  The last look is kept per object, weakly: the deltas
are since the probe's previous ``waits`` reply, whoever asked for it.
"""
from __future__ import annotations

import asyncio
import collections
import queue
import sys
import threading
import time
import weakref
from typing import Any

from .foreign_frames import paused
from .frames import own_frame
from .handoff import Pacer
from .registry import CHUNK
from .task_pass import Pass
from .waiters import PRIMITIVES, known_target_refs, task_target, thread_target

MAX_WAITS = 200  # objects listed in a reply, most waiters first


def _count(waiters: Any) -> int:
    try:
        return len(waiters) if waiters is not None else 0
    except Exception:
        return 0


def numbers(obj: Any) -> dict:
    """The object's own numbers, read from its fields: ``size``/``maxsize``/``getters``/
    ``putters``/``unfinished`` for queues, ``value``/``locked``/``set``/``waiters`` for the rest."""
    out: dict = {}
    try:
        if isinstance(obj, asyncio.Queue):
            out.update(size=len(obj._queue), maxsize=obj._maxsize, getters=_count(obj._getters),
                       putters=_count(obj._putters), unfinished=obj._unfinished_tasks)
        elif isinstance(obj, queue.Queue):
            out.update(size=len(obj.queue), maxsize=obj.maxsize, getters=_count(obj.not_empty._waiters),
                       putters=_count(obj.not_full._waiters), unfinished=obj.unfinished_tasks)
        elif isinstance(obj, asyncio.Semaphore):
            out.update(value=obj._value, waiters=_count(obj._waiters), bound=getattr(obj, "_bound_value", None))
        elif isinstance(obj, threading.Semaphore):
            out.update(value=obj._value, waiters=_count(obj._cond._waiters),
                       bound=getattr(obj, "_initial_value", None))
        elif isinstance(obj, asyncio.Lock):
            out.update(locked=bool(obj._locked), waiters=_count(obj._waiters))
        elif isinstance(obj, asyncio.Event):
            out.update(set=bool(obj._value), waiters=_count(obj._waiters))
        elif isinstance(obj, threading.Event):
            out.update(set=bool(obj._flag), waiters=_count(obj._cond._waiters))
        elif isinstance(obj, (asyncio.Condition, threading.Condition)):
            lock = obj._lock
            locked = getattr(lock, "_locked", None)
            out.update(locked=bool(lock.locked() if locked is None else locked), waiters=_count(obj._waiters))
        elif hasattr(obj, "_parties"):  # asyncio.Barrier (3.11+), threading.Barrier
            out.update(waiters=getattr(obj, "_count", None), parties=obj._parties)
    except Exception:
        pass
    return out


MOVED = ("size", "getters", "putters", "unfinished", "waiters", "value")


class Waits:
    """What tasks and threads wait on, looked at on request.  Used only from the probe thread."""

    def __init__(self) -> None:
        self._last: dict = {}  # id(object) -> (weak reference, time, numbers)
        self._last_at: float | None = None

    def look(self, found: Pass, pace: Pacer) -> dict:
        """What a task waits on is kept in its record (``info.target``, a weak reference
        shared by all the object's waiters), which a pass clears when the task's waiter
        changes: dicts of a million entries by task, made anew by each look, were rehashed
        in one go in all their shards at once and held the loop up 13-30 ms at a time."""
        now = time.monotonic()
        objects: dict = {}  # id -> [obj, {state: count}, {group id: count}, frame]
        refs: dict = {}  # id -> a weak reference to the object (None: not referenceable)

        def add(obj: Any, state: str, gid: str, frame: Any, count: int = 1) -> None:
            entry = objects.get(id(obj))
            if entry is None:
                entry = objects[id(obj)] = [obj, {}, {}, frame]
            entry[1][state] = entry[1].get(state, 0) + count
            entry[2][gid] = entry[2].get(gid, 0) + count

        for group in found.groups.values():
            key = group.key
            if key.kind != "task" or key.state not in PRIMITIVES:
                continue
            counts: dict = {}  # id -> [obj, waiters of this group on it]
            for chunk in group.members.slices(CHUNK):
                pace()
                for obj, k in self._counted(chunk, key.state, refs, pace):
                    entry = counts.get(id(obj))
                    if entry is None:
                        counts[id(obj)] = [obj, k]
                    else:
                        entry[1] += k
            frame = own_frame(key.stack)
            for obj, count in counts.values():
                add(obj, key.state, key.id, frame, count)
        self._threads(found, add)
        out = []
        last = {}
        since = None if self._last_at is None else round(now - self._last_at, 3)
        for oid, (obj, states, groups, frame) in objects.items():
            nums = numbers(obj)
            waiting = sum(states.values())
            before = self._last.get(oid)
            moved = None
            if before is not None and before[0]() is obj:
                moved = {k: nums[k] - before[2][k] for k in MOVED
                         if isinstance(nums.get(k), int) and isinstance(before[2].get(k), int)}
            try:
                last[oid] = (weakref.ref(obj), now, nums)
            except TypeError:
                pass
            kind = type(obj)
            out.append({
                "id": f"{oid:x}",
                "kind": f"{kind.__module__}.{kind.__qualname__}",
                "waiting": waiting,
                "states": states,
                "groups": sorted(groups, key=lambda g: -groups[g])[:10],
                "frame": frame,
                "numbers": nums,
                "moved": moved,
            })
        self._last, self._last_at = last, now
        out.sort(key=lambda w: (-w["waiting"], -(w["numbers"].get("size") or 0), w["id"]))
        return {"time": time.time(), "since_s": since, "total": len(out), "waits": out[:MAX_WAITS]}

    @classmethod
    def _counted(cls, chunk: list, state: str, refs: dict, pace: Pacer) -> list[tuple[Any, int]]:
        """The objects the tasks of ``chunk`` (records) wait on, each with how many of them.
        The common case in C calls: every target kept by the pass that walked its chain, in a
        reference its waiters share; else the records are looked at one at a time."""
        kept = known_target_refs(chunk)
        if kept is not None:
            targets = [(ref(), k) for ref, k in collections.Counter(kept).items()]
            if all(obj for obj, _k in targets):
                return targets
        found = []
        for n, info in enumerate(chunk):
            if n and not n & 255:
                pace()
            obj = cls._target(info, state, refs)
            if obj is not None:
                found.append(obj)
        first = {id(obj): obj for obj in found}
        return [(first[oid], k) for oid, k in collections.Counter(map(id, found)).items()]

    @staticmethod
    def _target(info: Any, state: str, refs: dict) -> Any:
        """What the task of ``info`` waits on, found here if no pass kept it (``info.target``,
        then set: ``refs`` holds one weak reference per object); None if nothing."""
        task = info()
        if task is None:
            return None
        ref = info.target
        obj = ref() if ref is not None else None
        if obj is None:
            obj = task_target(task, state)
            if obj is None:
                return None
            ref = refs.get(id(obj), False)
            if ref is False:
                try:
                    ref = refs[id(obj)] = weakref.ref(obj)
                except TypeError:
                    ref = refs[id(obj)] = None
            info.target = ref
        return obj

    @staticmethod
    def _threads(found: Pass, add: Any) -> None:
        """Threads blocked on a primitive: their frames are held only here (see threads.current)."""
        rows = [r for r in found.thread_rows if r["key"].state in PRIMITIVES]
        if not rows:
            return
        with paused:  # 3.11: see foreign_frames
            frames_of = sys._current_frames()
            try:
                for row in rows:
                    frames, frame = [], frames_of.get(row["ident"])
                    while frame is not None:
                        frames.append(frame)
                        frame = frame.f_back
                    frames.reverse()
                    key = row["key"]
                    obj = thread_target(key.state, frames)
                    frames.clear()
                    if obj is not None:
                        add(obj, key.state, key.id, own_frame(key.stack))
            finally:
                frames_of.clear()
                frame = None

