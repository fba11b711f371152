"""Leak verdicts: which groups grow, which have been stuck for long, and which are *proven* leaks.

A group is *growing* when its count rose steadily across the probe's history, and *stuck* when
every member has been blocked for over a minute on something that does not wake on its own.  A
group is *unreachable* (a proven leak) when nothing but its waiters references what they wait
on: this module gathers the waiters of the current groups for the proof (``proof.Proof``),
smallest groups first and within a time budget, and tallies what it proved per group.  The
verdicts' words are in ``verdict_wording``.
"""
from __future__ import annotations

import array
import collections
import itertools
import operator
import sys
import threading
import time
from typing import Any

from tasktop.wire.groups import group_id
from tasktop.wire.stacks import user_frame

from . import endings, shards, verdict_wording as wording
from .foreign_frames import paused
from .frames import own_frame
from .handoff import Pacer
from .keys import GroupKey
from .proof import Proof
from .recycled_lists import empty
from .registry import CHUNK
from .shards import MASK
from .state import State
from .task_pass import Pass
from .waiters import SELF_WAKING, THREAD_PROOFS, known_targets  # noqa: F401 - THREAD_PROOFS: read by tests

STUCK_S = 60.0  # seconds every member of a group must have been blocked to be called stuck
GROWTH_SPAN_S = 20.0  # seconds of history growth is judged over, at least


