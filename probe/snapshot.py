"""Sampling and snapshots: everything the probe answers is built here, on the probe thread.

The background *sample* is cheap on purpose: per task it only checks whether the future the
task waits on (``_fut_waiter``) is still the same object, which is what "blocked since" means;
per thread, whether its innermost frame and instruction are the same and the kernel has not
scheduled it since.  The expensive part, walking a task's await chain, is done when a client
asks, and cached for as long as the task's waiter does not change: a task parked on the same
future has not moved, so a pile of 100,000 leaked tasks is walked once, not every second.
"""
from __future__ import annotations

import array
import asyncio
import collections
import itertools
import operator
import os
import platform
import sys
import sysconfig
import threading
import time
import weakref
from typing import Any

from . import hooks, memory, registry, tasks as tasks_mod, threads as threads_mod, verdicts as verdicts_mod
from tasktop import wire
from .config import Options
from .handoff import Handoff, Pacer
from .frames import creation_site, group_id, resolve, to_wire
from .loops import LoopWatch
from .registry import CHUNK
from tasktop.wire import MAX_GROUPS, MAX_PAGE, SCHEMA

PROBE_VERSION = "0.1.0"
BUDGET = 0.009  # of a core: what the probe thread may spend in the background
RECHECK = 30.0  # seconds: how long asyncio's registry may go without a full look-up
_STDLIB = sysconfig.get_paths()["stdlib"] + os.sep


_UNSET = object()  # not looked up yet
_SEQ = operator.attrgetter("seq")
_SINCE = operator.attrgetter("since")
_SITE = operator.attrgetter("site")
_PARENT = operator.attrgetter("parent")


class _WireStack:
    """A stack kept as ``(code, line)`` pairs, turned into frame maps once and then shared by
    every task (and reply) that shows it."""

    __slots__ = ("stack", "_wire", "_wire_source")

    def wire(self) -> list:
        if self._wire is None:
            self._wire = to_wire(self.stack)
        return self._wire

    def wire_source(self) -> list:
        if self._wire_source is None:
            self._wire_source = to_wire(self.stack, True)
        return self._wire_source


class GroupKey(_WireStack):
    """One (kind, state, stack), interned so that grouping hashes by identity."""

    __slots__ = ("kind", "state", "id", "__weakref__")

    def __init__(self, kind: str, state: str, stack: tuple) -> None:
        self.kind, self.state, self.stack = kind, state, stack
        self.id = group_id(kind, state, stack)
        self._wire = self._wire_source = None


class SiteKey(_WireStack):
    """A creation stack, interned like ``GroupKey``."""

    __slots__ = ("raw", "source")

    def __init__(self, raw: tuple, depth: int) -> None:
        self.source = raw  # the hook's interned tuple (kept: its id is the key)
        self.raw = resolve(raw)  # (code, line) pairs
        self.stack = creation_site(self.raw, depth)
        self._wire = self._wire_source = None


class _Group:
    __slots__ = ("key", "count", "bmin", "bmax", "created", "members")

    def __init__(self, key: GroupKey, members: list | None = None) -> None:
        self.key = key
        self.count = 0
        self.bmin = float("inf")
        self.bmax = 0.0
        self.created: list = []  # (stack shown, count, up to 3 ids of tasks that made them)
        self.members: list = [] if members is None else members

    def add(self, blocked: float, member: Any) -> None:
        """Count one member (a thread row: threads have no creation site) into the group."""
        self.count += 1
        if blocked < self.bmin:
            self.bmin = blocked
        if blocked > self.bmax:
            self.bmax = blocked
        self.members.append(member)

    def tally(self, now: float, site_of: Any, pace: Any) -> None:
        """Count a task group from its members (records): blocked range, creation sites and
        the tasks that made them.  Done per group after the pass with C-level ``map``s,
        ``Counter`` and ``dict.fromkeys`` (a Python loop per member cost 3 to 4 times more),
        over slices of ``CHUNK`` members: a C call holds the GIL until it returns, and a
        100,000-member group in one call held the event loop up for 6 to 11 ms.

        Every member was visited by this pass, so a task that is not waiting has ``since ==
        now``: the blocked range comes from the oldest and the newest ``since``."""
        members = self.members
        self.count = len(members)
        if not members:
            return
        oldest, newest = now, 0.0
        counted: collections.Counter = collections.Counter()
        for start in range(0, len(members), CHUNK):
            chunk = members[start:start + CHUNK]
            sinces = list(map(_SINCE, chunk))
            oldest, newest = min(oldest, min(sinces)), max(newest, max(sinces))
            sites = list(map(_SITE, chunk))
            for i in itertools.compress(itertools.count(), map(operator.is_, map(type, sites), itertools.repeat(tuple))):
                sites[i] = site_of(chunk[i])  # made since the last pass: interned once
            counted.update(sites)
            pace()
        self.bmin, self.bmax = max(0.0, now - newest), max(0.0, now - oldest)
        # Sites that differ only in frames beyond the depth shown (or the instruction) show as
        # one: merged by the stack shown, the ten largest with the tasks that made them.
        shown: dict = {}
        for site, count in counted.items():
            entry = shown.setdefault(site.stack if site is not None else None, [0, set()])
            entry[0] += count
            entry[1].add(site)
        top = sorted(shown.items(), key=lambda kv: -kv[1][0])[:10]
        self.created = [(stack, count, self._parents(sites, len(shown) == 1, pace))
                        for stack, (count, sites) in top]

    def _parents(self, sites: set, every: bool, pace: Any) -> list:
        """The first three distinct tasks (seqs) that made members created at one of ``sites``
        (``every``: all the group's sites).

        Distinct values are gathered in ``dict.fromkeys`` of plain ints: a dict that holds
        no container is not tracked by the collector, whereas a tuple per (site, parent) pair
        was, and 5,000 of them per pass set off collections that each walked every young
        container of the pass."""
        members = self.members
        found: dict = {}
        for start in range(0, len(members), CHUNK):
            chunk = members[start:start + CHUNK]
            parents = map(_PARENT, chunk)
            if not every:
                parents = itertools.compress(parents, map(sites.__contains__, map(_SITE, chunk)))
            found.update(dict.fromkeys(parents))
            found.pop(None, None)
            pace()
            if len(found) >= 3:
                break
        return list(found)[:3]

    def to_wire(self, source: bool = False) -> dict:
        return {
            "id": self.key.id,
            "kind": self.key.kind,
            "count": self.count,
            "state": self.key.state,
            "blocked_min_s": round(self.bmin if self.count else 0.0, 3),
            "blocked_max_s": round(self.bmax, 3),
            "stack": self.key.wire_source() if source else self.key.wire(),
            "created_by": [
                {"count": count, "stack": to_wire(stack, source) if stack else None, "in_tasks": parents[:3]}
                for stack, count, parents in self.created
            ],
        }


