"""asyncio's task registries, read from another thread without retries.

``asyncio.all_tasks()`` copies a ``WeakSet`` by iterating it in Python code, so the GIL can
pass to the loop mid-copy; a loop that adds tasks meanwhile makes the copy fail with "Set
changed size during iteration", and it is retried (1000 times, and then it raises).  Read from
a probe thread while a loop churns through tasks, each retry costs a GIL hand-over, and one
snapshot was measured taking 10 to 50 seconds.

Here the WeakSet's underlying ``set`` of weak references is copied instead: ``list(set)`` runs
in C without releasing the GIL, so it is atomic with respect to every other Python thread.
The registries are the ones asyncio itself uses: ``_all_tasks`` before 3.12,
``_scheduled_tasks`` and ``_eager_tasks`` since (the C accelerator's objects, re-exported by
``asyncio.tasks``).  From 3.14 those sets hold only pure-Python tasks: native ones are linked
into per-thread lists in C, which only ``asyncio.all_tasks(loop)`` reads (one C call over every
task of every thread: 8 ms at 100,000 tasks, 224 ms at a million), so the task pass reads them
through it only while tasks are few, and on its first pass (see ``TaskPasses._linked_due``).
Tasks of every loop come back in one copy, so that a process with many loops pays for one
copy, not one per loop.  A copy allocates nothing per task but the lists themselves, so a
pass over 100,000 tasks does not wake the garbage collector; the look-up (``unrecorded``)
makes a short list per task (its weak references), freed at once.
"""
from __future__ import annotations

import functools
import itertools
import operator
import sys
import weakref
from asyncio import tasks as _tasks
from typing import Any, Callable, Iterable

#: 3.14+: native tasks are in C's per-thread linked lists, not in the sets ``_sources`` reads.
LINKED = sys.version_info >= (3, 14)


def _sources() -> tuple[list, list]:
    """(sets of weak references to tasks, sets of tasks) asyncio registers tasks in."""
    weak, strong = [], []
    for name in ("_all_tasks", "_scheduled_tasks"):
        registry = getattr(_tasks, name, None)
        if isinstance(registry, weakref.WeakSet):
            weak.append(registry.data)
    eager = getattr(_tasks, "_eager_tasks", None)
    if isinstance(eager, set):
        strong.append(eager)
    return weak, strong


def copy_set(items: Any) -> list:
    """``list(items)`` for a set or WeakSet another thread may change, in one C call.

    A WeakSet is read through its ``data`` set; dead references are dropped."""
    if isinstance(items, weakref.WeakSet):
        return [obj for obj in (ref() for ref in list(items.data)) if obj is not None]
    return list(items)


def size() -> int:
    """How many tasks asyncio's sets hold (dead references not yet dropped included): O(1)."""
    weak, strong = _sources()
    return sum(map(len, weak)) + sum(map(len, strong))


CHUNK = 4096  # references per C-level call: well under a millisecond
#: References per slice of ``unrecorded``, which makes a Python call for each (1-1.2 µs at a
#: million tasks: 4,096 of them were 4-9 ms without a hand-off).
LOOKUP_CHUNK = 1024


def copy(refs: list, loops: Iterable[Any] = (), pace: Callable[[], None] | None = None) -> list:
    """Fill ``refs`` with weak references to every registered task (each set copied in one C
    call, or with ``pace`` a slice at a time: see ``_extend_sliced``) and return the eager tasks
    in their first step.  On 3.14+, the tasks of ``loops`` read from C's linked lists are added
    as they are (tasks, not references: making 100,000 references each pass would wake the
    garbage collector; ``unrecorded`` makes them a slice at a time, only when it must look)."""
    weak, strong = _sources()
    refs.clear()
    for items in weak:
        if pace is None or len(items) <= CHUNK or not _extend_sliced(refs, items, pace):
            refs.extend(items)  # one C call, atomic: no Python code runs while a set is read
    if LINKED:
        for loop in loops:
            try:
                refs.extend(_tasks.all_tasks(loop))  # C: every thread's list, pending tasks only
            except Exception:
                pass
    eager: list = []
    for items in strong:
        eager.extend(list(items))
    return eager


