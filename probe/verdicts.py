"""Leak verdicts: which groups grow, which have been stuck for long, and which are *proven* leaks.

A task (or thread) blocked on a queue, event, lock, condition, semaphore or bare future can only
be woken by code that can reach that object.  If nothing references the object but the waiters
themselves, nothing can ever wake them: the leak is proven, not suspected.

The proof is done with reference counts, the way the garbage collector finds garbage, but on a
small graph instead of the whole heap: the waiters' own objects (task, coroutine chain, frames;
thread, frames) are the *holders*; the objects they wait on are the *targets*; containers the
holders reach (an instance whose attribute is the queue, a bound method, a closure's cell, a
frame's locals dict) are *nodes*, found by following references forward from the holders a few
steps.  Every reference to a target or node that does not come from a holder or a node is
counted as outside (``sys.getrefcount`` minus the references found), and whatever an outside-held
node reaches is reachable from outside too.  A target left unreached is held only by its
waiters.  References held by C code or untracked objects count as outside, so the proof never
rests on what the collector cannot see; and no step scans the heap, so the cost grows with the
waiters, not with the heap, and the pass gives the GIL away every 2 ms like every other.

A waiter's own references only count as harmless if that waiter is itself dead (a task holding
a lock while it waits on a future may release it if the future completes): every waiter starts
assumed dead, waiters whose target turns out reachable are dropped from the assumption, and this
repeats until nothing changes (the greatest consistent set, so cycles of waiters are found).
Waiters that only await other tasks (a ``gather``) are dead when everything they await is.
"""
from __future__ import annotations

import array
import asyncio
import collections
import contextvars
import gc
import itertools
import operator
import queue as queue_mod
import sys
import threading
import time
import types
import weakref
from typing import Any, Callable

from .frames import own_frame
from .handoff import Pacer
from .keys import GroupKey
from .registry import CHUNK
from .state import State
from .task_pass import Pass
from .tasks import state_of

# States whose waiters wake on their own or through the OS: never a proven leak.
SELF_WAKING = {"sleep", "running", "ready", "socket read", "socket write", "socket accept",
               "socket connect", "stream read", "stream write", "subprocess wait", "executor",
               "idle loop", "I/O wait", "executor idle", "wait_for", "unknown", "waiting"}
_NOUN = {"Queue.get": "queue", "Queue.put": "queue", "Queue.join": "queue", "Event.wait": "event",
         "Lock.acquire": "lock", "Condition.wait": "condition", "Semaphore.acquire": "semaphore",
         "Barrier.wait": "barrier", "future": "future"}
_WHAT = {"queue": "put to it or read from it", "event": "set it", "lock": "release it",
         "condition": "notify it", "semaphore": "release it", "barrier": "reach it",
         "future": "complete it"}
