"""The proof that a waiter can never be woken, by reference counts.

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
import collections
import gc
import itertools
import operator
import sys
import threading
import time
from typing import Any, Callable, Iterator

from . import presized, shards
from .reference_graph import MAX_DEPTH, ReferenceGraph
from .registry import CHUNK
from .shards import MASK
from .waiters import THREAD_PROOFS, task_chain, task_target, thread_holders, thread_target

SAMPLE = 32  # waiters counted of a crowd on one object before judging it from them (see count)


class Proof(ReferenceGraph):
    """One proof over a set of waiters: add them (``task``, ``thread``, ``dependent``), then
    ``run``.  Only this object holds the targets and nodes, once each, so that their
    reference counts can be accounted for exactly.

    Nothing is kept per waiter but numbers in arrays: a task's chain is walked again when its
    references are counted (a list per waiter kept until then would be 100,000 containers for
    the collector, and their promotion set off full collections of the host's heap).  Those
    arrays are sized for ``waiters`` up front (see ``presized``), and cut to the waiters added
    when the count starts."""

    def __init__(self, pace: Callable[[], None], budget_s: float, task_of: Callable[[int], Any],
                 waiters: int = 64) -> None:
        self.pace = pace
        self.deadline = time.monotonic() + budget_s
        self.task_of = task_of  # source number -> the task (None once it is gone)
        super().__init__()
        self._followed = 0
        # Per waiter: its group, what owns its fate (a target's position, or for a waiter that
        # only awaits other tasks a number past the targets), its state, where it comes from.
        self.n = 0  # waiters added
        self.group_of = presized.zeros(waiters)
        self.owner_of = presized.zeros(waiters)
        self.source = presized.zeros(waiters)  # task: source number; thread: -1 - its entry in threads
        self.states: list[str] = []
        self._numbers: dict[str, int] = {}  # state -> its place in states
        self.state_of = presized.zeros(waiters)
        self.awaits: list[tuple] = []  # per dependent: waiter numbers it awaits
        self.dependents: list[int] = []  # their waiter numbers
        self.threads: list = []  # (holders, extra references) per thread waiter: few
        # Holders' references into objs, flattened: (waiter, object) pairs.
        self.ref_waiter = array.array("q")
        self.ref_obj = array.array("q")
        self.counted = presized.zeros(waiters, "B")  # per waiter: its references were counted
        self.to_obj: collections.Counter = collections.Counter()  # references found, per object
        self.open: set[int] = set()  # owners judged held from outside from a sample
        self.never_dead: set[int] = set()  # dependents of open owners: not counted (see _never_dead)
        self.out_of_time = False
        self.rc: list = []  # reference counts the solution used

    # -- waiters -------------------------------------------------------------------------
    def _state(self, state: str) -> int:
        number = self._numbers.get(state)
        if number is None:
            number = self._numbers[state] = len(self.states)
            self.states.append(state)
        return number

    def _waiter(self, group: int, owner: int, state: str | None, source: int) -> int:
        w = self.n
        if w == len(self.source):
            self._grow()
        self.n = w + 1
        self.group_of[w] = group
        self.owner_of[w] = owner
        self.state_of[w] = self._state(state) if state else -1
        self.source[w] = source
        return w

    def _grow(self) -> None:
        """Room for twice the waiters: more came than the proof was sized for."""
        n = 2 * len(self.source)
        self.group_of, self.owner_of = presized.grown(self.group_of, n), presized.grown(self.owner_of, n)
        self.source, self.state_of = presized.grown(self.source, n), presized.grown(self.state_of, n)
        self.counted = presized.grown(self.counted, n)

    def _seal(self) -> None:
        """Cut the per-waiter arrays to the waiters added (views: nothing is copied)."""
        n = self.n
        self.group_of, self.owner_of = self.group_of[:n], self.owner_of[:n]
        self.source, self.state_of, self.counted = self.source[:n], self.state_of[:n], self.counted[:n]

    def task(self, group: int, state: str, task: Any, source: int, target: Any = None) -> int | None:
        """A task blocked in ``state``, found again later as ``task_of(source)``; ``target``,
        what it waits on if known (else found here).  None when it is not waiting on anything
        a proof can settle."""
        if target is None:
            target = task_target(task, state)
        if target is None:
            return None
        owner = self.index.get(id(target))  # mostly one of a crowd's: ``_target`` inline
        if owner is None:
            owner = self._target(target)
        target = None
        w = self.n  # ``_waiter``, inline
        if w == len(self.source):
            self._grow()
        self.n = w + 1
        self.group_of[w] = group
        self.owner_of[w] = owner
        number = self._numbers.get(state)
        self.state_of[w] = number if number is not None else self._state(state)
        self.source[w] = source
        return w

    def tasks(self, group: int, state: str, source: int, targets: list) -> int:
        """Tasks of one group blocked in ``state`` on ``targets`` (one each, none None), found
        again as ``task_of(source)``, ``task_of(source + 1)``, ...: ``task`` for a slice of a
        group in a few C calls, not a Python call per waiter (a million of them a dump).
        Returns the first one's waiter number; the others follow it."""
        index = self.index
        owners = list(map(index.get, map(id, targets)))
        if None in owners:  # a target not met before: few
            owners = [self._target(t) if o is None else o for o, t in zip(owners, targets)]
        k, w = len(owners), self.n
        while w + k > len(self.source):
            self._grow()
        self.n = w + k
        number = self._state(state)
        end = w + k
        self.group_of[w:end] = array.array("q", (group,)) * k
        self.owner_of[w:end] = array.array("q", owners)
        self.state_of[w:end] = array.array("q", (number,)) * k
        self.source[w:end] = array.array("q", range(source, source + k))
        return w

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
        target = thread_target(state, frames)
        if target is None:
            return None
        owner = self._target(target)
        target = None
        holders, extra = thread_holders(thread, frames)
        self._holders.update(map(id, holders[1:]))  # its locals' snapshot dicts: never nodes
        self.threads.append((holders, extra))
        return self._waiter(group, owner, state, -len(self.threads))

    # -- counting --------------------------------------------------------------------------
    def _holders_of(self, w: int) -> tuple[list, list]:
        source = self.source[w]
        if source < 0:
            return self.threads[-1 - source]
        task = self.task_of(source)
        if task is None:
            return [], []
        state = self.state_of[w]
        holders = task_chain(task, self.states[state] if state >= 0 else None)
        return holders, []

    def count(self) -> None:
        """Count every holder's references into targets and nodes, following nodes as they are
        found.  A node is found at its first reference, so no holder counted earlier can have
        referenced it.  Owners with the fewest waiters go first, so that when the deadline
        stops the count, the small sets (the likely leaks) are settled (see ``_fewest_first``).

        A crowd on one object (more than ``2 * SAMPLE`` waiters) is first judged from a
        sample, its groups taken in turn: when every sampled waiter of each group gave the same
        count of references to the object (directly or through nodes it led to), and the object
        has more references than all its waiters would then account for with everything else
        counted so far, something else holds it: its waiters are left open (never proven)
        without counting the rest.  Otherwise the whole crowd is counted, so a proof always
        rests on a full count."""
        self._seal()
        pace, objs, owner_of, group_of = self.pace, self.objs, self.owner_of, self.group_of
        members: dict[int, dict] = {}  # target -> group -> waiters
        dependents = array.array("q")  # waiters that only await others: each its own owner
        for w, owner in enumerate(owner_of):
            if not w & 4095:
                pace()
            if owner < 0:
                dependents.append(w)
                continue
            groups = members.get(owner)
            if groups is None:
                groups = members[owner] = {}
            waiters = groups.get(group_of[w])
            if waiters is None:
                waiters = groups[group_of[w]] = array.array("q")
            waiters.append(w)
        self.open = set()
        n = 0
        for total, owner, groups in self._fewest_first(members, dependents):
            crowd = owner >= 0 and total > 2 * SAMPLE
            counts: dict[int, set] = {g: set() for g in groups}
            mine_total = 0
            order = (w for ws in itertools.zip_longest(*groups.values()) for w in ws if w is not None)
            for k, w in enumerate(order):
                if not n & 15:  # a waiter's count takes 10-100 µs: 64 of them took up to 6 ms
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

    def _fewest_first(self, members: dict, dependents: array.array) -> Iterator[tuple]:
        """``(waiters, owner, groups)``: the targets of ``members``, those with the fewest
        waiters first, then the ``dependents``, tasks that only await others.  Those are
        counted last: there can be hundreds of thousands, and counted first they took the
        whole budget before the targets' small sets (the likely leaks); uncounted, what they
        hold only counts as held from outside, which proves nothing.  Targets of one waiter
        are taken as they come, only the rest sorted."""
        singles, sized = [], []
        for k, (owner, groups) in enumerate(members.items()):
            if not k & 4095:
                self.pace()
            total = sum(map(len, groups.values()))
            (singles if total == 1 else sized).append((total, owner, groups))
        sized.sort(key=operator.itemgetter(0))
        yield from singles
        yield from sized
        owner_of, group_of = self.owner_of, self.group_of
        never = self.never_dead = self._never_dead(dependents)  # (every target counted by now)
        for w in dependents:
            if w not in never:
                yield 1, owner_of[w], {group_of[w]: (w,)}

    def _never_dead(self, dependents: array.array) -> set:
        """The ``dependents`` that await a waiter of an owner judged held from outside
        (``open``), directly or through other such dependents: they can never be dead, so
        their references need no count (uncounted, what they hold counts as held from
        outside, as it would once they were found alive).  At a million tasks, 50,000
        supervisors of a crowd's waiters took 0.3 s to count."""
        owner_of, awaits, open_, pace = self.owner_of, self.awaits, self.open, self.pace
        never: set = set()
        changed = bool(open_)
        while changed:  # again only for dependents awaiting dependents found meanwhile
            changed = False
            for k, w in enumerate(dependents):
                if not k & 1023:
                    pace()
                if w in never:
                    continue
                for a in awaits[-owner_of[w] - 1]:
                    owner = owner_of[a]
                    if owner in open_ if owner >= 0 else a in never:
                        never.add(w)
                        changed = True
                        break
        return never

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
        for k, w in enumerate(self.dependents):
            if not k & 4095:
                pace()
            self.owner_of[w] = targets - self.owner_of[w] - 1
        for k, w in enumerate(self.never_dead):  # never dead: judged alive, as an open owner
            if not k & 4095:
                pace()
            self.open.add(self.owner_of[w])
        # Each owner's references into objs, counted a slice at a time.
        stride = len(self.objs) + 1
        pairs: collections.Counter = collections.Counter()
        for start in range(0, len(self.ref_obj), 8192):
            owner_keys = map(self.owner_of.__getitem__, self.ref_waiter[start:start + 8192])
            pairs.update(map(operator.add, map(operator.mul, owner_keys, itertools.repeat(stride)),
                             self.ref_obj[start:start + 8192]))
            pace()
        by_owner = shards.dicts()  # owner -> [(object, references)]: a target's, or a dependent's
        for k, (key, n) in enumerate(pairs.items()):
            if not k & 4095:
                pace()
            owner = key // stride
            by_owner[owner & MASK].setdefault(owner, []).append((key % stride, n))
        pairs.clear()
        # Owners some of whose waiters were not counted (out of time) cannot be judged, and
        # their counted waiters are not harmless holders either.
        judged = bytearray(b"\x01" * owners)
        uncounted: set = set()
        for start in range(0, len(self.counted), CHUNK):
            uncounted.update(itertools.compress(self.owner_of[start:start + CHUNK],
                                                map(operator.not_, self.counted[start:start + CHUNK])))
            pace()
        open_ = self.open
        self._mark(judged, (owner for owner in uncounted if owner not in open_), 0)
        self._mark(judged, open_, 1)  # judged held from outside: never dead
        unsure = bytearray(len(self.objs))  # objects whose counts changed during the proof
        for _round in range(8):
            dead = self._solve(judged, by_owner, unsure)
            if not self._recheck(dead, unsure):
                break
        else:
            dead = bytearray(owners)
        # Per waiter, from its owner: True (dead), False (judged, alive), None (not judged).
        outcome: list = []
        for start in range(0, owners, CHUNK):
            outcome.extend(True if d else (False if j else None)
                           for d, j in zip(dead[start:start + CHUNK], judged[start:start + CHUNK]))
            pace()
        verdict: list = []
        for start in range(0, len(self.owner_of), CHUNK):
            verdict.extend(map(outcome.__getitem__, self.owner_of[start:start + CHUNK]))
            pace()
        shards.clear(by_owner, pace)
        return verdict

    def _mark(self, flags: bytearray, owners: Any, value: int) -> None:
        """``flags[owner] = value`` for each of ``owners``, the GIL given away as it goes (the
        owners judged open can be as many as the tasks awaiting a crowd: 50,000 at a million)."""
        pace = self.pace
        for k, owner in enumerate(owners):
            if not k & 4095:
                pace()
            flags[owner] = value

    def _solve(self, judged: bytearray, by_owner: list, unsure: bytearray) -> bytearray:
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
        pace = self.pace
        held = [0] * len(self.objs)
        live = shards.dicts()
        for k, (owner, refs) in enumerate(itertools.chain.from_iterable(map(dict.items, by_owner))):
            if not k & 1023:
                pace()
            live[owner & MASK][owner] = refs
            for i, n in refs:
                held[i] += n
        dead = bytearray(judged)
        self._mark(dead, self.open, 0)
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
                    if not d & 1023:
                        pace()
                    owner = targets + d
                    if dead[owner] and not all(dead[self.owner_of[a]] for a in awaited):
                        dead[owner] = 0
                        changed = True
            dropped = []
            for k, owner in enumerate(itertools.chain.from_iterable(live)):
                if not k & 4095:
                    pace()
                if not dead[owner]:
                    dropped.append(owner)
            if not dropped:
                shards.clear(live, pace)
                return dead
            for k, owner in enumerate(dropped):  # no longer harmless: their references count as outside
                if not k & 1023:
                    pace()
                for i, n in live[owner & MASK].pop(owner):
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

    def close(self) -> None:
        """Let go of everything the proof holds (targets, nodes, holders)."""
        self.objs.clear()
        self.edges.clear()
        self.threads.clear()
        self.index.clear()
