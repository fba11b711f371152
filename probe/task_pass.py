"""The task pass: every live task of every watched loop, brought up to date, described, grouped.

The background pass is cheap on purpose: per task it only checks whether the future the task
waits on (``_fut_waiter``) is still the same object, which is what "blocked since" means.  The
expensive part, walking a task's await chain, is done when a client asks, and cached for as
long as the task's waiter does not change: a task parked on the same future has not moved, so
a pile of 100,000 leaked tasks is walked once, not every second.

The walk goes through the probe's own records, not asyncio's registry: records sit in creation
order (``record_lists``), so a pass reads them nearly in memory order and needs no lookup to
get from a task to its record (at 100,000 tasks the lookups alone cost more than the rest).
The registry is then only checked for tasks the records miss (made by ``asyncio.Task(...)``,
or before the probe started), and only when the two differ otherwise than they did (see
``TaskPasses._unrecorded``): those are recorded and visited, and later passes find them in the
records.  Above a quarter of a million tasks no pass copies the records: it walks the lists
that keep them, and reads asyncio's registry only when it may hold a task the records miss
(see ``TaskPasses._run_many``).

Walking a chain costs 2-8 µs a task in Python: 3-5 s for a million tasks no pass has walked yet
(right after the probe attaches, or after a burst of new tasks).  A pass that must answer
quickly (a summary, the background pass) is given a time for walking (``TaskPasses.walk_budget``):
the tasks it has no time for are counted, by state, in a pseudo-group whose stack is one
synthetic frame (``wire.stacks.UNWALKED_FUNC``), and left uncached, so the next pass walks on from where
this one stopped, in creation order.  Counts and totals stay exact; the groups fill in over a
few passes.  Between passes the background walks the rest, a few tenths of a second of CPU at a
time (``TaskPasses.catch_up``), so that a first dump minutes after a burst finds them walked.
A pass without a budget (rows, verdicts, a complete summary) walks every chain.

Nothing allocated per task outlives the pass: 100,000 surviving container objects make the
collector run a full collection of the host's whole heap, which held its event loop up for most
of a second.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import operator
import sys
import time
import types
import weakref
from typing import Any, Callable

from . import hooks, positions, record_lists, registry, tasks as tasks_mod
from .groups import Group
from .handoff import Handoff, Pacer
from .keys import GroupKey, Keys
from .loops import LoopWatches
from .parts import Parts
from .positions import FIRST_LOCAL, first_local
from .recycled_lists import RecycledLists, empty
from .registry import CHUNK
from .untracked import untrack
from .waiters import PRIMITIVES, own_primitive

RECHECK = 30.0  # seconds: how long asyncio's registry may go without a full look-up
#: 3.14+: below this many tasks, C's task lists are read on every pass (about 1 ms).
LINKED_EVERY_PASS = 20_000
#: 3.14+: from this many tasks on, C's task lists are read on the first pass only: reading
#: them is one C call over every task (3 ms at 50,000, 8 ms at 100,000, 224 ms at a million).
LINKED_MOST = 50_000
#: Above this many records a pass copies neither the records nor asyncio's registry at one
#: moment (one C call over each held the loops 13-35 ms at a million; see _run_many).
SPLIT_COPIES = 250_000
#: Above SPLIT_COPIES, asyncio's registry is read at most this often when only tasks that
#: ended in their first step can have hidden a task the records miss (see TaskPasses._run_many).
CHECK_MANY = 2.0
#: Records waiting in ``record_lists.made`` that make the probe's heartbeat take them (see tidy).
TIDY = 10_000
#: Seconds a budgeted grouping pass with chains to walk may take in all (the visit of every
#: record, the walks, the tallies): what a summary waits for.  The walks get what the rest of
#: the last grouping pass left of it (see TaskPasses.walk_budget).
PASS_WITHIN = 0.75
#: Seconds of walking a budgeted pass gets however long the rest took: it always progresses.
WALK_AT_LEAST = 0.15
#: Seconds per record a pass takes besides walking, to estimate the first pass's rest.
VISIT_S = 0.6e-6
#: Tasks a pass must have seen for its time per record to be the next estimate (below, the
#: time of a pass is mostly not per record).
MEASURED = 10_000

_UNSET = object()  # not looked up yet


#: The waiter of a task whose future cannot be weakly referenced: called like a weak reference,
#: it returns None (in C), never the waiter, so every pass takes the task as moved.
_UNKNOWN = type(None)
#: The same for a task a pass had no time to walk: no reference made (see _Walk.visit), and its
#: description stays cleared until a pass walks it.
_NOT_WALKED = functools.partial(type(None))
_TASK = asyncio.Task  # a waiter of this type may have a record (see _Walk.visit)
_FUTURE = asyncio.Future  # a waiter of this type: the task's chain alone tells its state
_FRAMELESS = sys.version_info >= (3, 11)  # chains read without frame objects (see positions)


class Pass:
    """What one sampling pass found.  ``infos`` (when rows were asked for) are the records of
    the tasks, in creation order; ``info()`` is the task (None once it has been freed), and
    ``described(info)`` its description: ``(group key, awaited task seq, awaited seqs)``."""

    __slots__ = ("now", "count", "infos", "loop_counts", "thread_rows", "groups", "unwalked")

    def __init__(self, now: float, count: int, infos: Parts, loop_counts: dict,
                 thread_rows: list, groups: dict, unwalked: int = 0) -> None:
        self.now, self.count, self.infos, self.loop_counts = now, count, infos, loop_counts
        self.thread_rows, self.groups = thread_rows, groups
        self.unwalked = unwalked  # tasks in the pseudo-groups: their chains not walked yet

    def blocked(self, info: Any) -> float:
        return self.now - info.since if info.waiter is not None else 0.0


def described(info: Any) -> tuple:
    """``(group key, awaited task seq or None, awaited seqs)`` of a record a pass described."""
    cached = info.cache
    return (cached, None, ()) if type(cached) is GroupKey else cached


class TaskPasses:
    """Runs task passes, and keeps what one pass leaves the next: the recycled lists, and how
    far asyncio's registry can be trusted to match the records.  Used only from the probe thread."""

    def __init__(self, loops: LoopWatches, keys: Keys, handoff: Handoff | None) -> None:
        self.loops, self.keys, self.handoff = loops, keys, handoff
        self.lists = RecycledLists()
        self.fresh: list = []  # records made during a pass (see seq_of)
        self._targets: dict[int, weakref.ref] = {}  # address -> primitive (see _target)
        #: Whether a client waits to be answered (set by the server): a background pass then
        #: gives way (``Preempted``), and a catch-up step stops where it is.
        self.asking: Callable[[], bool] | None = None
        self._candidate: tuple | None = None  # see _unrecorded
        self._trusted: tuple | None = None
        self._checked = 0.0
        self._linked_at = -RECHECK  # when C's task lists were last read (3.14+)
        self._first = True
        # The difference of the sizes of the records and asyncio's registry when the registry
        # last had no task they miss.
        self._size: int | None = None
        self._ended = False  # a task recorded since the registry was last read has ended
        self._rest: float | None = None  # seconds per record the last grouping pass took besides walking
        self._resume = 0  # the seq where the last budgeted pass ran out of time to walk
        #: The background's lap over the chains left unwalked (see catch_up): the seqs where it
        #: began and of the newest record then (None: none left), and whether it has gone past
        #: that one to the first.
        self._lap: tuple[int, int] | None = None
        self._wrapped = False
        #: Passes run so far: a pass's lists (rows, group members) are recycled by the next one,
        #: so a pass may be used again only while this has not moved (see ``State.collect``).
        self.number = 0

    def walk_budget(self) -> float:
        """Seconds of walking chains for a pass that must be quick: PASS_WITHIN less what the
        last grouping pass took per record besides walking (the visit of every record is about
        0.5 s at a million) times the records now, at least WALK_AT_LEAST."""
        per_record = self._rest if self._rest is not None else VISIT_S
        return max(WALK_AT_LEAST, PASS_WITHIN - per_record * record_lists.count())

    def run(self, grouping: bool, rows: bool = False, budget: float | None = None,
            background: bool = False) -> Pass:
        """Every live task of every running loop with its record, the waiter it is blocked on
        brought up to date; with ``grouping``, described (cached while the waiter is the same)
        and grouped; with ``rows``, listed (``Pass.infos``).  With a ``budget`` (seconds;
        never with ``rows``, whose rows need every description), chains are walked for that
        long at most, starting where the last budgeted pass stopped; the tasks left are
        counted in the pseudo-groups (see ``_Walk.within``).  Above SPLIT_COPIES only a
        ``background`` pass (the probe's own) makes the look-up due every RECHECK seconds:
        0.9 s at a million, which a client's summary would wait for."""
        asking = self.asking if background else None
        if asking is not None and asking():
            raise Preempted  # before the last pass's lists are recycled: a dump may still share it
        started = time.perf_counter()
        now = time.monotonic()
        watches = self.loops.refresh()
        watched = {id(w.loop) for w in watches}
        pace = Pacer(self.handoff, asking)
        self.number += 1
        self.lists.recycle(pace)
        walk = _Walk(self, now, watched, grouping, rows, pace,
                     budget if grouping and not rows else None, self._resume)
        self.fresh = []
        first, self._first = self._first, False
        try:
            if record_lists.count() > SPLIT_COPIES:
                unknown = self._run_many(walk, watches, now, pace, background, first)
            else:
                unknown = self._run_copied(walk, watches, now, pace, first)
        except Preempted:
            # The tasks asyncio's registry held are let go of now, not at the next pass, and a
            # first pass's look at C's task lists is the next one's to make.
            self.lists.release("refs", pace)
            self._first = first
            raise
        walk.walk_later()
        # Visited one after the other, not joined: a list of a million adopted records made
        # anew is a million reference counts touched in one C call (9 ms at attach).
        batches = [self.fresh, *_adopted(unknown, pace)]
        empty(unknown, pace)  # a million tasks at attach: let go of a slice at a time
        for _round in range(100):  # each round describes tasks awaited by the last one's
            batches = [batch for batch in batches if batch]
            if not batches:
                break
            self.fresh = []
            for batch in batches:
                walk.visit(batch)
                empty(batch, pace)  # not all at once when ``batches`` goes: a million at attach
            batches = [self.fresh]
        self.fresh = []
        counts = walk.counts
        if len(watched) == 1:  # else counted per task
            counts[next(iter(watched))] = walk.count
        unwalked = set(walk.unwalked_keys())
        for key, group in walk.groups.items():
            # Where the tasks not walked yet were made is left out: they are a stage, not a group.
            group.tally(now, self.keys.site_key, pace, created=key not in unwalked)
        if grouping and walk.budget != _NO_BUDGET and walk.count >= MEASURED:  # (complete: walks not timed)
            self._rest = (time.perf_counter() - started - walk.walked_s) / walk.count
        if grouping:
            self._resume = walk.first_skipped or 0
            self._lap = None if walk.first_skipped is None else (walk.first_skipped, _newest())
            self._wrapped = False
        return Pass(now, walk.count, walk.infos, counts, [], walk.groups, walk.unwalked)

    @property
    def catching_up(self) -> bool:
        """Whether the last grouping pass left chains unwalked that ``catch_up`` has not walked."""
        return self._lap is not None

    def catch_up(self, seconds: float) -> None:
        """The background's walk of the chains the last grouping pass had no time for, for
        ``seconds`` of the probe thread's CPU at most, with no pass around it.  A grouping pass
        at a million tasks spends about a second visiting every record for the 0.15 s it
        walks, so samples of passes alone walked a burst of a million in over an hour; these
        steps walk it in minutes within the same budget, and a first dump then finds it walked.

        One lap in creation order over the records the pass had: from where it (or the last
        step) stopped to the newest it had, then from the first to where the lap began; newer
        records are the next pass's, so that a lap ends however fast tasks come.  A task seen
        waiting on another future than its record says gets ``since`` now, as a pass would
        give it; what a pass checks anyway (tasks not waiting, cached chains that may have
        moved) is left to it.  Anything unexpected ends the lap: the passes walk on alone."""
        lap = self._lap
        if lap is None:
            return
        began, newest = lap
        deadline = time.thread_time() + seconds  # one for both halves of a lap
        try:
            while True:
                stop = began if self._wrapped else newest + 1  # (seqs before ``stop``)
                if self._walk_from(self._resume, stop, deadline):
                    return
                if self._wrapped:
                    break
                self._wrapped, self._resume = True, 0
        except Preempted:  # a client asked: the lap goes on at the next step
            raise
        except Exception:
            pass
        finally:
            self.fresh = []  # records made for awaited tasks are in ``made``: the next pass visits them
        self._lap, self._resume, self._wrapped = None, 0, False

    def _walk_from(self, start: int, stop: int, deadline: float) -> bool:
        """``catch_up``'s walk of the records of seqs ``start`` to ``stop`` (not included)
        until the thread's CPU clock reaches ``deadline``.  Returns whether it got there first
        (``_resume`` then says where to go on); raises ``Preempted`` (the same said) when a
        client asked meanwhile, so that the sample after it runs to its end as after a pass
        that gave way."""
        now = time.monotonic()
        pace = Pacer(self.handoff, self.asking)
        watched = set(self.loops.watches)
        currents: dict[int, Any] = {}
        describe, refer = self.describe, _Walk._refer
        scanned = walks = 0
        for chunk in record_lists.kept:  # only the probe thread changes these lists
            # By search, not by a chunk's ends: a record whose seq was taken before a switch of
            # threads can come after newer ones, and a late last one would hide its chunk.
            low, high = first_at(chunk, start), first_at(chunk, stop)
            if low >= high:
                if chunk and chunk[0].seq >= stop:
                    break
                continue
            for info in itertools.islice(chunk, low, high):
                scanned += 1
                if not scanned & 511:
                    pace()
                    if time.thread_time() >= deadline or pace.asked:
                        self._resume = info.seq
                        return _stopped(pace)
                try:
                    if info.cache is not None:  # walked (whether it moved since: the pass)
                        continue
                except AttributeError:  # no pass has seen it yet: its waiter is None
                    pass
                task = info()
                if task is None:
                    continue
                try:
                    if task.done():
                        continue
                    loop_id = id(task._loop)
                    if loop_id not in watched:
                        continue
                    waiter = task._fut_waiter
                    if waiter is None:  # ready or running: a pass's pseudo-group
                        continue
                    info.cache = None  # first: a pass reads it of a record whose waiter it knows
                    old = info.waiter
                    if old is None or old is _NOT_WALKED or old() is not waiter:
                        info.since = now
                        refer(info, waiter)
                        info.target = None
                    describe(task, info, _current(currents, task, loop_id), waiter)
                except Exception:  # the next pass walks it
                    continue
                walks += 1
                if not walks & 63:  # as in _Walk.visit
                    pace()
                    if time.thread_time() >= deadline or pace.asked:
                        self._resume = info.seq + 1
                        return _stopped(pace)
        return False

    def _run_copied(self, walk: "_Walk", watches: list, now: float, pace: Pacer, first: bool) -> list:
        """Visit a copy of the records and find the tasks they miss: the records (those of
        freed tasks not left out yet included: see ``record_lists.copy``) and asyncio's
        registry are copied at one moment (C calls in a row, of a few milliseconds at 100,000
        tasks: the loops get the GIL just before).  Then the records made since the last pass
        join the lists that keep them.  Returns the tasks no factory of ours saw."""
        records, refs = self.lists.take("records"), self.lists.take("refs", records=False)
        pace.now()
        record_lists.copy(records)  # in creation order
        dropped = record_lists.dropped()
        linked = self._linked_due(len(records), now, first)
        if linked:
            self._linked_at = now
        eager = registry.copy(refs, [w.loop for w in watches] if linked else ())
        since = records[-1].seq if records else 0
        difference = self._difference_of(records, dropped, refs, eager, pace)
        walk.visit(records)
        self._ended = self._take_made(pace) or self._ended
        record_lists.prune(pace)
        if pace.asked:  # as in _run_many
            raise Preempted
        # Then what that copy could not hold: tasks no factory of ours saw, and records made
        # meanwhile for tasks first met as awaited by another (each visited once).
        unknown = self._unrecorded(difference, refs, eager, since, pace, now)
        # The difference of the sizes while the registry held no task the records miss.
        self._size = difference[0] if difference is not None and not (unknown or linked) else None
        empty(records, pace)
        empty(refs, pace)
        return unknown

    def _run_many(self, walk: "_Walk", watches: list, now: float, pace: Pacer, background: bool,
                  first: bool) -> list:
        """Above SPLIT_COPIES: visit the lists that keep the records, with those made since
        (``record_lists.made``) added, with no copy of a million records (one C call of
        13-35 ms).  asyncio's registry (a copy of 11-20 ms) is read only when it may hold a
        task the records miss: when the difference of the two sizes moved; when a task recorded since
        it was last read has ended (3.12+: one that ended in its eager first step is recorded
        and not registered, and one made without our factory meanwhile leaves the sizes
        alike), at most every CHECK_MANY seconds; and anyway every RECHECK seconds, in a
        ``background`` pass. Returns the tasks no factory of ours saw."""
        self._ended = self._take_made(pace) or self._ended
        live = record_lists.count()
        size = live - registry.size()
        # 3.14+: tasks no factory saw are only in C's lists, which asyncio's sets do not count.
        linked = self._linked_due(live, now, first)
        due = (linked or size != self._size or (background and now - self._checked >= RECHECK)
               or (self._ended and now - self._checked >= CHECK_MANY))
        refs: list = []
        eager: list = []
        if due:
            refs = self.lists.take("refs", records=False)
            pace.now()
            if linked:
                self._linked_at = now
            # A slice at a time: nothing here needs the records and the registry at one moment.
            eager = registry.copy(refs, [w.loop for w in watches] if linked else (), pace)
        kept = record_lists.kept
        since = kept[-1][-1].seq if kept else 0
        for chunk in kept:  # only the probe thread changes these lists
            walk.visit(chunk)
        record_lists.prune(pace)
        if not due:
            return []
        if pace.asked:  # a client asked during the visit: the look-up (0.9 s at a million) can wait
            raise Preempted
        missing, complete = registry.unrecorded(hooks.record_of, refs, eager, since, pace)
        self._size = size if complete else None
        self._ended = False
        self._checked = now
        empty(refs, pace)
        return missing

    def _linked_due(self, count: int, now: float, first: bool) -> bool:
        """3.14+: whether this pass reads C's task lists, the only place that holds the tasks no
        factory of ours saw (``asyncio.Task(...)`` called directly, or made before the probe
        started): on the first pass (what an attached probe finds), on every pass below
        LINKED_EVERY_PASS tasks, every RECHECK seconds below LINKED_MOST; beyond that never,
        since that one C call would hold the loops longer than any pass may (such tasks are
        then seen only where a recorded task awaits them)."""
        if not registry.LINKED:
            return False
        return first or count < LINKED_EVERY_PASS or (count < LINKED_MOST and now - self._linked_at >= RECHECK)

    @staticmethod
    def _take_made(pace: Pacer) -> bool:
        """Move the records made since the last pass to the lists that keep them (see
        ``record_lists.take_made``).  Returns whether the task of one of them has ended (3.12+
        only): one that ended in its eager first step is recorded and not registered."""
        ended = False

        def seen(part: list) -> None:
            nonlocal ended
            ended = ended or (EAGER and _any_ended(part))

        record_lists.take_made(pace, seen)
        return ended

    def tidy(self) -> None:
        """Between passes (the probe's heartbeat): once TIDY records wait in ``made``, they are
        moved to the lists that keep them and those of freed tasks left out, so that a process
        that makes and frees many tasks does not keep their records until the next pass (up to
        a minute away when the CPU budget stretches the interval)."""
        if len(record_lists.made) < TIDY:
            return
        pace = Pacer(self.handoff)
        self._ended = self._take_made(pace) or self._ended
        record_lists.prune(pace)

    @staticmethod
    def _difference_of(records: list, dropped: int, refs: list, eager: list, pace: Pacer) -> tuple | None:
        """How the copy of asyncio's registry differs from the copy of the records, taken at
        the same moment (when ``record_lists.dropped()`` said ``dropped``): in the number of
        live tasks, and in the sum and the exclusive or of their hashes (see _unrecorded).
        None while eager tasks are in their first step, or if it cannot be told."""
        if eager:
            return None
        mine = record_lists.fingerprint(records, dropped, pace)
        theirs = registry.fingerprint(refs, pace)
        if mine is None or theirs is None:
            return None
        return mine[0] - len(refs), mine[1] - theirs[0], mine[2] ^ theirs[1]

    def _unrecorded(self, difference: tuple | None, refs: list, eager: list, since: int, pace: Pacer,
                    now: float) -> list:
        """Tasks of the registry's copy ``refs`` that the records miss.

        Looking each of 100,000 references up takes tens of milliseconds, so it is skipped
        while the two copies differ exactly as they did when every registered task had a
        record: same difference in size, and in the sum and the exclusive or of the
        references' hashes (a task's hash is its address, distinct among live tasks).  The
        registry may hold tasks the records do not need (finished ones) and the records tasks
        it does not hold (a task that finished in its eager first step), but a task made
        without our factory changes the difference.

        A difference is trusted only after two look-ups in a row found it complete: no task
        missing, and none recorded since its copies were taken (``since``).  A task that was
        unrecorded when the copies were taken but recorded before the look-up (by a loop's
        factory on another thread, whose record can come after a later one's) would
        otherwise be counted as a registry-only task, and a new task at its address would go
        unseen; the second look-up sees the first task on both sides.  The copies are two C
        calls in a row; only a switch of threads between them can make them disagree, and a
        full look-up is done every ``RECHECK`` seconds anyway."""
        if difference is not None and difference == self._trusted and now - self._checked < RECHECK:
            return []
        missing, complete = registry.unrecorded(hooks.record_of, refs, eager, since, pace)
        if complete and difference is not None:
            self._trusted = difference if difference == self._candidate else None
            self._candidate = difference
        else:
            self._trusted = self._candidate = None
        self._checked = now
        return missing

    def seq_of(self, task: Any) -> int:
        """The id of a task another one awaits; a record made for it here (a task no factory
        of ours saw) goes to ``fresh``, for the pass to visit too."""
        info = hooks.record_of(task)
        if info is None:
            info = hooks.info_for(task)
            if info is None:  # another thread's record of it not complete yet: the next pass
                raise LookupError("a record still being made")
            self.fresh.append(info)
        return info.seq

    def describe(self, task: Any, info: hooks.TaskInfo, current: Any, waiter: Any) -> Any:
        """The task's group key, or ``(key, awaited task seq, awaited seqs)`` when it awaits
        other tasks (see ``described``): kept in ``info.cache`` while the waiter is the same,
        reset every pass if none.  Most tasks await no task: no tuple is kept for them.
        ``waiter``: the task's ``_fut_waiter``, as the pass read it."""
        cached = info.cache
        if cached is not None:
            return cached
        if _FRAMELESS and type(waiter) is _FUTURE and task is not current:
            # Parked on a plain future, as most tasks of a big process are: its chain walked
            # in one call and looked up by its ids, its state the one its chain names.
            objs: list = []
            ids: list = []
            try:
                end = positions.suspended_run(task.get_coro(), objs, ids)
            except Exception:  # a task-like object of the application's: the general path
                end = None
            chain = self.keys.known(ids) if type(end) in tasks_mod.ENDS else None
            state = chain.parked if chain is not None else None
            if state is not None:
                key = chain.keys.get(state) or self.keys.task_key(chain, state)
                if chain.primitive is not None:
                    self._target(info, objs[chain.primitive], state)
                info.cache = key
                return key
        objs, outer_first = tasks_mod.chain_of(task)
        chain = self.keys.chain(outer_first)
        state, awaiting, children = tasks_mod.state_of_task(task, current, chain.named, objs)
        key = chain.keys.get(state) or self.keys.task_key(chain, state)
        if chain.primitive is not None and state == chain.named:
            self._target(info, objs[chain.primitive], state)
        if awaiting is None and not children:
            result: Any = key
        else:
            seq_of = self.seq_of
            result = (key, seq_of(awaiting) if awaiting is not None else None,
                      tuple(seq_of(c) for c in children))
        if result is not key:
            untrack(result)
        info.cache = result
        return result

    def _target(self, info: hooks.TaskInfo, frame_owner: Any, state: str) -> None:
        """What the task waits on (``self`` of ``frame_owner``, the primitive's coroutine),
        found while its chain is at hand: the waits and the proof then need not walk a million
        chains again (kept while the waiter is the same).  A coroutine whose first local is a
        primitive found before is told by its address (``positions.first_local``), without
        listing its referents: most waiters of a big process share a few primitives."""
        types_ = PRIMITIVES[state]
        address = 0
        if FIRST_LOCAL is not None and type(frame_owner) is _COROUTINE:
            address = first_local(frame_owner)
            ref = self._targets.get(address)
            if ref is not None:
                target = ref()
                if id(target) == address and isinstance(target, types_):  # alive, the same
                    info.target = ref
                    return
        target = own_primitive(frame_owner, types_)
        if target is not None:
            try:
                info.target = ref = weakref.ref(target)  # one per object, shared by its waiters
            except TypeError:
                return
            if id(target) == address:
                if len(self._targets) >= TARGETS:
                    self._targets.clear()
                self._targets[address] = ref


