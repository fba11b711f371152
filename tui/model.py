"""The client-side model: what the TUI knows beyond the latest snapshot.

The probe answers "what is there now"; whether something is *piling up* needs history, which
only the client has: totals and RSS since attaching (the sparklines), each group's count over
the last minutes (its growth per minute, and whether it keeps growing: a leak suspect), the
baseline the user set, every event-loop stall seen since attaching (the probe keeps only
the last few), and the probe's last leak verdicts (asked for on demand, never per snapshot).
Pure Python with no Textual import, so all of it is unit-tested directly.

Times are the snapshot's own ``time`` field (the target's clock), not the client's: a recorded
snapshot then replays identically, and a slow reply does not distort a rate.
"""
from __future__ import annotations

import bisect
import collections
import copy
from dataclasses import dataclass, field
from typing import Deque

from tasktop.render import stacks
from tasktop.wire.stacks import is_unwalked

SORTS = ("count", "growth", "blocked")
KINDS = ("both", "task", "thread")


@dataclass
class Sample:
    """One point of the history: totals at one snapshot."""

    t: float
    tasks: int
    threads: int
    rss: int | None


@dataclass
class Baseline:
    """What was there when the user pressed ``b``: changes are shown against it."""

    t: float
    tasks: int
    threads: int
    rss: int | None
    counts: dict = field(default_factory=dict)  # group id -> count


@dataclass
class GroupRow:
    """One line of the groups table, ready to format."""

    id: str
    kind: str
    state: str
    count: int
    change: float | None  # per minute, or against the baseline when one is set
    suspect: bool
    blocked_max: float
    blocked_min: float
    where: str
    group: dict
    proven: bool = False  # the last leak verdicts proved (some of) its members unreachable


@dataclass
class Stall:
    loop: int
    thread_name: str | None
    at: float
    duration_ms: float
    stack: list


def first_at(times: list, t: float, lo: int = 0) -> int:
    """The index of the first of ``times`` (in order) from ``lo`` on that is at or after ``t``
    (the last one when none is): a binary search, since redraws ask it of every group."""
    return min(bisect.bisect_left(times, t, lo), len(times) - 1)


class Counts:
    """A group's count at each snapshot since it appeared (or since the window's start).

    Every group the model knows gets a point at every snapshot (0 while it is absent), so its
    points are at the last ``len(counts)`` of the model's snapshot times (``times``, one list
    shared by every group), and a group keeps one list of counts.  A point per group per
    snapshot is 24,000 points for a replay's jump at 200 groups: as tuples, those were 24,000
    objects that outlived the key (the garbage collector then ran a full collection, 40-75 ms,
    after about every jump), and two appends per point were a third of the model's feed."""

    __slots__ = ("times", "counts")

    def __init__(self, times: list) -> None:
        self.times = times  # the model's, shared
        self.counts: list[int] = []

    @property
    def start(self) -> int:
        """Where the first point is in ``times``."""
        return len(self.times) - len(self.counts)

    def __len__(self) -> int:
        return len(self.counts)

    def __iter__(self):
        """The points, ``(time, count)``."""
        return zip(self.times[self.start:], self.counts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Counts) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Counts({list(self)!r})"