def _extend_sliced(refs: list, items: set, pace: Callable[[], None]) -> bool:
    """``refs.extend(items)`` a slice of CHUNK at a time, ``pace`` called between: a set of a
    million references copied in one C call held the loops 11-21 ms.  False, with nothing
    added, if the set changed size meanwhile (a task made or freed: iterating it then fails),
    for the caller to copy it in one call.  A task made meanwhile may be missed, and if one is
    made and another freed between two slices (the size alike), a set rebuilt meanwhile may
    yield some twice or miss some: the callers look every reference up in the records, which
    hold every task our factory made, and drop doubles; a task no factory saw that is missed
    is found by a later look-up (when the sizes move, or at the next 30-second one)."""
    start = len(refs)
    slices = iter(items)
    try:
        while True:
            before = len(refs)
            refs.extend(itertools.islice(slices, CHUNK))
            if len(refs) - before < CHUNK:
                return True
            pace()
    except RuntimeError:  # "Set changed size during iteration"
        while len(refs) > start:  # dropped a slice at a time too
            del refs[max(start, len(refs) - CHUNK):]
            pace()
        return False


def fingerprint(refs: list, pace: Callable[[], None]) -> tuple | None:
    """The sum and the exclusive or of the hashes of weak references, in slices: a fingerprint
    of which objects they were made for (a task's hash is its address) that stays the same
    after those die (a weak reference keeps the hash it was first asked for, and every one in
    a set or dict was).  Two, so that one set of addresses cannot make up for another by
    adding up alike.  None if one was never hashed and is dead."""
    total = mixed = 0
    try:
        for start in range(0, len(refs), CHUNK):
            total, mixed = add_hashes(list(map(hash, refs[start:start + CHUNK])), total, mixed)
            pace()
    except TypeError:
        return None
    return total, mixed


def add_hashes(hashes: list, total: int, mixed: int) -> tuple[int, int]:
    """A fingerprint's ``(sum, exclusive or)`` with ``hashes`` added (``record_lists`` makes
    the records' side of the comparison with it)."""
    return total + sum(hashes), functools.reduce(operator.xor, hashes, mixed)


_SEQ = operator.attrgetter("seq")


def unrecorded(record_of: Callable[[Any], Any], refs: list, eager: list, since: int,
               pace: Callable[[], None]) -> tuple[list, bool]:
    """``(tasks, complete)``: the live, not-done tasks among ``refs`` and ``eager`` (see
    ``copy``) that have no record (``record_of(ref or task)`` is None): tasks no factory of
    ours saw.  ``complete``: none was missing, and none had a record made after ``since`` (a
    record's ``seq``): every task of the copy had a record when it was taken.

    A slice at a time, with ``pace`` called between slices so that the loops get the GIL (a
    record is found among its task's weak references: one Python call a task)."""
    missing: list = []
    latest = since
    for start in range(0, len(refs), LOOKUP_CHUNK):
        part = refs[start:start + LOOKUP_CHUNK]
        found = list(map(record_of, part))
        missing.extend(itertools.compress(part, map(operator.is_, found, itertools.repeat(None))))
        latest = max(latest, max(map(_SEQ, filter(None, found)), default=since))
        pace()
    complete = not missing and not eager and latest <= since  # a freed task's reference counts as missing
    extra: list = []  # eager tasks without a record: a handful at most
    for task in eager:
        try:
            if record_of(task) is None and not task.done() and all(task is not t for t in extra):
                extra.append(task)
        except Exception:
            continue
    # An eager task can be in both sets for a moment: it is kept once, from ``extra``.  No set
    # of every task's id: a million of them when the probe attaches (about 60 MB for a moment).
    seen = set(map(id, extra))
    out = []
    for n, ref in enumerate(missing):  # every task when the probe attaches: a slice at a time
        if not n & 511:
            pace()
        task = ref() if type(ref) is weakref.ReferenceType else ref
        try:
            if task is not None and id(task) not in seen and not task.done():
                out.append(task)
        except Exception:
            continue
    out.extend(extra)
    from .recycled_lists import empty  # (which imports this module's CHUNK)

    empty(missing, pace)  # every task's reference at attach: let go of a slice at a time
    return out, complete