class Preempted(Exception):
    """A background pass gives way to a client who asked meanwhile (see ``State.sample``).
    Raised between two records of a visit: what the pass did to each record it saw stands,
    and its lists are recycled by the next pass as any pass's are."""


def _stopped(pace: Pacer) -> bool:
    """A catch-up step stops: out of time (True), or ``Preempted`` if a client asked."""
    if pace.asked:
        raise Preempted
    return True


#: Primitives ``TaskPasses._target`` knows by address, at most (a few are the usual).
TARGETS = 1024
_COROUTINE = types.CoroutineType
_CALL = weakref.ReferenceType.__call__
#: Tasks may end in their first step, never registered (3.12+: eager task factories).
EAGER = sys.version_info >= (3, 12)


_DONE = operator.methodcaller("done")


def _any_ended(records: list) -> bool:
    """Whether the task of one of ``records`` has ended (in C: no Python call per record)."""
    try:
        return any(map(_DONE, filter(None, map(_CALL, records))))
    except Exception:
        return True


#: Records a list of adopted ones holds at most: a list grown to a million by appends is
#: copied whole each time it outgrows its block, in one C call.
ADOPTED_PART = 65_536


def _adopted(tasks: list, pace: Pacer) -> list[list]:
    """The records of ``tasks`` (no factory of ours saw them), made a slice at a time, in
    lists of at most ``ADOPTED_PART``: all of a million tasks the probe finds when it
    attaches, about 1 µs each."""
    parts: list[list] = [[]]
    for n, task in enumerate(tasks):
        if not n & 511:
            pace()
            if len(parts[-1]) >= ADOPTED_PART:
                parts.append([])
        info = hooks.info_for(task)
        if info is not None:  # (None: another thread's record of it is not complete yet)
            parts[-1].append(info)
    return parts