def gather(state: State, budget_s: float = 2.0) -> dict:
    """Leak verdicts for the current groups: proven (unreachable), growing, stuck.

    The proof is paced like every pass and bounded by ``budget_s``; what it could not settle
    in time is reported under ``unsettled``."""
    found = state.collect(rows=False)  # the groups' members are enough
    now = time.monotonic()
    pace = Pacer(state.handoff)
    gathering = _Gathering(found, pace, budget_s)
    proof = gathering.proof
    try:
        tally = gathering.judge()
    finally:
        proof.close()
    unsettled = _unsettled(tally, proof, budget_s)
    rows = _verdict_rows(found, tally, list(state.history)) + lost_verdicts(state.options.creation_depth)
    return {"verdicts": rows, "time": time.time(),
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
        self.proof = Proof(pace, budget_s, lambda s: lists[s >> 32][s & 0xFFFFFFFF](),
                           found.count + len(found.thread_rows))
        self.group_ids: list[str] = []
        self._number: dict[str, int] = {}
        self.unexamined: dict[str, int] = {}  # group id -> waiters the budget left unlooked at
        self.looking = 0.0  # when finding the waiters (and adding them) must stop: half the budget
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
        singles, runs, dependents = self._task_waiters()
        self._add_dependents(singles, runs, dependents)
        empty(dependents, pace)  # a slice at a time: 50,000 tuples freed at once took 8 ms
        del singles, runs, dependents
        verdict = proof.run()
        # A verdict stands only if its waiter did not move while the proof ran.
        record = self.record
        for w in _proven(verdict, pace):
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

    def _task_waiters(self) -> tuple[array.array, list, list]:
        """Add the blocked tasks, groups smallest first: when the budget runs out, the small
        ones (the likely leaks) have been looked at; waiters of the groups not reached stay
        unsettled.  ``(singles, runs, dependents)``: where each waiter is, for the dependents
        to find those they await (see ``_add_dependents``): ``(seq, waiter)`` pairs flattened
        for those added one at a time, and ``(members, start, count, first waiter)`` for each
        slice added in one go; a dependent is ``(source, group number, awaited seqs, its own
        seq)``, a task that only awaits other tasks."""
        proof, pace, lists, unexamined, partial = self.proof, self.pace, self.lists, self.unexamined, self.partial
        dependents: list = []
        task_groups = sorted((g for g in self.found.groups.values()
                              if g.key.kind == "task" and g.key.state not in SELF_WAKING), key=lambda g: g.count)
        singles, runs = array.array("q"), []
        # Finding what each waiter waits on may take half the budget: counting needs the rest.
        looking = self.looking = time.monotonic() + self.budget_s / 2
        for group in task_groups:
            if time.monotonic() > looking:
                unexamined[group.key.id] = group.count
                proof.out_of_time = True
                continue
            key, state = group.key, group.key.state
            g = self.group_number(key)
            seen = 0  # members of the group looked at
            for members in group.members.lists:  # a source number is (list number << 32) | index
                base = len(lists) << 32
                lists.append(members)
                for start in range(0, len(members), BULK):
                    pace()
                    if seen and time.monotonic() > looking:
                        break  # (and out of the next parts at their first slice)
                    chunk = members[start:start + BULK]
                    seen += len(chunk)
                    w = _bulk(proof, g, state, base | start, chunk)
                    if w is not None:
                        runs.append((members, start, len(chunk), w))
                        continue
                    for i, info in enumerate(chunk, start):  # one at a time, where ``_bulk`` cannot
                        if not i & 255:
                            pace()
                        task = info()
                        if task is None:
                            continue
                        ref = info.target  # found by the pass that walked its chain (see waits)
                        w = proof.task(g, state, task, base | i, ref() if ref is not None else None)
                        if w is not None:
                            singles.append(info.seq)
                            singles.append(w)
                        elif type(info.cache) is not GroupKey:
                            _key, awaiting, children = info.cache
                            awaited = ((awaiting,) if awaiting is not None else ()) + children
                            dependents.append((base | i, g, awaited, info.seq))
            if seen < group.count:  # out of time: the rest are left unlooked at
                unexamined[key.id] = group.count - seen
                partial.add(key.id)
                proof.out_of_time = True
        return singles, runs, dependents

    def _late(self) -> bool:
        """Pace; whether finding the waiters has had its half of the budget."""
        self.pace()
        return time.monotonic() > self.looking

    def _left(self, dependents: list) -> None:
        """Count ``dependents`` as waiters the budget left unlooked at (by group, a slice at a
        time: 100,000 of them in one go held the loop up 15 ms)."""
        by_group: collections.Counter = collections.Counter()
        for start in range(0, len(dependents), CHUNK):
            by_group.update(map(operator.itemgetter(1), dependents[start:start + CHUNK]))
            self.pace()
        for g, count in by_group.items():
            gid = self.group_ids[g]
            self.unexamined[gid] = self.unexamined.get(gid, 0) + count
            self.partial.add(gid)
        self.proof.out_of_time = True

    def _add_dependents(self, singles: array.array, runs: list, dependents: list) -> None:
        """Add the dependents that can be dead: those awaiting only waiters of the proof.  All
        or none: if finding which can be takes them past half the budget, none is added (a
        dependent refers to those it awaits by their waiter numbers), so that counting keeps
        its half for the targets (40,000 tasks awaiting others once took all of it)."""
        proof, pace, every = self.proof, self.pace, dependents
        if not dependents:
            return None
        if self._late():
            return self._left(every)
        # Task seq -> waiter, sharded: a dict of 100,000 seqs grown in one piece held the
        # loop up to 17 ms at one insert (see shards).
        by_seq = shards.dicts()
        # Waiter numbers of the tasks dependents await (only those: a dict of every waiter
        # would be a million entries), and the spans of seqs they fall in (see SPAN_BITS).
        needed = shards.sets()
        spans: set = set()
        for k, (_n, _g, awaited, _s) in enumerate(dependents):
            if not k & 1023 and self._late():
                return self._left(every)
            for s in awaited:
                needed[s & MASK].add(s)
                spans.add(s >> SPAN_BITS)
        for start in range(0, len(singles), 2 * CHUNK):
            pairs = singles[start:start + 2 * CHUNK]
            seqs = pairs[0::2]
            for s, w in itertools.compress(zip(seqs, pairs[1::2]), shards.contains(needed, seqs)):
                by_seq[s & MASK][s] = w
            if self._late():
                return self._left(every)
        # A slice's members are in creation order (a complete pass visits the records so), so
        # its seqs lie between its first's and its last's: only the slices whose spans hold an
        # awaited task have their seqs worked out (at a million, 50,000 awaited among 800,000).
        # A slice out of order could only leave a dependent out of the proof, never prove one.
        for members, start, k, w in runs:
            if self._late():
                return self._left(every)
            first, last = members[start].seq >> SPAN_BITS, members[start + k - 1].seq >> SPAN_BITS
            if spans.isdisjoint(range(first, last + 1)):
                continue
            seqs = array.array("q", map(_SEQ, members[start:start + k]))
            for s, v in itertools.compress(zip(seqs, range(w, w + k)), shards.contains(needed, seqs)):
                by_seq[s & MASK][s] = v
        shards.clear(needed, pace)
        # A dependent can be dead only if everything it awaits is a waiter of the proof.
        while True:
            others = shards.sets()
            for start in range(0, len(dependents), CHUNK):
                for s in map(_OWN_SEQ, dependents[start:start + CHUNK]):
                    others[s & MASK].add(s)
                if self._late():
                    return self._left(every)
            kept = []
            for k, d in enumerate(dependents):
                if not k & 255 and self._late():
                    return self._left(every)
                awaited = d[2]
                if len(awaited) == 1:  # the usual: one task awaited
                    s = awaited[0]
                    if s in by_seq[s & MASK] or s in others[s & MASK]:
                        kept.append(d)
                elif all(s in by_seq[s & MASK] or s in others[s & MASK] for s in awaited):
                    kept.append(d)
            shards.clear(others, pace)
            if len(kept) == len(dependents):
                break
            dependents = kept
        base = proof.n
        for k, s in enumerate(map(_OWN_SEQ, dependents)):
            if not k & 1023:
                pace()
            by_seq[s & MASK][s] = base + k
        for k, (n, group, awaited, _s) in enumerate(dependents):
            if not k & 255:
                pace()
            proof.dependent(group, n, tuple(by_seq[s & MASK][s] for s in awaited))
        shards.clear(by_seq, pace)


#: Members of a group added to the proof in one go by ``_bulk``: its C calls over a slice take
#: well under a millisecond, as a pass's do.
BULK = 2048
_SEQ = operator.attrgetter("seq")
_OWN_SEQ = operator.itemgetter(3)  # a dependent's own seq
#: Seqs fall in spans of ``1 << SPAN_BITS`` for ``_add_dependents`` to tell which slices of
#: waiters hold a task a dependent awaits: a slice's 2,048 seqs span a few at most.
SPAN_BITS = 11


def _bulk(proof: Proof, group: int, state: str, source: int, chunk: list) -> int | None:
    """``proof.tasks`` for a slice of a group's members when each one's task is alive and its
    target known and alive (``known_targets``): the common case, in C calls.  The first waiter
    number; None, with nothing added, otherwise (the members are then added one at a time)."""
    targets = known_targets(chunk)
    return None if targets is None else proof.tasks(group, state, source, targets)


def _thread_waiters(found: Pass, proof: Proof, group_number: Any) -> dict:
    """Add blocked threads to ``proof``; ``{waiter: (ident, signature)}``.  Their frames
    are held only here, and let go of before the proof runs (see threads.current)."""
    thread_objects = {t.ident: t for t in threading.enumerate()}
    with paused:  # 3.11: see foreign_frames
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
    for w in _proven(verdict, pace):
        if proof.owner_of[w] < proof.targets:
            out[group_ids[proof.group_of[w]]]["objects"].add(proof.owner_of[w])
    return out


def _proven(verdict: list, pace: Pacer) -> Any:
    """The waiters ``verdict`` proves, found a slice at a time (a million waiters in one C call
    held the loop up for milliseconds)."""
    for start in range(0, len(verdict), CHUNK):
        yield from itertools.compress(range(start, min(start + CHUNK, len(verdict))), verdict[start:start + CHUNK])
        pace()


def _unsettled(proven: dict, proof: Proof, budget_s: float) -> dict | None:
    """What the proof could not judge, and why (null when it judged everything)."""
    unknown = sum(e["unknown"] for e in proven.values())
    if not unknown:
        return None
    return {"waiters": unknown, "groups": sum(1 for e in proven.values() if e["unknown"]),
            "reason": wording.reason_unsettled(proof.out_of_time, budget_s)}


def lost_verdicts(depth: int) -> list[dict]:
    """A ``lost`` verdict per creation site whose tasks were destroyed while pending."""
    out = []
    for row in endings.summary(depth)["lost"]:
        site = row["site"]
        created = site[0] if site else None  # the creation frame itself, as in ``created by``
        last = user_frame(row["last_stack"]) if row["last_stack"] else None
        out.append({"verdict": "lost", "kind": "task", "count": row["count"],
                    "group": group_id("lost", "", [(f["file"], f["func"], f["line"]) for f in site]),
                    "state": row["last_state"] or "pending", "blocked_min_s": 0.0, "frame": last or created,
                    "created_by": site, "last_at": row["last_at"],
                    "reason": wording.reason_lost(row["count"], created, row["last_state"], last)})
    return out


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
                reason = wording.reason_dependent(state, group.bmin)
            else:
                reason = wording.reason_unreachable(count, group.key.kind, state, group.bmin,
                                                    wording.noun_of(state), len(judged["objects"]))
            out.append(dict(base, verdict="unreachable", count=count,
                            reason=wording.reason_some(count, group.count, reason)))
        grew = growth(history, gid)
        if grew is not None:
            out.append(dict(base, verdict="growing", growth=grew, reason=wording.reason_growing(grew)))
        if judged and judged["proven"] or grew is not None:
            continue
        if state not in SELF_WAKING and group.bmin >= STUCK_S:
            out.append(dict(base, verdict="stuck", reason=wording.reason_stuck(group.count, state, group.bmin)))
    return out


def growth(history: list[tuple[float, dict]], gid: str, min_span: float = GROWTH_SPAN_S) -> dict | None:
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


def _thread_unchanged(ident: int, signature: tuple | None) -> bool:
    """Whether a thread is still at the frame and instruction it was blocked at."""
    with paused:  # 3.11: see foreign_frames
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