class _Lists:
    """The long lists of a pass (its copy of the records, each group's members), kept from
    one pass to the next and refilled.

    A list the collector has seen survive is in its oldest generation and is not walked by
    young collections; a new list of 100,000 records is, on every young collection while the
    pass lasts, and reading 100,000 records' GC headers held the event loop up for 7 ms each
    time.  A pass's lists are only used until the next pass starts (the probe thread answers
    one request at a time)."""

    def __init__(self) -> None:
        self._kept: dict = {}  # name or group key -> list
        self._used: dict = {}

    def take(self, name: Any) -> list:
        """An empty list for ``name`` in this pass: the one it had in the last pass, if any."""
        found = self._kept.pop(name, None)
        if found is None:
            found = []
        self._used[name] = found
        return found

    def recycle(self, pace: Pacer) -> None:
        """A pass starts: the last pass's lists are emptied and kept; others are let go."""
        for items in self._used.values():
            empty(items, pace)
        self._kept, self._used = self._used, {}


def empty(items: list, pace: Pacer) -> None:
    """``items.clear()`` a slice at a time: dropping 100,000 references touches 100,000
    objects, one C call that held the event loop up for 5 ms."""
    while items:
        del items[-CHUNK:]
        pace()


class _Walk:
    """One pass over task records (see ``State._task_pass``); ``visit`` is called again for
    records the pass could not see in its first copy."""

    def __init__(self, state: "State", now: float, watched: set, grouping: bool, rows: bool,
                 pace: Pacer) -> None:
        self.state, self.now, self.watched, self.grouping, self.pace = state, now, watched, grouping, pace
        self.rows = rows
        self.count = 0  # tasks found
        # Only when rows are asked for, and records only (a record is a weak reference to
        # its task): a list of 100,000 tasks is traversed by every collection while it is
        # young, and reading each task's GC header held the loop up for 6 ms per collection.
        self.infos: list = state.lists.take("rows")
        self.counts: dict[int, int] = {}
        self.groups: dict[GroupKey, _Group] = {}
        self._currents: dict[int, Any] = {}

    def visit(self, records: list) -> None:
        """Bring ``records`` up to date (and group them, and list them)."""
        now, watched, grouping, pace = self.now, self.watched, self.grouping, self.pace
        counts, groups = self.counts, self.groups
        several = len(watched) > 1
        rows = self.rows
        add_info = self.infos.append
        ref = weakref.ref
        found = 0
        for n, info in enumerate(records):
            if not n & 511:
                pace()
            task = info()
            if task is None:
                continue
            try:
                if task.done():
                    continue
                loop_id = id(task._loop)
            except Exception:
                continue
            if loop_id not in watched:
                continue
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is None:
                info.waiter = None
                info.since = now
                info.cache = None
            else:
                old = info.waiter
                if old is None or old() is not waiter:
                    try:
                        info.waiter = ref(waiter)
                    except TypeError:
                        info.waiter = _UNKNOWN  # never the same again: treated as new each pass
                    info.since = now
                    info.cache = None
            if grouping:
                cached = info.cache
                if cached is None:
                    try:
                        cached = self._describe(task, info, loop_id)
                    except Exception:
                        continue
                key = cached if type(cached) is GroupKey else cached[0]
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group(key, self.state.lists.take(key))
                group.members.append(info)
            if several:
                counts[loop_id] = counts.get(loop_id, 0) + 1
            found += 1
            if rows:
                add_info(info)
        self.count += found

    def _describe(self, task: Any, info: Any, loop_id: int) -> tuple:
        current = self._currents.get(loop_id, _UNSET)
        if current is _UNSET:
            try:
                current = asyncio.current_task(task._loop)
            except Exception:
                current = None
            self._currents[loop_id] = current
        return self.state._describe(task, info, current)