def _current(currents: dict, task: Any, loop_id: int) -> Any:
    """The task running on the task's loop, looked up once per loop in ``currents`` (a pass's,
    or a catch-up step's); None if it cannot be told."""
    current = currents.get(loop_id, _UNSET)
    if current is _UNSET:
        try:
            current = asyncio.current_task(task._loop)
        except Exception:
            current = None
        currents[loop_id] = current
    return current


def _newest() -> int:
    """The seq of the newest record made so far (0: none), from the counter itself: the last
    one kept may be older than one kept before it (see ``TaskPasses._walk_from``)."""
    return int(repr(hooks._seq)[6:-1]) - 1  # count(N) says N, the next one


def first_at(records: Any, seq: int) -> int:
    """The index of the first of ``records`` (in creation order) whose seq is ``seq`` or more:
    a binary search, not a property read per record (a million of them in a cold pass)."""
    low, high = 0, len(records)
    while low < high:
        middle = (low + high) // 2
        if records[middle].seq < seq:
            low = middle + 1
        else:
            high = middle
    return low


#: The states of the pseudo-groups (see ``_Walk.within``): what is known without the chain.
UNWALKED_STATES = ("waiting", "ready", "running")
_NO_BUDGET = float("inf")
_LATER = object()  # a record whose chain is walked once the others have been (see _Walk.visit)


