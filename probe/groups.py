"""A group: the tasks (or threads) of one interned (kind, state, stack), counted after a pass.

A task group is tallied once per pass from its members (the records the pass put in it) with
C-level ``map``s, ``Counter`` and ``dict.fromkeys``: a Python loop per member cost several
times more.  Every C call is made over a slice of ``CHUNK`` members, with the GIL given away
between slices: one C call over a 100,000-member group held the event loop up for milliseconds.
A group's members are kept in parts (``parts.Parts``): a big group is never one list.
"""
from __future__ import annotations

import collections
import itertools
import operator
from typing import Any, Callable

from .frames import to_wire
from .keys import GroupKey
from .parts import Parts
from .registry import CHUNK

_SINCE = operator.attrgetter("since")
_SITE = operator.attrgetter("site")
_PARENT = operator.attrgetter("parent")


def _alike(values: list) -> bool:
    """Whether all of ``values`` (not empty) are the first one: the usual slice of a group
    (made at one site by one task), told by comparing (mostly identities) instead of
    hashing each value as ``Counter`` and ``dict.fromkeys`` do (twice as long)."""
    first = values[0]
    return values[-1] is first and values.count(first) == len(values)


def _site_keys(chunk: list, sites: list, kinds: list, site_key: Any) -> list:
    """``sites`` (of the records ``chunk``; ``kinds`` their types) as ``SiteKey``s, the hook's
    tuples turned into theirs (``site_key``) once per distinct tuple and kept in their
    records: C-level maps, not a call per record (a million after a burst)."""
    ids = list(map(id, sites))
    table = dict(zip(ids, sites))  # the distinct sites of the slice: a few
    for i, site in table.items():
        if type(site) is tuple:
            table[i] = site_key(site)
    keys = list(map(table.__getitem__, ids))
    # Only where a tuple was: a record's None site may be set meanwhile (see hooks._create).
    made = list(map(operator.is_, kinds, itertools.repeat(tuple)))
    collections.deque(map(setattr, itertools.compress(chunk, made), itertools.repeat("site"),
                          itertools.compress(keys, made)), maxlen=0)
    return keys


class Group:
    __slots__ = ("key", "count", "bmin", "bmax", "created", "members")

    def __init__(self, key: GroupKey, members: list | None = None,
                 take: Callable[[Any], list] | None = None) -> None:
        self.key = key
        self.count = 0
        self.bmin = float("inf")
        self.bmax = 0.0
        self.created: list = []  # (stack shown, count, up to 3 ids of tasks that made them)
        #: The members (records, or thread rows); ``members`` is the first part, ``take``
        #: gives the others (the pass's recycled lists, by name).
        self.members = Parts(members, take, key)

    def add(self, blocked: float, member: Any) -> None:
        """Count one member (a thread row: threads have no creation site) into the group."""
        self.count += 1
        if blocked < self.bmin:
            self.bmin = blocked
        if blocked > self.bmax:
            self.bmax = blocked
        self.members.append(member)

    def tally(self, now: float, site_key: Any, pace: Any, created: bool = True) -> None:
        """Count a task group from its members (records): blocked range, and unless not
        ``created``, creation sites and the tasks that made them.

        Every member was visited by this pass, so a task that is not waiting has ``since ==
        now``: the blocked range comes from the oldest and the newest ``since``."""
        self.count = len(self.members)
        if not self.count:
            return
        oldest, newest = now, 0.0
        counted: collections.Counter = collections.Counter()
        for chunk in self.members.slices(CHUNK):
            sinces = list(map(_SINCE, chunk))
            oldest, newest = min(oldest, min(sinces)), max(newest, max(sinces))
            if not created:
                pace()
                continue
            sites = list(map(_SITE, chunk))
            kinds = list(map(type, sites))
            if tuple in kinds:  # made since the last pass: the hook's stacks, interned once
                sites = _site_keys(chunk, sites, kinds, site_key)
            if _alike(sites):
                counted[sites[0]] += len(sites)
            else:
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
        parents = self._parents([sites for _stack, (_count, sites) in top], len(shown) == 1, pace)
        self.created = [(stack, count, found) for (stack, (count, _sites)), found in zip(top, parents)]

    def _parents(self, site_sets: list, every: bool, pace: Any) -> list:
        """For each set of sites of ``site_sets``, the first three distinct tasks (seqs) that
        made members created at one of them (``every``: one set, all the group's sites), in
        one scan of the members: a group of many sites made by one task (the pseudo-group of
        tasks not walked yet) was scanned whole once per site.

        Distinct values are gathered in ``dict.fromkeys`` of plain ints: a dict that holds
        no container is not tracked by the collector, whereas a tuple per (site, parent) pair
        was, and thousands of them per pass set off collections that each walked every young
        container of the pass."""
        found: list = [{} for _ in site_sets]
        wanted = list(range(len(site_sets)))  # sets with fewer than three tasks found
        for chunk in self.members.slices(CHUNK):
            if not wanted:
                break
            parents = list(map(_PARENT, chunk))
            distinct = dict.fromkeys(parents[:1] if _alike(parents) else parents)
            sites = None if every else list(map(_SITE, chunk))
            present = None if every else set(sites[:1] if _alike(sites) else sites)
            for k in wanted:
                got = found[k]
                if every or len(distinct) == 1:  # one task made the whole slice (the usual)
                    if every or not site_sets[k].isdisjoint(present):
                        got.update(distinct)
                elif not site_sets[k].isdisjoint(present):
                    made_here = map(site_sets[k].__contains__, sites)
                    got.update(dict.fromkeys(itertools.compress(parents, made_here)))
                got.pop(None, None)
            wanted = [k for k in wanted if len(found[k]) < 3]
            pace()
        return [list(got)[:3] for got in found]

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