class Model:
    """History and derived facts, fed one summary at a time by :meth:`update`.

    ``window`` is how far back growth per minute looks; ``suspect_window`` is how far back the
    leak heuristic looks, ``suspect_span`` the least history it needs before it says anything.
    """

    def __init__(self, max_samples: int = 3600, window: float = 60.0, suspect_window: float = 120.0,
                 suspect_span: float = 10.0, max_stalls: int = 500) -> None:
        self.window = window
        self.suspect_window = suspect_window
        self.suspect_span = suspect_span
        self.summary: dict | None = None
        self.samples: Deque[Sample] = collections.deque(maxlen=max_samples)
        self.counts: dict[str, Counts] = {}
        self._times: list[float] = []  # the snapshot times of the groups' points (see Counts)
        self.baseline: Baseline | None = None
        self.stalls: list[Stall] = []  # newest first
        self._stall_keys: set = set()
        self._max_stalls = max_stalls
        self._text: dict[str, str] = {}
        self.memory_sites_baseline: dict | None = None
        self._memory_baseline_pending = True
        self.verdicts: dict | None = None  # the last ``verdicts`` reply
        # When the last summary with tasks whose await chain the probe had not walked yet came:
        # until then its groups were filling in, which is no growth (see ``is_suspect``).
        self._filled_after = float("-inf")
        self._proven: frozenset = frozenset()

    # -- feeding ---------------------------------------------------------------------------
    def update(self, summary: dict) -> None:
        """Take one ``summary`` reply (or the summary part of ``full``)."""
        t = float(summary.get("time") or 0.0)
        if self.samples and t <= self.samples[-1].t:
            # The same snapshot twice (or a clock step back): keep the newest data, no new point.
            self.summary = summary
            return
        previous = self.samples[-1].t if self.samples else None
        totals = summary.get("totals") or {}
        memory = summary.get("memory") or {}
        self.samples.append(Sample(t, int(totals.get("tasks") or 0), int(totals.get("threads") or 0),
                                   memory.get("rss_bytes")))
        times = self._times
        times.append(t)
        now = summary.get("group_counts")  # a recording's history gives them ready (Recording.history)
        if now is None:
            now = {group["id"]: int(group.get("count") or 0) for group in summary.get("groups") or ()}
        if any(is_unwalked(group.get("stack")) for group in summary.get("groups") or ()):
            self._filled_after = t
        counts = self.counts
        if previous is not None:
            for gid in now:
                if gid not in counts:  # it was not there a snapshot ago: it grew from 0
                    history = counts[gid] = Counts(times)
                    history.counts.append(0)
        # Each group keeps its points from the last one at or before the horizon (two at least).
        horizon = t - max(self.window, self.suspect_window)
        keep = max(len(times) - bisect.bisect_right(times, horizon) + 1, 2)
        trimmed = len(times) > keep  # else no group has more points than ``keep``: none has more than ``times``
        if trimmed:
            del times[:len(times) - keep]
        emptied = []
        get = now.get
        for gid, history in counts.items():  # (a replay's jump feeds 120 summaries: this is its loop)
            count = get(gid)
            points = history.counts
            points.append(0 if count is None else count)
            if trimmed and len(points) > keep:
                del points[:len(points) - keep]
            if count is None and not any(points):
                emptied.append(gid)
        if previous is None:
            for gid, count in now.items():  # the first snapshot
                history = counts[gid] = Counts(times)
                history.counts.append(count)
        for gid in emptied:
            del counts[gid]
            self._text.pop(gid, None)
        self._take_stalls(summary)
        self.summary = summary

    def _take_stalls(self, summary: dict) -> None:
        fresh = []
        for loop in summary.get("loops") or ():
            for stall in loop.get("stalls") or ():
                key = (loop.get("id"), stall.get("at"))
                if key in self._stall_keys:
                    continue
                self._stall_keys.add(key)
                fresh.append(Stall(loop.get("id") or 0, loop.get("thread_name"), float(stall.get("at") or 0.0),
                                   float(stall.get("duration_ms") or 0.0), list(stall.get("stack") or ())))
        if fresh:
            self.stalls = sorted(fresh + self.stalls, key=lambda s: -s.at)[:self._max_stalls]
            self._stall_keys = {(s.loop, s.at) for s in self.stalls}

    def rewind(self, summary: dict) -> None:
        """Go back to an earlier snapshot (a replay stepping back): forget every point newer
        than it, as if the later snapshots had not come yet."""
        t = float(summary.get("time") or 0.0)
        while self.samples and self.samples[-1].t > t:
            self.samples.pop()
        times = self._times
        later = len(times) - bisect.bisect_right(times, t)
        if later:
            del times[-later:]
        for gid in list(self.counts):
            history = self.counts[gid]
            if later:
                del history.counts[max(0, len(history.counts) - later):]
            if not any(history.counts):  # it had not appeared yet
                del self.counts[gid]
                self._text.pop(gid, None)
        self.stalls = [s for s in self.stalls if s.at <= t]
        self._stall_keys = {(s.loop, s.at) for s in self.stalls}
        self._filled_after = min(self._filled_after, t)  # (which earlier snapshots were partial is not kept)
        self.summary = summary

    def copy(self) -> "Model":
        """A model that goes on from here on its own: fed, rewound or given a baseline, it
        changes nothing of this one (a replay keeps the model it built for a moment, to go back
        there without reading the samples before it again)."""
        other = copy.copy(self)  # what is replaced, never changed in place, is shared
        other.samples = collections.deque(self.samples, maxlen=self.samples.maxlen)
        times = other._times = list(self._times)
        other.counts = {}
        for gid, history in self.counts.items():
            mine = other.counts[gid] = Counts(times)
            mine.counts = list(history.counts)
        other.stalls = list(self.stalls)
        other._stall_keys = set(self._stall_keys)
        other._text = dict(self._text)
        return other

    def set_baseline(self) -> Baseline | None:
        """Make the latest snapshot the baseline; changes are shown against it from now on."""
        if not self.samples or self.summary is None:
            return None
        last = self.samples[-1]
        counts = {g["id"]: int(g.get("count") or 0) for g in self.summary.get("groups") or ()}
        self.baseline = Baseline(last.t, last.tasks, last.threads, last.rss, counts)
        self._memory_baseline_pending = True
        return self.baseline

    def clear_baseline(self) -> None:
        self.baseline = None
        self._memory_baseline_pending = True

    # -- totals and history ---------------------------------------------------------------
    @property
    def now(self) -> float | None:
        return self.samples[-1].t if self.samples else None

    def history(self, name: str) -> list[float]:
        """``tasks``, ``threads`` or ``rss`` per snapshot, since the baseline if one is set."""
        since = self.baseline.t if self.baseline else float("-inf")
        return [float(getattr(s, name) or 0) for s in self.samples if s.t >= since]

    def total_change(self, name: str) -> float | None:
        """Growth per minute of a total (or its change since the baseline)."""
        if not self.samples:
            return None
        latest = getattr(self.samples[-1], name)
        if latest is None:
            return None
        if self.baseline is not None:
            base = getattr(self.baseline, name)
            return None if base is None else float(latest - base)
        known = [s for s in self.samples if getattr(s, name) is not None]
        return self._rate([s.t for s in known], [getattr(s, name) for s in known])

    def _rate(self, times: list, values: list) -> float | None:
        """Growth per minute over the last ``window`` seconds of ``values``, which are at the
        last ``len(values)`` of ``times``."""
        if len(values) < 2:
            return None
        offset = len(times) - len(values)
        t_end = times[-1]
        start = first_at(times, t_end - self.window, offset)
        if t_end - times[start] < 1.0:
            return None
        return (values[-1] - values[start - offset]) * 60.0 / (t_end - times[start])

    # -- groups ---------------------------------------------------------------------------
    def group_change(self, gid: str) -> float | None:
        history = self.counts.get(gid)
        if self.baseline is not None:
            current = history.counts[-1] if history else 0
            return float(current - self.baseline.counts.get(gid, 0))
        return self._rate(history.times, history.counts) if history else None

    def is_suspect(self, gid: str) -> bool:
        """Whether a group *keeps* growing: over the suspect window, the average count rises
        through each third of the window, the last third never dips to the first third's
        highest, and it grew by at least 3.  A pool that breathes up and down fails the second
        test; a burst that has settled fails the first."""
        history = self.counts.get(gid)
        if not history or len(history) < 6:
            return False
        times, counts = history.times, history.counts
        offset = history.start
        end, last = times[-1], counts[-1]
        # Only from the first snapshot whose groups were all filled in.
        first = first_at(times, max(end - self.suspect_window, self._filled_after + 1e-6), offset)
        # The cheap necessary conditions first: most groups do not grow (one redraw asks this of
        # every group, and building the thirds of 200 histories cost a replay step 40 ms).
        t0, c0 = times[first], counts[first - offset]
        span = end - t0
        if len(times) - first < 6 or span < self.suspect_span or last - c0 < 3:
            return False
        thirds: list[list[int]] = [[], [], []]
        for t, c in zip(times[first:], counts[first - offset:]):
            thirds[min(2, int((t - t0) / span * 3))].append(c)
        if not all(thirds):
            return False
        means = [sum(x) / len(x) for x in thirds]
        return means[0] < means[1] < means[2] and min(thirds[2]) > max(thirds[0])

    def _searchable(self, group: dict) -> str:
        gid = group["id"]
        text = self._text.get(gid)
        if text is None:
            if len(self._text) > 5000:
                self._text.clear()
            text = self._text[gid] = "\n".join([
                gid, group.get("kind", ""), str(group.get("state", "")).lower(), stacks.searchable(group.get("stack")),
            ])
        return text

    def matches(self, group: dict, text: str) -> bool:
        """Every whitespace-separated term of ``text`` occurs in the group's stack, state,
        kind or id (case-insensitive)."""
        terms = text.lower().split()
        if not terms:
            return True
        haystack = self._searchable(group)
        return all(term in haystack for term in terms)

    def rows(self, kind: str = "both", text: str = "", sort: str = "count") -> list[GroupRow]:
        """The groups of the latest snapshot, filtered and sorted for the table."""
        if self.summary is None:
            return []
        out = []
        for group in self.summary.get("groups") or ():
            if kind != "both" and group.get("kind") != kind:
                continue
            if text and not self.matches(group, text):
                continue
            gid = group["id"]
            out.append(GroupRow(
                id=gid,
                kind=group.get("kind", "task"),
                state=str(group.get("state", "")),
                count=int(group.get("count") or 0),
                change=self.group_change(gid),
                suspect=self.is_suspect(gid),
                blocked_max=float(group.get("blocked_max_s") or 0.0),
                blocked_min=float(group.get("blocked_min_s") or 0.0),
                where=stacks.where(group.get("stack")),
                group=group,
                proven=gid in self._proven,
            ))
        if sort == "growth":
            out.sort(key=lambda r: (-(r.change or 0.0), not r.suspect, -r.count, r.id))
        elif sort == "blocked":
            out.sort(key=lambda r: (-r.blocked_max, -r.count, r.id))
        else:
            out.sort(key=lambda r: (-r.count, r.kind, r.id))
        return out

    def group(self, gid: str) -> dict | None:
        for group in (self.summary or {}).get("groups") or ():
            if group["id"] == gid:
                return group
        return None

    # -- loops ----------------------------------------------------------------------------
    def lag_ms(self) -> float | None:
        """The worst current event-loop lag across loops."""
        lags = [loop.get("lag_ms") for loop in (self.summary or {}).get("loops") or ()]
        lags = [x for x in lags if x is not None]
        return max(lags) if lags else None

    def stall_count(self) -> int:
        return sum(int(loop.get("stall_count") or 0) for loop in (self.summary or {}).get("loops") or ())

    def last_stall(self) -> Stall | None:
        return self.stalls[0] if self.stalls else None

    # -- memory ---------------------------------------------------------------------------
    def note_memory(self, reply: dict) -> None:
        """Take a ``memory`` reply; the first one after attaching (or after ``b``) becomes
        the baseline that allocation sites' growth is measured against."""
        if self._memory_baseline_pending and reply.get("top") is not None:
            self.memory_sites_baseline = {(s.get("file"), s.get("line")): int(s.get("size_bytes") or 0)
                                          for s in reply.get("top") or ()}
            self._memory_baseline_pending = False

    def site_growth(self, site: dict) -> int | None:
        """Bytes a tracemalloc site grew since the memory baseline (None: not in it)."""
        if self.memory_sites_baseline is None:
            return None
        base = self.memory_sites_baseline.get((site.get("file"), site.get("line")))
        return None if base is None else int(site.get("size_bytes") or 0) - base

    # -- leak verdicts --------------------------------------------------------------------
    def note_verdicts(self, reply: dict) -> None:
        """Take a ``verdicts`` reply.  It is kept until the next one: the verdicts screen shows
        it again when reopened, and the groups it proved stay known by id."""
        self.verdicts = reply
        self._proven = frozenset(v.get("group") for v in reply.get("verdicts") or ()
                                 if v.get("verdict") == "unreachable")

    def is_proven(self, gid: str) -> bool:
        """Whether the last verdicts proved members of the group unreachable (a proven leak
        does not heal: nothing can wake those members, so the mark stays valid)."""
        return gid in self._proven
