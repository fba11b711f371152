"""The lists that keep the probe's task records alive, in creation order, and how many are live.

A record is a weak reference to its task, found from the task among the task's own weak
references (``hooks``); nothing else refers to it.  So these lists are what keeps it: the
creation hook appends each new one to ``made`` (a C ``deque.append``, the only thing it does
here), and the probe thread moves them from there to ``kept``, the lists a pass walks, and
leaves out those of freed tasks once they are an eighth.  ``made`` is a deque: it grows in
blocks of 64 records, where a list of 180,000 (a burst between two takes) grew by copies into
ever larger blocks of glibc's main heap, and left 30 MiB of holes there in a third of the runs
at a million tasks (bench/README).  A dict of every record did both jobs before, at 114-158 ns
a task in the hook and 73 MiB at a million tasks (bench/README).

How many records are live is counted without walking them: those moved, plus those waiting in
``made``, less those whose task was freed (the records' callback counts them, in C).
"""
from __future__ import annotations

import collections
import functools
import itertools
import operator
from typing import Callable, Iterator

from .registry import CHUNK, add_hashes
from .untracked import untrack

#: Records made since the probe thread last took them (``take_made``), oldest first.
made: collections.deque = collections.deque()
_take_oldest = made.popleft
#: The records taken from ``made``, in lists of at most KEPT_CHUNK (a multiple of CHUNK): one
#: list of a million outgrew its memory block every eighth more tasks and was copied whole
#: into a new one, in one C call (23.6 ms of CPU at a million).  Only the probe thread changes it.
kept: list = []
KEPT_CHUNK = 65_536
_taken = 0  # records moved from ``made`` to ``kept`` so far
#: Called (in C) by a record's callback: one more record whose task was freed.
_dropped = itertools.count()
drop = _dropped.__next__
#: The records of the tasks freed last, newest last (the records' callback appends them): a task
#: destroyed while pending is reported by its finalizer after the collector has already cleared
#: its record, so the report looks here for its creation site and where it was last seen
#: waiting; and a pass tells the records freed since it copied the lists by them (``fingerprint``).
departed: collections.deque = collections.deque(maxlen=1024)

#: A record's ``waiter`` once its task is freed: the records' callback (``hooks._forget``) sets
#: it.  Called like a weak reference, it returns None (in C).  Not the callback's own slot,
#: which CPython clears when reference counting frees a task, but not when the collector
#: frees one (a task in a cycle): such a record looked alive for ever, and was never left out.
FREED = functools.partial(type(None))
#: A record's waiter, read from the record alone, where calling the reference reads the task
#: too (7 against 15 ms over 100,000 records, whose tasks are not in the cache).
_WAITER = operator.attrgetter("waiter")


def _alive(records: list) -> Iterator[bool]:
    """Whether each of ``records`` has a live task (its callback has not run), in C."""
    return map(operator.is_not, map(_WAITER, records), itertools.repeat(FREED))


def dropped() -> int:
    """How many records' tasks have been freed so far."""
    return int(repr(_dropped)[6:-1])  # count(N) says N


def count() -> int:
    """How many records have a live task (or one whose callback has not run yet): O(1)."""
    return _taken + len(made) - dropped()


def copy(out: list) -> None:
    """Extend ``out`` with every record, in creation order, those of freed tasks not yet left
    out included: one C call per list, with no hand-off between (what a pass compares with
    asyncio's registry must be of one moment; telling the freed from the rest touches every
    task, 15 ms at 100,000: ``fingerprint`` does it later, a slice at a time)."""
    for records in (*kept, made):
        out.extend(records)


def copy_live(out: list) -> None:
    """Extend ``out`` with every record whose task is alive, in creation order (not of one
    moment: for callers that only need them all)."""
    for records in (*kept, made):
        out.extend(itertools.compress(records, _alive(records)))


def fingerprint(records: list, dropped_then: int, pace: Callable[[], None]) -> tuple | None:
    """``(live, sum, xor)`` of the records of ``records`` (a ``copy``) whose task was alive when
    ``dropped()`` said ``dropped_then`` (the moment of the copy): how many, and the sum and the
    exclusive or of their hashes (a task's address, kept by its record), as
    ``registry.fingerprint`` gives them for asyncio's registry.  In slices, ``pace`` called
    between.  Those alive now, and those freed since, which are the newest in ``departed``;
    None if more were freed since than it holds.  (A record's callback running meanwhile may
    make it miss one: the fingerprints then differ, which costs a look-up, not a wrong answer.)"""
    total = mixed = live = 0
    freed: list = []
    for start in range(0, len(records), CHUNK):
        chunk = records[start:start + CHUNK]
        flags = list(_alive(chunk))
        hashes = list(map(hash, itertools.compress(chunk, flags)))
        if len(hashes) < len(chunk):
            freed.extend(itertools.compress(chunk, map(operator.not_, flags)))
        live += len(hashes)
        total, mixed = add_hashes(hashes, total, mixed)
        pace()
    if freed:
        since = dropped() - dropped_then
        if since > len(departed):
            return None
        late = set(map(id, itertools.islice(reversed(departed), since)))
        hashes = [hash(info) for info in freed if id(info) in late]
        live += len(hashes)
        total, mixed = add_hashes(hashes, total, mixed)
    return live, total, mixed


def take_made(pace: Callable[[], None], seen: Callable[[list], None] | None = None) -> None:
    """Move the records in ``made`` to the end of ``kept``, a slice of CHUNK at a time (a
    million of them may have been made since), ``seen`` called with each slice.  Probe
    thread only."""
    global _taken
    while made:  # what is appended meanwhile is taken too
        # One C call a slice: the hook may append meanwhile, at the other end.
        part = list(itertools.starmap(_take_oldest, itertools.repeat((), min(len(made), CHUNK))))
        _taken += len(part)
        _add_slice(kept, part)
        if seen is not None:
            seen(part)
        pace()


def _add_slice(lists: list, part: list) -> None:
    """Add ``part`` (a slice of at most CHUNK records) at the end of ``lists`` (lists of
    records): to its last list while that stays within KEPT_CHUNK, else as a list of its own."""
    if lists and len(lists[-1]) + len(part) <= KEPT_CHUNK:
        lists[-1].extend(part)
    elif part:
        untrack(part)  # a list of records: see recycled_lists
        lists.append(part)


def prune(pace: Callable[[], None]) -> None:
    """Leave out the records of freed tasks once they are an eighth of ``kept``, in place and a
    slice at a time; lists left empty are dropped.  Probe thread only."""
    total = sum(map(len, kept))
    if total - (count() - len(made)) <= total // 8:
        return
    for records in kept:
        _leave_out_freed(records, pace)
    kept[:] = filter(None, kept)


def _leave_out_freed(records: list, pace: Callable[[], None]) -> None:
    """The records of freed tasks left out of ``records``, in place: the list stays the one the
    collector has seen survive (a new list is walked by every young collection while it is
    young)."""
    kept_n = 0
    for start in range(0, len(records), CHUNK):
        chunk = records[start:start + CHUNK]
        alive = list(itertools.compress(chunk, _alive(chunk)))
        records[kept_n:kept_n + len(alive)] = alive
        kept_n += len(alive)
        pace()
    while len(records) > kept_n:
        del records[max(kept_n, len(records) - CHUNK):]
        pace()