class _Walk:
    """One pass over task records (see ``TaskPasses.run``); ``visit`` is called again for
    records the pass could not see in its first copy."""

    def __init__(self, passes: TaskPasses, now: float, watched: set, grouping: bool, rows: bool,
                 pace: Pacer, budget: float | None = None, resume: int = 0) -> None:
        self.passes, self.now, self.watched, self.grouping, self.pace = passes, now, watched, grouping, pace
        self.rows = rows
        # The walks of chains not cached: seconds allowed (inf: no budget) and spent; with a
        # budget, records before ``resume`` are walked after the others (``later``), so that
        # walking goes on where the last pass stopped; the first record left unwalked.
        self.budget = _NO_BUDGET if budget is None else budget
        self.walked_s = 0.0
        self.resume = resume if budget is not None else 0
        self.later: list = passes.lists.take("later") if budget is not None else []
        self.first_skipped: int | None = None
        self.unwalked = 0
        self._unwalked_keys = ({state: passes.keys.unwalked(state) for state in UNWALKED_STATES}
                               if budget is not None else {})
        self.count = 0  # tasks found
        # Only when rows are asked for, and records only (a record is a weak reference to
        # its task): a young list of 100,000 tasks is traversed by every collection, which
        # reads each task's GC header while the loop waits.
        take = passes.lists.take
        self.infos = Parts(take("rows"), take, "rows")
        self.counts: dict[int, int] = {}
        self.groups: dict[GroupKey, Group] = {}
        self._currents: dict[int, Any] = {}

    def visit(self, records: list) -> None:
        """Bring ``records`` up to date (and group them, and list them)."""
        now, watched, grouping, pace = self.now, self.watched, self.grouping, self.pace
        counts, groups = self.counts, self.groups
        several = len(watched) > 1
        rows = self.rows
        infos = self.infos
        add_info = infos.part().append
        later, budget = self.later.append, self.budget
        # Records before the one the last budgeted pass stopped at are walked after the others.
        resume = first_at(records, self.resume) if self.resume else 0
        complete, describe, current = budget == _NO_BUDGET, self.passes.describe, None
        new_ref = weakref.ref
        found = walks = 0
        exhausted = self.walked_s >= budget  # no time left to walk chains: set after each walk
        last_key = add_member = None  # the group the last record went to
        last_loop = loop_id = None  # the watched loop of the last record
        take = self.passes.lists.take
        for n, info in enumerate(records):
            if not n & 511:
                pace()
                if getattr(pace, "asked", False):  # between two records, each as consistent as the others
                    raise Preempted
                last_key = None  # the group's part is looked at again (see parts.PART)
                if rows:
                    add_info = infos.part().append
            task = info()
            if task is None:
                continue
            try:
                if task.done():
                    continue
                loop = task._loop
            except Exception:
                continue
            if loop is not last_loop:  # records in a row are mostly of one loop
                loop_id = id(loop)
                if loop_id not in watched:
                    continue
                last_loop = loop
                if complete:
                    current = self._current(task, loop_id)
            try:
                waiter = task._fut_waiter  # an attribute read, not a call to getattr: 1M a pass
            except AttributeError:  # a task-like object of a factory of the application's
                waiter = None
            if waiter is None:
                info.waiter = None
                info.since = now
                info.cache = info.target = None
            else:
                old = info.waiter
                if old is None or old is _NOT_WALKED or old() is not waiter:  # (no call for the unwalked)
                    info.since = now
                    if exhausted or n < resume:
                        # No time left to walk its chain (or not yet: put off, see walk_later):
                        # no reference made either (a million first seen cost 0.6 s, the
                        # collector's untracking most of it); the next pass sees it as new, so
                        # its blocked time counts from there.
                        if old is not _NOT_WALKED:  # else left so by the last pass, cache and all
                            info.waiter = _NOT_WALKED
                            info.cache = info.target = None
                    elif type(waiter) is _FUTURE:  # _refer, inline: most waiters, a million in a first pass
                        info.waiter = ref = new_ref(waiter)
                        untrack(ref)
                        info.cache = info.target = None
                    else:
                        self._refer(info, waiter)
                        info.cache = info.target = None
            if grouping:
                cached = info.cache
                if cached is None:
                    walks += 1
                    if not walks & 63:  # a walk takes 3-25 µs: 512 of them would hold the loop up
                        pace()
                    if n < resume:
                        later(info)
                        cached = _LATER
                    elif exhausted and waiter is not None:
                        # No time left to walk chains: this record (its waiter seen to above,
                        # as ``_cold`` does it again) and the rest, in a loop of their own.
                        self._cold(records, n)
                        break
                    elif complete:  # what ``within`` does then, inline: a million times a pass
                        try:
                            cached = describe(task, info, current, waiter)
                            if task.done():  # ended since it was seen (the loop had the GIL
                                continue  # meanwhile, as above): its chain was already gone
                        except Exception:
                            continue
                    else:
                        try:
                            cached = self.within(task, info, loop_id)
                            if task.done():  # as above
                                continue
                        except Exception:
                            continue
                        finally:
                            exhausted = self.walked_s >= budget
                if cached is not _LATER:  # as _add does, inline: once per task and pass
                    key = cached if type(cached) is GroupKey else cached[0]
                    if key is not last_key:  # records in a row are mostly of one group
                        group = groups.get(key)
                        if group is None:
                            group = groups[key] = Group(key, take(key), take)
                        last_key, add_member = key, group.members.part().append
                    add_member(info)
            if several:
                counts[loop_id] = counts.get(loop_id, 0) + 1
            found += 1
            if rows:
                add_info(info)
        self.count += found

    def _cold(self, records: list, start: int) -> None:
        """``visit`` of ``records[start:]`` once no time is left to walk chains (most of a
        million records in a summary's first pass): the same updates and groups, without the
        branches only a pass that still walks needs (no walks, no rows, no records put off).
        Its first lines are ``visit``'s on purpose: a call per record to share them would cost
        about what this loop saves."""
        now, watched, pace = self.now, self.watched, self.pace
        counts, groups, lists = self.counts, self.groups, self.passes.lists
        several = len(watched) > 1
        unwalked_waiting = self._unwalked_keys["waiting"]
        found = skipped = 0
        last_key = add_member = last_loop = loop_id = None
        take = lists.take
        for n, info in enumerate(itertools.islice(records, start, None)):
            if not n & 511:
                pace()
                if getattr(pace, "asked", False):  # as in visit
                    raise Preempted
                last_key = None  # as in visit
            task = info()
            if task is None:
                continue
            try:
                if task.done():
                    continue
                loop = task._loop
            except Exception:
                continue
            if loop is not last_loop:
                loop_id = id(loop)
                if loop_id not in watched:
                    continue
                last_loop = loop
            try:
                waiter = task._fut_waiter
            except AttributeError:
                waiter = None
            if waiter is None:  # ready or running: its pseudo-group, found by ``within``
                info.waiter = None
                info.since = now
                info.cache = info.target = None
                try:
                    cached = self.within(task, info, loop_id)
                except Exception:
                    continue
            else:
                old = info.waiter
                if old is _NOT_WALKED:  # left so by the last pass, cache and all
                    info.since = now
                    cached = None
                elif old is None or old() is not waiter:  # moved: left unwalked (see visit)
                    info.since = now
                    info.waiter = _NOT_WALKED
                    info.cache = info.target = None
                    cached = None
                else:
                    cached = info.cache
                if cached is None:
                    if not skipped and self.first_skipped is None:
                        self.first_skipped = info.seq
                    skipped += 1
                    cached = unwalked_waiting
            key = cached if type(cached) is GroupKey else cached[0]
            if key is not last_key:
                group = groups.get(key)
                if group is None:
                    group = groups[key] = Group(key, take(key), take)
                last_key, add_member = key, group.members.part().append
            add_member(info)
            if several:
                counts[loop_id] = counts.get(loop_id, 0) + 1
            found += 1
        self.count += found
        self.unwalked += skipped

    @staticmethod
    def _refer(info: Any, waiter: Any) -> None:
        """Keep a weak reference to the future the task now waits on (``info.waiter``)."""
        try:
            # A task awaited (``await task``) has a record, which is a weak reference to it
            # already: 80 bytes fewer for each of its awaiters.
            record = hooks.record_of(waiter) if type(waiter) is _TASK else None
            if record is None:
                record = weakref.ref(waiter)
                untrack(record)  # a million new tracked objects set off a full collection
            info.waiter = record
        except TypeError:
            info.waiter = _UNKNOWN  # never the same again: treated as new each pass

    def unwalked_keys(self) -> Any:
        """The keys of the pseudo-groups of tasks whose chains this pass had no time to walk."""
        return self._unwalked_keys.values()

    def _add(self, key: GroupKey, info: Any) -> None:
        group = self.groups.get(key)
        if group is None:
            take = self.passes.lists.take
            group = self.groups[key] = Group(key, take(key), take)
        group.members.part().append(info)

    def within(self, task: Any, info: Any, loop_id: int) -> Any:
        """The task's description (see ``TaskPasses.describe``) while the budget for walking
        lasts; then the key of its pseudo-group, the record left uncached for the next pass.
        Only a pass with a budget calls it (``visit`` describes inline in a complete one)."""
        if self.walked_s < self.budget:
            started = time.perf_counter()
            try:
                return self._describe(task, info, loop_id)
            finally:
                self.walked_s += time.perf_counter() - started
        if self.first_skipped is None:
            self.first_skipped = info.seq
        self.unwalked += 1
        if getattr(task, "_fut_waiter", None) is not None:
            state = "waiting"
        else:
            state = "running" if task is self._current(task, loop_id) else "ready"
        return self._unwalked_keys[state]

    def walk_later(self) -> None:
        """Walk (within the budget) the chains of the records ``visit`` put off: those before
        where the last pass stopped.  From now on ``visit`` puts off none."""
        self.resume = 0
        pace, later = self.pace, self.later
        for n, info in enumerate(later):
            if not n & 511:
                pace()
            task = info()
            try:
                cached = self.within(task, info, id(task._loop))
                ended = task.done()  # since the visit counted it: its chain was already gone
                if info.cache is not None and info.waiter is _NOT_WALKED:  # walked: referred to now
                    waiter = task._fut_waiter
                    if waiter is None:  # woken since the visit
                        info.waiter = None
                    else:
                        self._refer(info, waiter)
            except Exception:
                ended = True
            if ended:  # freed, ended or broken since the visit counted it: counted no more
                self.count -= 1
                continue
            self._add(cached if type(cached) is GroupKey else cached[0], info)

    def _current(self, task: Any, loop_id: int) -> Any:
        """The task running on the task's loop (looked up once per loop and pass)."""
        return _current(self._currents, task, loop_id)

    def _describe(self, task: Any, info: Any, loop_id: int) -> tuple:
        return self.passes.describe(task, info, self._current(task, loop_id),
                                    getattr(task, "_fut_waiter", None))