# The primitive a waiter in each state waits on: ``self`` of the primitive's frame.
_PRIMITIVES = {
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
_WRAPPERS = ("async_generator_asend", "async_generator_athrow", "coroutine_wrapper")
# Objects that are alive in their own right, or lead nowhere a waiter's target could hide:
# never followed (a reference from one of them counts as from outside).
_OPAQUE = (types.ModuleType, type, types.CodeType, types.FrameType, _Coro, _Gen, _AGen,
           asyncio.Future, threading.Thread, asyncio.AbstractEventLoop, weakref.ref, contextvars.Context,
           types.BuiltinFunctionType, types.FunctionType, str, bytes, int, float, complex, bool,
           type(None))
_SIZED = (dict, list, tuple, set, frozenset, collections.deque)
# Types (by name: C types asyncio does not export) whose objects are a waiter's own when they
# are met (holders), and lead nowhere else: the object a coroutine awaits a future through,
# and async generators' wrappers.
_OPAQUE_NAMES = frozenset(("FutureIter", "_PyFutureIter") + _WRAPPERS)
MAX_DEPTH = 3  # steps followed from a holder
MAX_CONTAINER = 10_000  # a bigger container is not followed (one C call would hold the GIL)
MAX_NODES = 200_000
SAMPLE = 32  # waiters counted of a crowd on one object before judging it from them (see count)
_MISSING = (-1).__ne__


class Proof:
    """One proof over a set of waiters: add them (``task``, ``thread``, ``dependent``), then
    ``run``.  Only this object holds the targets and nodes, once each, so that their
    reference counts can be accounted for exactly.

    Nothing is kept per waiter but numbers in arrays: a task's chain is walked again when its
    references are counted (a list per waiter kept until then would be 100,000 containers for
    the collector, and their promotion set off full collections of the host's heap)."""

    def __init__(self, pace: Callable[[], None], budget_s: float, task_of: Callable[[int], Any]) -> None:
        self.pace = pace
        self.deadline = time.monotonic() + budget_s
        self.task_of = task_of  # source number -> the task (None once it is gone)
        self.objs: list = []  # targets, then nodes as they are found; held once each, here
        self.index: dict[int, int] = {}  # id -> position in objs
        self.depth: list[int] = []  # 0 for targets
        self.edges: list = []  # per object: positions it references (nodes only)
        self.targets = 0
        self._followed = 0
        # Per waiter: its group, what owns its fate (a target's position, or for a waiter that
        # only awaits other tasks a number past the targets), its state, where it comes from.
        self.group_of = array.array("q")
        self.owner_of = array.array("q")
        self.source = array.array("q")  # task: source number; thread: -1 - its entry in threads
        self.states: list[str] = []
        self.state_of = array.array("q")
        self.awaits: list[tuple] = []  # per dependent: waiter numbers it awaits
        self.dependents: list[int] = []  # their waiter numbers
        self.threads: list = []  # (holders, extra references) per thread waiter: few
        # Holders' references into objs, flattened: (waiter, object) pairs.
        self.ref_waiter = array.array("q")
        self.ref_obj = array.array("q")
        self.counted = bytearray()  # per waiter: its references were counted
        self.to_obj: collections.Counter = collections.Counter()  # references found, per object
        self.open: set[int] = set()  # owners judged held from outside from a sample
        self.out_of_time = False
        self.rc: list = []  # reference counts the solution used
        self._modules = {id(m.__dict__) for m in list(sys.modules.values()) if hasattr(m, "__dict__")}
        self._holders: set[int] = set()  # ids of holders that could otherwise be taken for nodes
        self._expandable: dict[type, bool] = {}

    # -- waiters -------------------------------------------------------------------------
    def _target(self, obj: Any) -> int:
        i = self.index.get(id(obj))
        if i is None:
            i = self.index[id(obj)] = len(self.objs)
            self.objs.append(obj)
            self.depth.append(0)
            self.edges.append(None)
            self.targets += 1
        return i

    def _state(self, state: str) -> int:
        try:
            return self.states.index(state)
        except ValueError:
            self.states.append(state)
            return len(self.states) - 1

    def _waiter(self, group: int, owner: int, state: str | None, source: int) -> int:
        w = len(self.group_of)
        self.group_of.append(group)
        self.owner_of.append(owner)
        self.state_of.append(self._state(state) if state else -1)
        self.source.append(source)
        self.counted.append(0)
        return w

    def task(self, group: int, state: str, task: Any, source: int) -> int | None:
        """A task blocked in ``state``, found again later as ``task_of(source)``.  None when
        it is not waiting on anything a proof can settle."""
        target = _task_target(task, state)
        if target is None:
            return None
        owner = self._target(target)
        target = None
        return self._waiter(group, owner, state, source)

    def dependent(self, group: int, source: int, awaited: tuple) -> int:
        """A task that only awaits other tasks (``awaited``: their waiter numbers)."""
        self.awaits.append(tuple(awaited))
        w = self._waiter(group, -len(self.awaits), None, source)  # past the targets, once known
        self.dependents.append(w)
        return w

    def thread(self, group: int, state: str, thread: threading.Thread, frames: list) -> int | None:
        """A thread blocked in ``state`` (``frames`` innermost last).  Only where every reference
        its frames hold can be counted: 3.11 to 3.13 (see ``THREAD_PROOFS``)."""
        if not THREAD_PROOFS:
            return None
        owner = self._thread_target(state, frames)
        if owner is None:
            return None
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
                    self._holders.add(id(values))
            except Exception:
                pass
            values = None
        self.threads.append((holders, extra))
        return self._waiter(group, owner, state, -len(self.threads))

    def _thread_target(self, state: str, frames: list) -> int | None:
        types_ = _PRIMITIVES.get(state)
        if not types_:
            return None
        for frame in reversed(frames):
            if state_of(frame.f_code) == state:
                try:
                    found = frame.f_locals.get("self")
                except Exception:
                    return None
                return self._target(found) if isinstance(found, types_) else None
        return None

    # -- counting --------------------------------------------------------------------------
    def _refs(self, refs: list, depth: int) -> list:
        """Positions in objs of ``refs`` (one per reference); new nodes for followable ones.
        The look-ups are C-level maps: most references (code, names, futures) lead nowhere."""
        index, objs = self.index, self.objs
        found = list(filter(_MISSING, map(index.get, map(id, refs), itertools.repeat(-1))))
        if depth > MAX_DEPTH or len(objs) >= MAX_NODES:
            return found
        expandable = self._expandable
        kinds = set(map(type, refs))
        for kind in kinds.difference(expandable):
            expandable[kind] = not issubclass(kind, _OPAQUE) and kind.__name__ not in _OPAQUE_NAMES
        if not any(map(expandable.__getitem__, kinds)):
            return found
        new: set[int] = set()
        for r in refs:
            if not expandable[type(r)]:
                continue
            i = index.get(id(r))
            if i is None:
                if len(objs) >= MAX_NODES or not self._followable(r):
                    continue
                i = index[id(r)] = len(objs)
                objs.append(r)
                self.depth.append(depth)
                self.edges.append(None)
                new.add(i)
            elif i in new:
                found.append(i)  # a second reference to a node made in this call
                continue
            else:
                continue  # counted above
            found.append(i)
        return found

    def _followable(self, obj: Any) -> bool:
        if id(obj) in self._modules or id(obj) in self._holders or not gc.is_tracked(obj):
            return False
        try:
            return not (isinstance(obj, _SIZED) and len(obj) > MAX_CONTAINER)
        except Exception:
            return False

    def _holders_of(self, w: int) -> tuple[list, list]:
        source = self.source[w]
        if source < 0:
            return self.threads[-1 - source]
        task = self.task_of(source)
        if task is None:
            return [], []
        state = self.state_of[w]
        holders = _task_chain(task, self.states[state] if state >= 0 else None)
        return holders, []

    def count(self) -> None:
        """Count every holder's references into targets and nodes, following nodes as they are
        found.  A node is found at its first reference, so no holder counted earlier can have
        referenced it.  Owners with the fewest waiters go first, so that when the deadline
        stops the count, the small sets (the likely leaks) are settled.

        A crowd on one object (more than ``2 * SAMPLE`` waiters) is first judged from a
        sample, its groups taken in turn: when every sampled waiter of each group gave the same
        count of references to the object (directly or through nodes it led to), and the object
        has more references than all its waiters would then account for with everything else
        counted so far, something else holds it: its waiters are left open (never proven)
        without counting the rest.  Otherwise the whole crowd is counted, so a proof always
        rests on a full count."""
        pace, objs, owner_of, group_of = self.pace, self.objs, self.owner_of, self.group_of
        members: dict[int, dict] = {}  # owner -> group -> waiters
        for w, owner in enumerate(owner_of):
            members.setdefault(owner, {}).setdefault(group_of[w], array.array("q")).append(w)
            if not w & 4095:
                pace()
        self.open = set()
        n = 0
        for owner, groups in sorted(members.items(), key=lambda item: sum(map(len, item[1].values()))):
            total = sum(map(len, groups.values()))
            crowd = owner >= 0 and total > 2 * SAMPLE
            counts: dict[int, set] = {g: set() for g in groups}
            mine_total = 0
            order = (w for ws in itertools.zip_longest(*groups.values()) for w in ws if w is not None)
            for k, w in enumerate(order):
                if not n & 63:
                    pace()
                    if time.monotonic() > self.deadline:
                        self.out_of_time = True
                        self._finish()
                        return
                n += 1
                holders, extra = self._holders_of(w)
                before = len(objs)
                found = self._refs(gc.get_referents(*holders) + extra if extra else gc.get_referents(*holders), 1)
                holders = extra = None
                if found:
                    self.ref_waiter.extend(itertools.repeat(w, len(found)))
                    self.ref_obj.extend(found)
                    self.to_obj.update(found)
                self.counted[w] = 1
                if self._followed < len(objs):
                    self._follow()
                if not crowd:
                    continue
                mine = found.count(owner) + sum(self.edges[i].count(owner) for i in range(before, len(objs)))
                mine_total += mine
                counts[group_of[w]].add(mine)
                if k + 1 >= SAMPLE and (k + 1) % SAMPLE == 0 and self._held_outside(owner, groups, counts, mine_total):
                    self.open.add(owner)
                    break
        self._finish()

    def _held_outside(self, owner: int, groups: dict, counts: dict, mine_total: int) -> bool:
        """Whether the sample says a crowd's object is held from outside (see count)."""
        if any(len(c) != 1 for c in counts.values()):
            return False  # a group not sampled yet, or waiters of one group that differ
        expected = sum(next(iter(counts[g])) * len(ws) for g, ws in groups.items())
        others = self.to_obj[owner] - mine_total  # holders of other owners, and nodes
        return sys.getrefcount(self.objs[owner]) - 2 > expected + others

    def _finish(self) -> None:
        self.threads.clear()
        self._holders.clear()

    def _follow(self) -> None:
        """Reference lists of the nodes found so far (a node's own references may be new nodes)."""
        edges, objs, depth = self.edges, self.objs, self.depth
        i = max(self._followed, self.targets)
        while i < len(objs):
            if edges[i] is None:
                edges[i] = self._refs(gc.get_referents(objs[i]), depth[i] + 1)
                self.to_obj.update(edges[i])
            i += 1
            if not i & 255:
                self.pace()
        self._followed = i

    # -- solving ---------------------------------------------------------------------------
    def run(self) -> list:
        """Count, then solve: per waiter True (proven dead), False (may be woken), None (not
        settled: out of time, or what it depends on changed while the proof ran)."""
        self.count()
        pace, targets = self.pace, self.targets
        owners = targets + len(self.awaits)
        for w in self.dependents:
            self.owner_of[w] = targets - self.owner_of[w] - 1
        # Each owner's references into objs, counted a slice at a time.
        stride = len(self.objs) + 1
        pairs: collections.Counter = collections.Counter()
        for start in range(0, len(self.ref_obj), 8192):
            owner_keys = map(self.owner_of.__getitem__, self.ref_waiter[start:start + 8192])
            pairs.update(map(operator.add, map(operator.mul, owner_keys, itertools.repeat(stride)),
                             self.ref_obj[start:start + 8192]))
            pace()
        by_owner: dict[int, list] = {}
        for key, n in pairs.items():
            by_owner.setdefault(key // stride, []).append((key % stride, n))
        pairs.clear()
        # Owners some of whose waiters were not counted (out of time) cannot be judged, and
        # their counted waiters are not harmless holders either.
        judged = bytearray(b"\x01" * owners)
        uncounted: set = set()
        for start in range(0, len(self.counted), CHUNK):
            uncounted.update(itertools.compress(self.owner_of[start:start + CHUNK],
                                                map(operator.not_, self.counted[start:start + CHUNK])))
            pace()
        for owner in uncounted - self.open:
            judged[owner] = 0
        for owner in self.open:  # judged held from outside: never dead
            judged[owner] = 1
        self.open_owners = bytearray(owners)
        for owner in self.open:
            self.open_owners[owner] = 1
        unsure = bytearray(len(self.objs))  # objects whose counts changed during the proof
        for _round in range(8):
            dead = self._solve(judged, by_owner, unsure)
            if not self._recheck(dead, unsure):
                break
        else:
            dead = bytearray(owners)
        # Per waiter, from its owner: True (dead), False (judged, alive), None (not judged).
        outcome = [True if d else (False if j else None) for d, j in zip(dead, judged)]
        verdict: list = []
        for start in range(0, len(self.owner_of), CHUNK):
            verdict.extend(map(outcome.__getitem__, self.owner_of[start:start + CHUNK]))
            pace()
        return verdict

    def _solve(self, judged: bytearray, by_owner: dict, unsure: bytearray) -> bytearray:
        """The greatest set of dead owners consistent with the counts."""
        targets = self.targets
        # Every reference into objs the proof knows of but the holders': objs itself,
        # getrefcount's argument, and the nodes' own references.
        known = [2] * len(self.objs)
        for refs in self.edges:
            for i in refs or ():
                known[i] += 1
        self.rc = list(map(sys.getrefcount, self.objs))
        outside = [rc - k for rc, k in zip(self.rc, known)]
        held = [0] * len(self.objs)
        live = {owner: refs for owner, refs in by_owner.items()}
        for owner, refs in live.items():
            for i, n in refs:
                held[i] += n
        dead = bytearray(judged)
        for owner in self.open:
            dead[owner] = 0
        while True:
            # An object with more references found than it has changed meanwhile: from outside.
            reached = self._reached([1 if unsure[i] or o < h else o - h
                                     for i, (o, h) in enumerate(zip(outside, held))])
            for t in range(targets):
                if dead[t] and reached[t]:
                    dead[t] = 0
            changed = True
            while changed:  # dependents are dead when everything they await is dead
                changed = False
                for d, awaited in enumerate(self.awaits):
                    owner = targets + d
                    if dead[owner] and not all(dead[self.owner_of[a]] for a in awaited):
                        dead[owner] = 0
                        changed = True
            dropped = [owner for owner in live if not dead[owner]]
            if not dropped:
                return dead
            for owner in dropped:  # no longer harmless: their references count as outside
                for i, n in live.pop(owner):
                    held[i] -= n

    def _recheck(self, dead: bytearray, unsure: bytearray) -> bool:
        """Whether anything a proof rests on changed since it was counted: the targets of dead
        owners and the nodes that reach them must have the same references and counts now.
        Changed ones are marked ``unsure`` (held from outside) for another round."""
        support = {t for t in range(self.targets) if dead[t]}
        if not support:
            return False
        changed = False
        for i in range(self.targets, len(self.objs)):  # nodes whose references lead into support
            refs = self.edges[i]
            if refs and not unsure[i] and support.intersection(refs):
                support.add(i)
        rc = list(map(sys.getrefcount, self.objs))
        for i in support:
            same = rc[i] == self.rc[i]
            if same and i >= self.targets:
                same = self._refs(gc.get_referents(self.objs[i]), MAX_DEPTH + 1) == self.edges[i]
            if not same:
                unsure[i] = 1
                changed = True
        return changed

    def _reached(self, outside: list) -> bytearray:
        """Objects reachable from an object held from outside, through nodes' references."""
        reached = bytearray(len(self.objs))
        stack = [i for i, o in enumerate(outside) if o > 0]
        for i in stack:
            reached[i] = 1
        edges = self.edges
        while stack:
            i = stack.pop()
            for j in edges[i] or ():
                if not reached[j]:
                    reached[j] = 1
                    stack.append(j)
        return reached

    def close(self) -> None:
        """Let go of everything the proof holds (targets, nodes, holders)."""
        self.objs.clear()
        self.edges.clear()
        self.threads.clear()
        self.index.clear()


def _task_target(task: Any, state: str) -> Any:
    """What a task blocked in ``state`` waits on: its future, or the primitive (``self`` of
    the primitive's frame, its first local).  No frame object is made on 3.11+."""
    if state == "future":
        return getattr(task, "_fut_waiter", None)
    types_ = _PRIMITIVES.get(state)
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
        elif obj is not None and kind.__name__ in _WRAPPERS:
            obj = next((r for r in gc.get_referents(obj) if type(r) in (_Coro, _Gen, _AGen)), None)
            continue
        else:
            return None
        if state_of(code) == state:
            where = obj if _LOCALS_IN_COROUTINE else (obj.cr_frame if kind is _Coro else
                                                     obj.gi_frame if kind is _Gen else obj.ag_frame)
            for r in gc.get_referents(where):
                if isinstance(r, types_):
                    return r
            return None
        obj = nxt
    return None


def _task_chain(task: Any, state: str | None) -> list:
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
        elif obj is not None and kind.__name__ in _WRAPPERS:
            holders.append(obj)  # followed as a holder, never as a node (see _OPAQUE_TYPES)
            obj = next((r for r in gc.get_referents(obj) if type(r) in (_Coro, _Gen, _AGen)), None)
        else:
            if state == "future" and obj is not None:
                holders.append(obj)
            break
    return [h for h in holders if h is not None]


def reason_unreachable(count: int, kind: str, state: str, blocked: float, noun: str, objects: int) -> str:
    """The reasoning of a proven leak, in words."""
    kinds = kind if count == 1 else kind + "s"
    if objects == 1:
        held = (f"the {noun} is referenced only by the {count} {kinds} waiting on it" if count > 1
                else f"the {noun} is referenced only by the {kind} waiting on it")
    else:
        held = f"each of the {objects} {noun}s is referenced only by the {kinds} waiting on it"
    return f"blocked {duration(blocked)} on {state}; {held}: nothing else can ever {_WHAT.get(noun, 'wake it')}"


def reason_dependent(state: str, blocked: float) -> str:
    return f"blocked {duration(blocked)} on {state}; it awaits only tasks that are proven leaks, so it can never resume"


def reason_growing(grew: dict) -> str:
    return (f"grew from {grew['first']} to {grew['last']} in {duration(grew['span_s'])} "
            f"({grew['rate_per_min']:g}/min), rising in {grew['rises']} of {grew['steps']} samples")


def reason_stuck(count: int, state: str, blocked: float) -> str:
    return f"all {count} blocked on {state} for at least {duration(blocked)}"


def reason_some(count: int, total: int, reason: str) -> str:
    """``reason`` for ``count`` of a group of ``total``."""
    return f"{count} of the {total}: " + reason if count < total else reason


def reason_unsettled(out_of_time: bool, budget_s: float) -> str:
    """Why the proof left waiters unjudged."""
    if out_of_time:
        return f"the proof ran out of its {budget_s:g}s budget (ask with a bigger budget: tasktop dump --budget)"
    return "they moved while the proof ran"


def noun_of(state: str) -> str:
    return _NOUN.get(state, "object")


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


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


STUCK_S = 60.0  # seconds every member of a group must have been blocked to be called stuck


def gather(state: State, budget_s: float = 2.0) -> dict:
    """Leak verdicts for the current groups: proven (unreachable), growing, stuck.

    The proof is paced like every pass and bounded by ``budget_s``; what it could not settle
    in time is reported under ``unsettled``."""
    found = state.collect()
    now = time.monotonic()
    pace = Pacer(state.handoff)
    gathering = _Gathering(found, pace, budget_s)
    proof = gathering.proof
    try:
        tally = gathering.judge()
    finally:
        proof.close()
    unsettled = _unsettled(tally, proof, budget_s)
    return {"verdicts": _verdict_rows(found, tally, list(state.history)), "time": time.time(),
            "history_s": round(now - state.history[0][0], 1) if state.history else 0.0,
            "unsettled": unsettled}


class _Gathering:
    """The waiters of one pass's groups, added to one proof.  A task waiter's source number is
    ``(list number << 32) | index``: the members list of its group (``lists``) and its place
    there, so that no per-waiter object is made."""

    def __init__(self, found: Pass, pace: Pacer, budget_s: float) -> None:
        self.found, self.pace, self.budget_s = found, pace, budget_s
        self.lists: list = []  # members lists of the task groups looked at
        lists = self.lists
        self.proof = Proof(pace, budget_s, lambda s: lists[s >> 32][s & 0xFFFFFFFF]())
        self.group_ids: list[str] = []
        self._number: dict[str, int] = {}
        self.unexamined: dict[str, int] = {}  # group id -> waiters the budget left unlooked at
        self.partial: set[str] = set()  # groups only some of whose waiters were looked at

    def group_number(self, key: GroupKey) -> int:
        n = self._number.get(key.id)
        if n is None:
            n = self._number[key.id] = len(self.group_ids)
            self.group_ids.append(key.id)
        return n

    def record(self, source: int) -> Any:
        return self.lists[source >> 32][source & 0xFFFFFFFF]

    def judge(self) -> dict:
        """Add every waiter, run the proof, and tally it per group id (see ``_tally``)."""
        proof, pace = self.proof, self.pace
        threads = _thread_waiters(self.found, proof, self.group_number)
        waiter_seqs, dependents = self._task_waiters()
        self._add_dependents(waiter_seqs, dependents)
        del waiter_seqs, dependents
        verdict = proof.run()
        # A verdict stands only if its waiter did not move while the proof ran.
        record = self.record
        for w in itertools.compress(range(len(verdict)), verdict):
            source = proof.source[w]
            if not (_thread_unchanged(*threads[w]) if source < 0 else _task_unchanged(record(source))):
                verdict[w] = None
        tally = _tally(proof, verdict, self.group_ids, pace)
        for gid in self.partial:  # the waiters left out may hold what the others wait on
            e = tally.get(gid)
            if e is not None:
                e["unknown"] += e["open"]
                e["open"] = 0
        for gid, count in self.unexamined.items():
            tally.setdefault(gid, {"proven": 0, "open": 0, "unknown": 0, "objects": set()})["unknown"] += count
        return tally

    def _task_waiters(self) -> tuple[array.array, list]:
        """Add the blocked tasks, groups smallest first: when the budget runs out, the small
        ones (the likely leaks) have been looked at; waiters of the groups not reached stay
        unsettled.  ``(seq, waiter) pairs flattened, dependents)``: a dependent is ``(source,
        group number, awaited seqs)``, a task that only awaits other tasks."""
        proof, pace, lists, unexamined, partial = self.proof, self.pace, self.lists, self.unexamined, self.partial
        waiter_seqs = array.array("q")  # per task waiter: its seq (for dependents, below)
        dependents: list = []
        task_groups = sorted((g for g in self.found.groups.values()
                              if g.key.kind == "task" and g.key.state not in SELF_WAKING), key=lambda g: g.count)
        # Finding what each waiter waits on may take half the budget: counting needs the rest.
        looking = time.monotonic() + self.budget_s / 2
        for group in task_groups:
            if time.monotonic() > looking:
                unexamined[group.key.id] = group.count
                proof.out_of_time = True
                continue
            members, key, state = group.members, group.key, group.key.state
            g = self.group_number(key)
            base = len(lists) << 32
            lists.append(members)
            for i, info in enumerate(members):
                if not i & 255:
                    pace()
                    if i and time.monotonic() > looking:
                        unexamined[key.id] = len(members) - i
                        partial.add(key.id)
                        proof.out_of_time = True
                        break
                task = info()
                if task is None:
                    continue
                w = proof.task(g, state, task, base | i)
                if w is not None:
                    waiter_seqs.append(info.seq)
                    waiter_seqs.append(w)
                elif type(info.cache) is not GroupKey:
                    _key, awaiting, children = info.cache
                    dependents.append((base | i, g, ((awaiting,) if awaiting is not None else ()) + children))
        return waiter_seqs, dependents

    def _add_dependents(self, waiter_seqs: array.array, dependents: list) -> None:
        """Add the dependents that can be dead: those awaiting only waiters of the proof."""
        proof, pace, record = self.proof, self.pace, self.record
        by_seq: dict[int, int] = {}  # task seq -> waiter
        # Waiter numbers of the tasks dependents await (only those: a dict of every waiter
        # would be a million entries).
        needed = {s for _n, _g, awaited in dependents for s in awaited}
        for start in range(0, len(waiter_seqs), 2 * CHUNK):
            pairs = waiter_seqs[start:start + 2 * CHUNK]
            by_seq.update(itertools.compress(zip(pairs[0::2], pairs[1::2]), map(needed.__contains__, pairs[0::2])))
            pace()
        # A dependent can be dead only if everything it awaits is a waiter of the proof.
        while True:
            others = {record(n).seq: None for n, _g, _a in dependents}
            kept = []
            for k, d in enumerate(dependents):
                if not k & 255:
                    pace()
                if all(s in by_seq or s in others for s in d[2]):
                    kept.append(d)
            if len(kept) == len(dependents):
                break
            dependents = kept
        base = len(proof.group_of)
        for k, (n, _g, _a) in enumerate(dependents):
            by_seq[record(n).seq] = base + k
        for k, (n, group, awaited) in enumerate(dependents):
            if not k & 255:
                pace()
            proof.dependent(group, n, tuple(map(by_seq.__getitem__, awaited)))
        by_seq.clear()


def _thread_waiters(found: Pass, proof: Proof, group_number: Any) -> dict:
    """Add blocked threads to ``proof``; ``{waiter: (ident, signature)}``.  Their frames
    are held only here, and let go of before the proof runs (see threads.current)."""
    thread_objects = {t.ident: t for t in threading.enumerate()}
    frames_of = sys._current_frames()
    out = {}
    try:
        for row in found.thread_rows:
            key = row["key"]
            thread = thread_objects.get(row["ident"])
            if key.state in SELF_WAKING or thread is None:
                continue
            frames, frame = [], frames_of.get(row["ident"])
            while frame is not None:
                frames.append(frame)
                frame = frame.f_back
            frames.reverse()
            signature = (id(frames[-1]), frames[-1].f_lasti) if frames else None
            w = proof.thread(group_number(key), key.state, thread, frames)
            if w is not None:
                out[w] = (row["ident"], signature)
            frames.clear()
    finally:
        frames_of.clear()
        frame = None
    return out


def _tally(proof: Proof, verdict: list, group_ids: list, pace: Pacer) -> dict:
    """Per group id: waiters proven, open, unknown, and the distinct objects proven."""
    out: dict[str, dict] = {}
    counts = collections.Counter()
    for start in range(0, len(verdict), CHUNK):  # (group, verdict) pairs counted in C
        counts.update(zip(proof.group_of[start:start + CHUNK], verdict[start:start + CHUNK]))
        pace()
    for (group, v), n in counts.items():
        e = out.setdefault(group_ids[group], {"proven": 0, "open": 0, "unknown": 0, "objects": set()})
        e["proven" if v else "unknown" if v is None else "open"] += n
    for w in itertools.compress(range(len(verdict)), verdict):
        if proof.owner_of[w] < proof.targets:
            out[group_ids[proof.group_of[w]]]["objects"].add(proof.owner_of[w])
    return out


def _unsettled(proven: dict, proof: Proof, budget_s: float) -> dict | None:
    """What the proof could not judge, and why (null when it judged everything)."""
    unknown = sum(e["unknown"] for e in proven.values())
    if not unknown:
        return None
    return {"waiters": unknown, "groups": sum(1 for e in proven.values() if e["unknown"]),
            "reason": reason_unsettled(proof.out_of_time, budget_s)}


def _verdict_rows(found: Pass, proven: dict, history: list) -> list[dict]:
    out = []
    for group in sorted(found.groups.values(), key=lambda g: -g.count):
        gid, state = group.key.id, group.key.state
        base = {"group": gid, "kind": group.key.kind, "count": group.count, "state": state,
                "blocked_min_s": round(group.bmin if group.count else 0.0, 3),
                "frame": own_frame(group.key.stack)}
        judged = proven.get(gid)
        if judged and judged["proven"]:
            count = judged["proven"]
            if not judged["objects"]:
                reason = reason_dependent(state, group.bmin)
            else:
                reason = reason_unreachable(count, group.key.kind, state, group.bmin,
                                                    noun_of(state), len(judged["objects"]))
            out.append(dict(base, verdict="unreachable", count=count,
                            reason=reason_some(count, group.count, reason)))
        grew = growth(history, gid)
        if grew is not None:
            out.append(dict(base, verdict="growing", growth=grew, reason=reason_growing(grew)))
        if judged and judged["proven"] or grew is not None:
            continue
        if state not in SELF_WAKING and group.bmin >= STUCK_S:
            out.append(dict(base, verdict="stuck", reason=reason_stuck(group.count, state, group.bmin)))
    return out


def _thread_unchanged(ident: int, signature: tuple | None) -> bool:
    """Whether a thread is still at the frame and instruction it was blocked at."""
    frame = sys._current_frames().get(ident)
    try:
        return signature is not None and frame is not None and (id(frame), frame.f_lasti) == signature
    finally:
        frame = None


def _task_unchanged(info: Any) -> bool:
    """Whether a task still waits on the future the pass saw it wait on (its record's ``waiter``)."""
    task = info()
    if task is None:
        return False
    waiter = info.waiter
    return waiter is not None and waiter() is getattr(task, "_fut_waiter", None) and not task.done()