def _unknown_waiter() -> None:
    return None


_UNKNOWN = _unknown_waiter  # a waiter that cannot be weakly referenced: returns None, never it


def _process_started() -> float | None:
    try:
        with open("/proc/self/stat") as fh:
            stat = fh.read()
        ticks = int(stat[stat.rfind(")") + 2:].split()[19])
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime"):
                    return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except Exception:
        return None
    return None


class Pass:
    """What one sampling pass found.  ``infos`` (when rows were asked for) are the records of
    the tasks, in creation order; ``info()`` is the task (None once it has been freed), and
    ``described(info)`` its description: ``(group key, awaited task seq, awaited seqs)``."""

    __slots__ = ("now", "count", "infos", "loop_counts", "thread_rows", "groups")

    def __init__(self, now: float, count: int, infos: list, loop_counts: dict,
                 thread_rows: list, groups: dict) -> None:
        self.now, self.count, self.infos, self.loop_counts = now, count, infos, loop_counts
        self.thread_rows, self.groups = thread_rows, groups

    def blocked(self, info: Any) -> float:
        return self.now - info.since if info.waiter is not None else 0.0


class State:
    """What the probe knows about its process.  Used only from the probe thread."""

    def __init__(self, options: Options, handoff: Handoff | None = None) -> None:
        self.options = options
        self.handoff = handoff
        self.exclude: set[int] = set()  # the probe's own thread(s)
        self.watches: dict[int, LoopWatch] = {}  # id(loop) -> watch
        self.loop_numbers: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._next_loop = 1
        self.thread_seen: dict[int, tuple] = {}  # ident -> (signature, since)
        self._keys: dict = {}
        self._sites: dict = {}  # id of an interned creation stack -> SiteKey
        self._sites_generation = hooks.interned_generation
        self.fresh: list = []  # records made during a pass (see _seq_of)
        self.lists = _Lists()
        self._candidate: tuple | None = None  # see _unrecorded
        self._trusted: tuple | None = None
        self._checked = 0.0
        self.sample_ms = 0.0
        self.interval = options.interval
        self.other_share = 0.0  # of a core, spent by the probe thread on other than samples
        self._sampled = 0.0  # CPU seconds spent on samples, in all
        self.answering = 0.0  # CPU seconds spent answering clients, in all (kept by the server)
        self._mark: tuple | None = None  # (monotonic, thread CPU, sampled, answering) at the window's start
        self.history: collections.deque = collections.deque(maxlen=120)  # 10 minutes at 5 s
        self.started = _process_started() or time.time()

    # -- loops -------------------------------------------------------------------------
    def loop_number(self, loop: Any) -> int:
        number = self.loop_numbers.get(loop)
        if number is None:
            number = self.loop_numbers[loop] = self._next_loop
            self._next_loop += 1
        return number

    def _refresh_watches(self) -> list[LoopWatch]:
        """A watch for every running loop (new loops get our task factory installed)."""
        watches = {}
        # Thread idents from threading, not sys._current_frames(): that makes a frame object
        # for every thread's current function, 20 times a second (see threads.current).
        live = {t.ident for t in threading.enumerate()}
        others = None
        for loop, ident in hooks.running_loops():
            if ident is not None and ident not in live:
                if others is None:  # a thread threading does not know (started from C)
                    others = set(sys._current_frames())
                if ident not in others:
                    continue  # "running" in a thread that is gone: a loop copied by fork()
            key = id(loop)
            watch = self.watches.get(key)
            if watch is None or watch.loop is not loop:
                watch = LoopWatch(loop, ident)
                try:
                    if not hooks.has_factory(loop):
                        loop.call_soon_threadsafe(hooks.install_factory, loop)
                except Exception:
                    pass
            if self.handoff is not None and not self.handoff.attached(loop):
                # Also after a pause (fork) stopped the loop's hand-off timer.
                try:
                    loop.call_soon_threadsafe(self.handoff.attach, loop)
                except Exception:
                    pass
            watches[key] = watch
        self.watches = watches
        return list(watches.values())

    def heartbeat(self, now: float) -> None:
        """Post/collect heartbeats on every running loop."""
        for watch in self._refresh_watches():
            if not watch.tick(now, self.options.stall_ms):
                self.watches.pop(id(watch.loop), None)

    # -- sampling ----------------------------------------------------------------------
    def _task_pass(self, grouping: bool, rows: bool = False) -> Pass:
        """Every live task of every running loop with its record, the waiter it is blocked on
        brought up to date; with ``grouping``, described (cached while the waiter is the same)
        and grouped; with ``rows``, listed (``Pass.infos``).

        The walk goes through the probe's own records, not asyncio's registry: records sit in
        creation order, so a pass reads them nearly in memory order and needs no lookup to get
        from a task to its record (at 100,000 tasks the lookups alone cost more than the rest).
        The registry is then only checked, in C, for tasks the records miss (made by
        ``asyncio.Task(...)``, or before the probe started): those are recorded and visited,
        and later passes find them in the records.  Nothing allocated per task outlives the pass:
        100,000 surviving container objects make the collector run a full collection of the
        host's whole heap, which held its event loop up for most of a second."""
        now = time.monotonic()
        watched = {id(w.loop) for w in self._refresh_watches()}
        pace = Pacer(self.handoff)
        self.lists.recycle(pace)
        walk = _Walk(self, now, watched, grouping, rows, pace)
        self.fresh = []
        # The records and asyncio's registry, copied at one moment (two C calls in a row, of
        # a few milliseconds at 100,000 tasks: the loops get the GIL just before).
        records, refs = self.lists.take("records"), self.lists.take("refs")
        pace.now()
        records.extend(hooks.records)  # in creation order
        eager = registry.copy(refs)
        since = records[-1].seq if records else 0
        difference = self._difference_of(records, refs, eager, pace)
        walk.visit(records)
        empty(records, pace)
        # Then what that copy could not hold: tasks no factory of ours saw, and records made
        # meanwhile for tasks first met as awaited by another (each visited once).
        unknown = self._unrecorded(difference, refs, eager, since, pace, now)
        empty(refs, pace)
        batch = self.fresh + [hooks.info_for(task) for task in unknown]
        for _round in range(100):  # each round describes tasks awaited by the last one's
            if not batch:
                break
            self.fresh = []
            walk.visit(batch)
            batch = self.fresh
        self.fresh = []
        counts = walk.counts
        if len(watched) == 1:  # else counted per task
            counts[next(iter(watched))] = walk.count
        for group in walk.groups.values():
            group.tally(now, self._site, pace)
        return Pass(now, walk.count, walk.infos, counts, [], walk.groups)

    @staticmethod
    def _difference_of(records: list, refs: list, eager: list, pace: Pacer) -> tuple | None:
        """How the copy of asyncio's registry differs from the copy of the records, taken at
        the same moment: in size, and in the sum and the exclusive or of the weak references'
        hashes (see _unrecorded).  None while eager tasks are in their first step."""
        if eager:
            return None
        mine, theirs = registry.fingerprint(records, pace), registry.fingerprint(refs, pace)
        if mine is None or theirs is None:
            return None
        return len(records) - len(refs), mine[0] - theirs[0], mine[1] ^ theirs[1]

    def _unrecorded(self, difference: tuple | None, refs: list, eager: list, since: int, pace: Pacer,
                    now: float) -> list:
        """Tasks of the registry's copy ``refs`` that the records miss.

        Looking each of 100,000 references up costs 20-25 ms, so it is skipped while the two
        copies differ exactly as they did when every registered task had a record: same
        difference in size, and in the sum and the exclusive or of the references' hashes (a
        task's hash is its address, distinct among live tasks).  The registry may hold
        tasks the records do not need (finished ones) and the records tasks it does not hold
        (a task that finished in its eager first step), but a task made without our factory
        changes the difference.

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
        missing, complete = registry.unrecorded(hooks.records, refs, eager, since, pace)
        if complete and difference is not None:
            self._trusted = difference if difference == self._candidate else None
            self._candidate = difference
        else:
            self._trusted = self._candidate = None
        self._checked = now
        return missing

    def _thread_rows(self) -> list[dict]:
        now = time.monotonic()
        rows = threads_mod.current(self.exclude)
        seen = {}
        for row in rows:
            sig = (row.pop("frame_id"), row["lasti"], row["kernel"].get("switches"))
            prev = self.thread_seen.get(row["ident"])
            since = prev[1] if prev is not None and prev[0] == sig and row["state"] != "running" else now
            seen[row["ident"]] = (sig, since)
            row["blocked_s"] = round(now - since, 3)
        self.thread_seen = seen
        return rows

    def sample(self) -> None:
        """The background sample; adapts the interval so that the probe thread as a whole
        stays under ``BUDGET`` of a core.

        What the thread spends besides samples and answering clients (heartbeats, wake-ups)
        is measured over windows of 10 s and taken off the budget first; samples get what is
        left, but never less than a fifth of it.  Clients are not counted: they asked.  When a
        group pass is due (every 5 s) the sample groups, so that the growth verdicts have a
        history even when no client asks."""
        t0 = time.thread_time()
        now = time.monotonic()
        if not self.history or now - self.history[-1][0] >= 5.0:
            self._collect(rows=False)
        else:
            self._task_pass(grouping=False)
            self._thread_rows()
        t1 = time.thread_time()
        cost = t1 - t0
        self.sample_ms = cost * 1000.0
        self._sampled += cost
        if self._mark is None:  # the first sample, on the probe thread (thread_time is per thread)
            self._mark = (now, t1, self._sampled, self.answering)
        mark_time, mark_cpu, mark_sampled, mark_answering = self._mark
        if now - mark_time >= 10.0:
            other = (t1 - mark_cpu) - (self._sampled - mark_sampled) - (self.answering - mark_answering)
            self.other_share = max(0.0, other / (now - mark_time))
            self._mark = (now, t1, self._sampled, self.answering)
        left = max(BUDGET / 5, BUDGET - self.other_share)
        self.interval = min(60.0, max(self.options.interval, cost / left))

    # -- describing ----------------------------------------------------------------------
    def _intern(self, kind: str, state: str, stack: tuple) -> GroupKey:
        """The one key of a (kind, state, stack of ``(code, line)`` pairs)."""
        flat = [item for pair in stack for item in pair]
        return self._intern_flat(kind, state, flat)

    def _intern_flat(self, kind: str, state: str, flat: list) -> GroupKey:
        """The one key of a (kind, state, ``[code, line, ...]``), looked up by the ids of the
        codes (hashing a code object costs 130-360 ns); the key holds the codes, so their ids
        are not reused while it is kept."""
        ids = list(flat)
        ids[0::2] = map(id, flat[0::2])
        lookup = (kind, state, *ids)
        found = self._keys.get(lookup)
        if found is None:
            if len(self._keys) > 50000:
                self._keys.clear()
            found = self._keys[lookup] = GroupKey(kind, state, tuple(zip(flat[0::2], flat[1::2])))
        return found

    def _site(self, info: hooks.TaskInfo) -> Any:
        """The record's creation stack as a ``SiteKey``, made once per interned stack (looked
        up by identity: the hook shares one tuple per distinct stack)."""
        site = info.site
        if site is None or type(site) is SiteKey:
            return site
        if self._sites_generation != hooks.interned_generation:
            self._sites.clear()  # the hook let go of its tuples: their ids may be reused
            self._sites_generation = hooks.interned_generation
        found = self._sites.get(id(site))
        if found is None or found.source is not site:
            if len(self._sites) > 50000:
                self._sites.clear()
            found = self._sites[id(site)] = SiteKey(site, self.options.creation_depth)
        info.site = found
        return found

    def _seq_of(self, task: Any) -> int:
        """The id of a task another one awaits; a record made for it here (a task no factory
        of ours saw) goes to ``fresh``, for the pass to visit too."""
        info = hooks.record_of(task)
        if info is None:
            info = hooks.info_for(task)
            self.fresh.append(info)
        return info.seq

    def _describe(self, task: Any, info: hooks.TaskInfo, current: Any) -> Any:
        """The task's group key, or ``(key, awaited task seq, awaited seqs)`` when it awaits
        other tasks (see ``described``): kept in ``info.cache`` while the waiter is the same,
        reset every pass if none.  Most tasks await no task: no tuple is kept for them."""
        cached = info.cache
        if cached is not None:
            return cached
        flat, state, awaiting, children = tasks_mod.describe_flat(task, current)
        key = self._intern_flat("task", state, flat)
        if awaiting is None and not children:
            result: Any = key
        else:
            seq_of = self._seq_of
            result = (key, seq_of(awaiting) if awaiting is not None else None,
                      tuple(seq_of(c) for c in children))
        info.cache = result
        return result

    def _collect(self, rows: bool = True) -> Pass:
        """One consistent pass: groups, thread rows, and (with ``rows``) tasks and their records."""
        found = self._task_pass(grouping=True, rows=rows)
        found.thread_rows = thread_rows = self._thread_rows()
        groups = found.groups
        for row in thread_rows:
            key = self._intern("thread", row["state"], row["stack"])
            row["key"] = key
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(key)
            group.add(row["blocked_s"], row)
        self._remember(groups)
        return found

    def _remember(self, groups: dict) -> None:
        """Keep group counts over time (at most one point per 5 s) for growth verdicts."""
        now = time.monotonic()
        if self.history and now - self.history[-1][0] < 5.0:
            return
        self.history.append((now, {g.key.id: g.count for g in groups.values()}))


    # -- replies --------------------------------------------------------------------------
    def _process(self) -> dict:
        return {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "argv": list(getattr(sys, "argv", []) or []),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "started_at": self.started,
        }

    def _loops(self, loop_counts: dict) -> list[dict]:
        names = {t.ident: t.name for t in threading.enumerate()}
        now = time.monotonic()
        out = []
        for watch in self.watches.values():
            pending = watch.pending_ms(now)
            lag = watch.lag_ms
            if pending > self.options.stall_ms:
                lag = max(lag or 0.0, pending)
            out.append({
                "id": self.loop_number(watch.loop),
                "thread": watch.ident,
                "thread_name": names.get(watch.ident),
                "type": f"{type(watch.loop).__module__}.{type(watch.loop).__qualname__}",
                "tasks": loop_counts.get(id(watch.loop), 0),
                "lag_ms": None if lag is None else round(lag, 3),
                "stall_count": watch.stall_count,
                "stalls": [
                    {"at": s.at, "duration_ms": round(s.duration_ms, 3), "stack": to_wire(s.stack)}
                    for s in watch.stalls
                ],
            })
        return out

    def _summary(self, found: Pass) -> dict:
        ordered = sorted(found.groups.values(), key=lambda g: (-g.count, g.key.kind, g.key.id))
        return {
            "schema": SCHEMA,
            "time": time.time(),
            "process": self._process(),
            "probe": {
                "version": PROBE_VERSION,
                "interval_s": round(self.interval, 3),
                "sample_ms": round(self.sample_ms, 3),
                "creation_stacks": self.options.creation_stacks,
                "tracemalloc": bool(self.options.tracemalloc),
            },
            "totals": {"tasks": found.count, "threads": len(found.thread_rows),
                       "loops": len(self.watches), "groups": len(ordered)},
            "memory": memory.summary(),
            "loops": self._loops(found.loop_counts),
            "groups": [g.to_wire() for g in ordered[:MAX_GROUPS]],
        }

    def _task_row(self, task: Any, info: Any, found: Pass, awaited_by: dict, source: bool = False,
                  with_stack: bool = True) -> dict:
        key, awaiting, children = described(info)
        site = self._site(info)
        try:
            name = task.get_name()
            loop = self.loop_number(task._loop)
        except Exception:  # freed since the pass (None)
            name = loop = None
        row = {
            "id": info.seq,
            "name": name,
            "group": key.id,
            "loop": loop,
            "state": key.state,
            "blocked_s": round(found.blocked(info), 3),
        }
        if with_stack:
            row["stack"] = key.wire_source() if source else key.wire()
        row.update({
            "created_by": (site.wire_source() if source else site.wire()) if site is not None and site.stack else None,
            "created_in": info.parent,
            "awaiting": awaiting,
            "awaiting_all": list(children),
            "awaited_by": awaiters(awaited_by, info.seq),
        })
        return row

    def _rows(self, found: Pass, order: list, awaited_by: dict) -> Any:
        pace = Pacer(self.handoff)
        for n, i in enumerate(order):
            if not n & 127:
                pace()
            info = found.infos[i]
            yield self._task_row(info(), info, found, awaited_by)

    def _by_seq(self, infos: list) -> Any:
        """Indices of ``infos`` in task-id order.  Records are walked in creation order, so
        this is ``range(n)`` but after a race between two threads making tasks; checked in
        slices (one C call over 100,000 items held the event loop up for 8 ms)."""
        pace = Pacer(self.handoff)
        seqs: list = []
        for start in range(0, len(infos), CHUNK):
            seqs.extend(map(_SEQ, infos[start:start + CHUNK]))
            pace()
        for start in range(0, len(seqs), CHUNK):
            if not all(map(operator.lt, seqs[start:start + CHUNK], seqs[start + 1:start + CHUNK + 1])):
                return sorted(range(len(seqs)), key=seqs.__getitem__)
            pace()
        return range(len(seqs))

    def _awaited_by(self, infos: list) -> dict:
        """Task seq -> the seq of the task awaiting it, or a list of them when several do
        (see ``awaiters``).  An int for the usual one: a list per awaited task was 100,000
        containers at a million tasks, and set off a full collection of the host's heap."""
        out: dict[int, Any] = {}
        pace = Pacer(self.handoff)
        for n, info in enumerate(infos):
            if not n & 1023:
                pace()
            cached = info.cache
            if type(cached) is GroupKey:
                continue
            _key, awaiting, children = cached
            for awaited in ((awaiting,) if awaiting is not None else ()) + children:
                found = out.get(awaited)
                if found is None:
                    out[awaited] = info.seq
                elif type(found) is int:
                    out[awaited] = [found, info.seq]
                else:
                    found.append(info.seq)
        return out

    @staticmethod
    def _thread_row(row: dict, source: bool = False) -> dict:
        return {
            "ident": row["ident"],
            "native_id": row["native_id"],
            "name": row["name"],
            "daemon": row["daemon"],
            "group": row["key"].id,
            "state": row["state"],
            "kernel": {"state": row["kernel"]["state"], "syscall": row["kernel"]["syscall"]},
            "blocked_s": row["blocked_s"],
            "stack": to_wire(row["stack"], source),
            "cpu_s": row["kernel"]["cpu_s"],
        }

    def summary(self) -> dict:
        return self._summary(self._collect(rows=False))

    def full(self) -> dict:
        found = self._collect()
        out = self._summary(found)
        awaited_by = self._awaited_by(found.infos)
        order = self._by_seq(found.infos)
        # Rows are made while the reply is packed, one at a time (see wire.Stream).
        out["tasks"] = wire.Stream(len(order), self._rows(found, order, awaited_by))
        out["threads"] = [self._thread_row(r) for r in found.thread_rows]
        return out

    def group(self, gid: str, offset: int = 0, limit: int = 100) -> dict:
        found = self._collect()
        for group in found.groups.values():
            if group.key.id == gid:
                break
        else:
            raise LookupError(f"no group {gid} (it may have emptied)")
        limit = max(1, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        if group.key.kind == "task":
            # Longest blocked first, then by id: two stable sorts on plain numbers, so that
            # no key tuple per task is made.
            members = group.members
            members.sort(key=_SEQ)
            members.sort(key=_SINCE)
            page = members[offset:offset + limit]
            awaited_by = self._awaited_by(found.infos)
            items = [self._task_row(info(), info, found, awaited_by, with_stack=False)
                     for info in page]
        else:
            members = sorted(group.members, key=lambda r: (-r["blocked_s"], r["ident"]))[offset:offset + limit]
            items = []
            for r in members:
                row = self._thread_row(r)
                del row["stack"]
                items.append(row)
        return {"group": group.to_wire(source=True), "total": group.count, "offset": offset, "items": items}

    def task(self, seq: int) -> dict:
        found = self._collect()
        by_seq = {info.seq: i for i, info in enumerate(found.infos)}
        index = by_seq.get(int(seq))
        if index is None or found.infos[index]() is None:
            raise LookupError(f"no task {seq} (it may have finished)")
        info = found.infos[index]
        awaited_by = self._awaited_by(found.infos)
        row = self._task_row(info(), info, found, awaited_by, source=True)

        def brief(seq: int) -> dict:
            other = by_seq.get(seq)
            if other is None:
                return {"id": seq, "name": None, "state": "finished", "group": None}
            try:
                name = found.infos[other]().get_name()
            except Exception:
                name = None
            key = described(found.infos[other])[0]
            own = [item for item in key.stack if not item[0].co_filename.startswith(_STDLIB)]
            top = to_wire((own or key.stack)[:1])
            return {"id": seq, "name": name, "state": key.state, "group": key.id,
                    "frame": top[0] if top else None}

        chain, seen, nxt = [], {info.seq}, described(info)[1]
        while nxt is not None and nxt not in seen and len(chain) < 50:
            seen.add(nxt)
            chain.append(brief(nxt))
            nxt = described(found.infos[by_seq[nxt]])[1] if nxt in by_seq else None
        row["awaiting_chain"] = chain
        row["awaited_by_tasks"] = [brief(s) for s in row["awaited_by"]]
        row["awaiting_all_tasks"] = [brief(s) for s in row["awaiting_all"][:100]]
        row["created_in_task"] = brief(row["created_in"]) if row["created_in"] is not None else None
        return row

    def thread(self, ident: int) -> dict:
        for row in self._thread_rows():
            if row["ident"] == int(ident):
                row["key"] = self._intern("thread", row["state"], row["stack"])
                return self._thread_row(row, source=True)
        raise LookupError(f"no thread {ident} (it may have exited)")

    def threads(self) -> list[dict]:
        out = []
        for row in self._thread_rows():
            row["key"] = self._intern("thread", row["state"], row["stack"])
            out.append(self._thread_row(row))
        return out

    def memory(self, top: int = 20) -> dict:
        out = memory.summary()
        out["top"] = memory.top_sites(max(1, min(int(top), 200)))
        return out

    def stalls(self) -> list[dict]:
        return [dict(loop=item["id"], **s) for item in self._loops({}) for s in item["stalls"]]

    def verdicts(self, budget_s: float = 2.0) -> dict:
        """Leak verdicts for the current groups: proven (unreachable), growing, stuck.

        The proof (see verdicts.Proof) is paced like every pass and bounded by ``budget_s``;
        what it could not settle in time is reported under ``unsettled``."""
        found = self._collect()
        now = time.monotonic()
        pace = Pacer(self.handoff)
        # Groups smallest first: when the budget runs out, the small ones (the likely leaks)
        # have been looked at; waiters of the groups not reached stay unsettled.
        lists: list = []  # members lists of the task groups looked at; a source is (list, index)
        proof = verdicts_mod.Proof(pace, budget_s, lambda s: lists[s >> 32][s & 0xFFFFFFFF]())
        group_ids: list[str] = []
        number: dict[str, int] = {}
        by_seq: dict[int, int] = {}  # task seq -> waiter
        dependents: list = []  # (source number, group number, awaited seqs)
        unexamined: dict[str, int] = {}  # group id -> waiters the budget left unlooked at

        def group_number(key: GroupKey) -> int:
            n = number.get(key.id)
            if n is None:
                n = number[key.id] = len(group_ids)
                group_ids.append(key.id)
            return n

        def record(source: int) -> Any:
            return lists[source >> 32][source & 0xFFFFFFFF]

        threads = self._thread_waiters(found, proof, group_number)
        self_waking = verdicts_mod.SELF_WAKING
        waiter_seqs = array.array("q")  # per task waiter: its seq (for dependents, below)
        task_groups = sorted((g for g in found.groups.values()
                              if g.key.kind == "task" and g.key.state not in self_waking), key=lambda g: g.count)
        # Finding what each waiter waits on may take half the budget: counting needs the rest.
        looking = time.monotonic() + budget_s / 2
        partial: set[str] = set()  # groups only some of whose waiters were looked at
        for group in task_groups:
            if time.monotonic() > looking:
                unexamined[group.key.id] = group.count
                proof.out_of_time = True
                continue
            members, key, state = group.members, group.key, group.key.state
            g = group_number(key)
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
        task = None
        # Waiter numbers of the tasks dependents await (only those: a dict of every waiter
        # would be a million entries).
        needed = {s for _n, _g, awaited in dependents for s in awaited}
        for start in range(0, len(waiter_seqs), 2 * CHUNK):
            pairs = waiter_seqs[start:start + 2 * CHUNK]
            by_seq.update(itertools.compress(zip(pairs[0::2], pairs[1::2]), map(needed.__contains__, pairs[0::2])))
            pace()
        del waiter_seqs
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
        try:
            verdict = proof.run()
            # A verdict stands only if its waiter did not move while the proof ran.
            for w in itertools.compress(range(len(verdict)), verdict):
                source = proof.source[w]
                if not (_thread_unchanged(*threads[w]) if source < 0 else _task_unchanged(record(source))):
                    verdict[w] = None
            tally = self._tally(proof, verdict, group_ids, pace)
            for gid in partial:  # the waiters left out may hold what the others wait on
                e = tally.get(gid)
                if e is not None:
                    e["unknown"] += e["open"]
                    e["open"] = 0
            for gid, count in unexamined.items():
                tally.setdefault(gid, {"proven": 0, "open": 0, "unknown": 0, "objects": set()})["unknown"] += count
        finally:
            proof.close()
        unsettled = self._unsettled(tally, proof, budget_s)
        return {"verdicts": self._verdict_rows(found, tally), "time": time.time(),
                "history_s": round(now - self.history[0][0], 1) if self.history else 0.0,
                "unsettled": unsettled}

    @staticmethod
    def _tally(proof: Any, verdict: list, group_ids: list, pace: Pacer) -> dict:
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

    def _thread_waiters(self, found: Pass, proof: Any, group_number: Any) -> dict:
        """Add blocked threads to ``proof``; ``{waiter: (ident, signature)}``.  Their frames
        are held only here, and let go of before the proof runs (see threads.current)."""
        thread_objects = {t.ident: t for t in threading.enumerate()}
        frames_of = sys._current_frames()
        out = {}
        try:
            for row in found.thread_rows:
                key = row["key"]
                thread = thread_objects.get(row["ident"])
                if key.state in verdicts_mod.SELF_WAKING or thread is None:
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

    @staticmethod
    def _unsettled(proven: dict, proof: Any, budget_s: float) -> dict | None:
        """What the proof could not judge, and why (null when it judged everything)."""
        unknown = sum(e["unknown"] for e in proven.values())
        if not unknown:
            return None
        if proof.out_of_time:
            why = f"the proof ran out of its {budget_s:g}s budget (ask with a bigger budget: tasktop dump --budget)"
        else:
            why = "they moved while the proof ran"
        return {"waiters": unknown, "groups": sum(1 for e in proven.values() if e["unknown"]), "reason": why}

    def _verdict_rows(self, found: Pass, proven: dict) -> list[dict]:
        out = []
        history = list(self.history)
        for group in sorted(found.groups.values(), key=lambda g: -g.count):
            gid, state = group.key.id, group.key.state
            base = {"group": gid, "kind": group.key.kind, "count": group.count, "state": state,
                    "blocked_min_s": round(group.bmin if group.count else 0.0, 3),
                    "frame": _own_frame(group.key.stack)}
            judged = proven.get(gid)
            if judged and judged["proven"]:
                count = judged["proven"]
                if not judged["objects"]:
                    reason = verdicts_mod.reason_dependent(state, group.bmin)
                else:
                    reason = verdicts_mod.reason_unreachable(count, group.key.kind, state, group.bmin,
                                                             verdicts_mod.noun_of(state), len(judged["objects"]))
                if count < group.count:
                    reason = f"{count} of the {group.count}: " + reason
                out.append(dict(base, verdict="unreachable", count=count, reason=reason))
            grew = verdicts_mod.growth(history, gid)
            if grew is not None:
                out.append(dict(base, verdict="growing", growth=grew, reason=verdicts_mod.reason_growing(grew)))
            if judged and judged["proven"] or grew is not None:
                continue
            if state not in verdicts_mod.SELF_WAKING and group.bmin >= 60.0:
                out.append(dict(base, verdict="stuck", reason=verdicts_mod.reason_stuck(group.count, state, group.bmin)))
        return out


def awaiters(awaited_by: dict, seq: int) -> list:
    """The sorted seqs of the tasks awaiting task ``seq`` (see ``State._awaited_by``)."""
    found = awaited_by.get(seq)
    return [] if found is None else [found] if type(found) is int else sorted(found)


def described(info: Any) -> tuple:
    """``(group key, awaited task seq or None, awaited seqs)`` of a record a pass described."""
    cached = info.cache
    return (cached, None, ()) if type(cached) is GroupKey else cached


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


def _own_frame(stack: tuple) -> dict | None:
    """The innermost frame outside the standard library (the user's own code)."""
    for item in stack:
        if not item[0].co_filename.startswith(_STDLIB):
            return to_wire((item,))[0]
    return to_wire(stack[:1])[0] if stack else None

