"""The probe's replies: one method per request of ``wire.OPS``, called with its arguments.

Each reply is built from one consistent pass (``State.collect``), on the probe thread.  Rows of
tasks are made from the pass's records when the reply is packed, one at a time, and no
per-task container is kept for longer than a reply: at a million tasks, 100,000 surviving
containers set off a full collection of the host's heap.
"""
from __future__ import annotations

import array
import collections
import functools
import heapq
import itertools
import operator
import os
import platform
import sys
import threading
import time
from typing import Any

from tasktop import wire
from tasktop.wire import MAX_GROUPS, SCHEMA

from . import endings, memory, shards, verdicts
from .end_history import lifetime_stats, lifetime_stats_of_births
from .frames import own_frame, to_wire
from .handoff import Pacer
from .keys import GroupKey
from .parts import Parts
from .registry import CHUNK
from .shards import MASK
from .state import State
from .task_pass import UNWALKED_STATES, Pass, described, first_at

PROBE_VERSION = "0.1.0"

_SEQ = operator.attrgetter("seq")
NEAR = 64  # records looked at on each side of where halving finds a task's place (see _index)
_SINCE = operator.attrgetter("since")
_BORN = operator.attrgetter("born")
_KNOWN = functools.partial(operator.is_not, None)


def _blocked_order(info: Any) -> tuple:
    return info.since, info.seq


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


class Replies:
    """What the probe answers, from its ``State``.  Used only from the probe thread."""

    def __init__(self, state: State, pid: int, on_detach: Any = None) -> None:
        self.state = state
        self.pid = pid
        self.started = _process_started() or time.time()
        self.on_detach = on_detach  # the server's: stop once this reply is sent
        self.flight = None  # the flight recorder, when TASKTOP_RECORD is set

    # -- requests ---------------------------------------------------------------------------
    def hello(self) -> dict:
        """Also the reply that opens a connection (with ``ok``)."""
        return {"version": wire.VERSION, "pid": self.pid, "probe": PROBE_VERSION}

    def summary(self, complete: bool = False) -> dict:
        """Quick: the chains no pass has walked yet are walked for a while only, the tasks left
        counted in pseudo-groups (see ``task_pass``); ``complete`` walks them all."""
        return self._summary(self.state.collect(rows=False, complete=complete))

    def full(self) -> dict:
        found = self.state.collect()
        out = self._summary(found)
        awaited_by = self._awaited_by(found.infos)
        order = self._by_seq(found.infos)
        table = StackTable()
        # Rows are made while the reply is packed, one at a time (see wire.Stream).
        out["tasks"] = wire.Stream(len(order), self._rows(found, order, awaited_by, table))
        out["threads"] = [self._thread_row(r) for r in found.thread_rows]
        out["stacks"] = table.stacks  # after the rows: packed once they have filled it
        return out

    def group(self, gid: str, offset: int = 0, limit: int = 100) -> dict:
        """One group with source lines, and one page of its members (``limit`` within
        ``wire.OPS``' limits)."""
        found = self.state.collect()
        for group in found.groups.values():
            if group.key.id == gid:
                break
        else:
            if gid in {self.state.keys.unwalked(state).id for state in UNWALKED_STATES}:
                # This pass (complete: it lists members) walked every chain.
                raise LookupError(f"no group {gid}: its tasks' await chains are walked now, "
                                  "they are in their own groups")
            raise LookupError(f"no group {gid} (it may have emptied)")
        if group.key.kind == "task":
            page = self._page(group.members, offset, limit)
            awaited_by = self._awaited_by(found.infos)
            items = [self._task_row(info(), info, found, awaited_by, with_stack=False)
                     for info in page]
            shards.clear(awaited_by, Pacer(self.state.handoff))
        else:
            members = sorted(group.members, key=lambda r: (-r["blocked_s"], r["ident"]))[offset:offset + limit]
            items = []
            for r in members:
                row = self._thread_row(r)
                del row["stack"]
                items.append(row)
        out = {"group": group.to_wire(source=True), "total": group.count, "offset": offset, "items": items}
        if group.key.kind == "task":
            out["lifetimes"] = self._lifetimes(group)
        return out

    def _page(self, members: Parts, offset: int, limit: int) -> list:
        """Members ``offset`` to ``offset + limit`` of a task group, longest blocked first (the
        oldest ``since``), then by id.  Each slice is sorted on its own (two stable sorts on
        plain numbers: no key tuple per task), with the GIL given away between slices, and the
        page is taken from their merge: the sorts of a 350,000-member group in one go held the
        event loop up 10-20 ms at a time, several times over."""
        pace = Pacer(self.state.handoff)
        runs = []
        for chunk in members.slices(CHUNK):
            chunk.sort(key=_SEQ)
            chunk.sort(key=_SINCE)
            runs.append(chunk)
            pace()
        page = []
        merged = heapq.merge(*runs, key=_blocked_order)
        for n, info in enumerate(itertools.islice(merged, offset + limit)):
            if not n & 1023:
                pace()
            if n >= offset:
                page.append(info)
        return page

    def _lifetimes(self, group: Any) -> dict:
        """How long the group's members have lived so far, and how long its recently ended
        tasks lived (median and longest of each).  The live ones are counted by birth time
        (tasks made in a burst share one), a slice at a time, not listed one by one."""
        births: collections.Counter = collections.Counter()
        pace = Pacer(self.state.handoff)
        for chunk in group.members.slices(CHUNK):
            births.update(filter(_KNOWN, map(_BORN, chunk)))
            pace()
        ring = self.state.ends.ring_of(group.key.id)
        return {"live": lifetime_stats_of_births(births, time.monotonic()),
                "ended": ring.lifetimes() if ring is not None else lifetime_stats([])}

    def task(self, seq: int) -> dict:
        found = self.state.collect()
        index = self._index(found.infos, seq)
        if index is None or found.infos[index]() is None:
            raise LookupError(f"no task {seq} (it may have finished)")
        info = found.infos[index]
        awaited_by = self._awaited_by(found.infos)
        row = self._task_row(info(), info, found, awaited_by, source=True)

        def record(seq: int) -> Any:
            other = self._index(found.infos, seq, scan=False)
            return None if other is None else found.infos[other]

        def brief(seq: int) -> dict:
            other = record(seq)
            if other is None:
                return {"id": seq, "name": None, "state": "finished", "group": None}
            try:
                name = other().get_name()
            except Exception:
                name = None
            key = described(other)[0]
            return {"id": seq, "name": name, "state": key.state, "group": key.id,
                    "frame": own_frame(key.stack)}

        chain, seen, nxt = [], {info.seq}, described(info)[1]
        while nxt is not None and nxt not in seen and len(chain) < 50:
            seen.add(nxt)
            chain.append(brief(nxt))
            awaited = record(nxt)
            nxt = described(awaited)[1] if awaited is not None else None
        row["awaiting_chain"] = chain
        row["awaited_by_tasks"] = [brief(s) for s in row["awaited_by"]]
        row["awaiting_all_tasks"] = [brief(s) for s in row["awaiting_all"][:100]]
        row["created_in_task"] = brief(row["created_in"]) if row["created_in"] is not None else None
        shards.clear(awaited_by, Pacer(self.state.handoff))
        return row

    def thread(self, ident: int) -> dict:
        for row in self.state.threads.rows():
            if row["ident"] == ident:
                row["key"] = self.state.keys.group("thread", row["state"], row["stack"])
                return self._thread_row(row, source=True)
        raise LookupError(f"no thread {ident} (it may have exited)")

    def threads(self) -> list[dict]:
        out = []
        for row in self.state.threads.rows():
            row["key"] = self.state.keys.group("thread", row["state"], row["stack"])
            out.append(self._thread_row(row))
        return out

    def memory(self, top: int = 20) -> dict:
        out = memory.summary()
        out["top"] = memory.top_sites(top)
        return out

    def stalls(self) -> list[dict]:
        return [dict(loop=item["id"], **s) for item in self._loops({}) for s in item["stalls"]]

    def detach(self) -> dict:
        """The probe stops once this reply has gone out (see ``Server``)."""
        if self.on_detach is not None:
            self.on_detach()
        return {"detached": True, "pid": self.pid}

    def verdicts(self, budget_s: float = 2.0) -> dict:
        return verdicts.gather(self.state, budget_s)

    def ends(self, group: str = "", task: int = 0) -> dict:
        history = self.state.ends
        out = history.wire(group or None, limit=1 if group else 50)
        if task:
            out["ended"] = history.task(task)
        return out

    def waits(self) -> dict:
        found = self.state.collect(rows=False)  # the groups' members are enough
        return self.state.waits.look(found, Pacer(self.state.handoff))

    # -- parts ------------------------------------------------------------------------------
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
        loops = self.state.loops
        stall_ms = self.state.options.stall_ms
        out = []
        for watch in loops.watches.values():
            pending = watch.pending_ms(now)
            lag = watch.lag_ms
            if pending > stall_ms:
                lag = max(lag or 0.0, pending)
            out.append({
                "id": loops.number(watch.loop),
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
        state = self.state
        ordered = sorted(found.groups.values(), key=lambda g: (-g.count, g.key.kind, g.key.id))
        return {
            "schema": SCHEMA,
            "time": time.time(),
            "process": self._process(),
            "probe": {
                "version": PROBE_VERSION,
                "interval_s": round(state.budget.interval, 3),
                "sample_ms": round(state.budget.sample_ms, 3),
                "creation_stacks": state.options.creation_stacks,
                "tracemalloc": bool(state.options.tracemalloc),
                **({"record": self.flight.status()} if self.flight is not None else {}),
            },
            "totals": {"tasks": found.count, "threads": len(found.thread_rows),
                       "loops": len(state.loops.watches), "groups": len(ordered)},
            "memory": memory.summary(),
            "ended": state.ends.counts(),
            "loops": self._loops(found.loop_counts),
            "groups": [g.to_wire() for g in ordered[:MAX_GROUPS]],
            "endings": self._endings(),
        }

    def _endings(self) -> dict:
        return endings.summary(self.state.options.creation_depth)

    def _task_row(self, task: Any, info: Any, found: Pass, awaited_by: list[dict], source: bool = False,
                  with_stack: bool = True, table: StackTable | None = None) -> dict:
        """``table``: the row names its stacks by their numbers there (``full``)."""
        key, awaiting, children = described(info)
        site = self.state.keys.site(info)
        try:
            name = task.get_name()
            loop = self.state.loops.number(task._loop)
        except Exception:  # freed since the pass (None)
            name = loop = None
        seq = info.seq
        created = None
        if site is not None and site.stack:
            created = site.wire_source() if source else site.wire() if table is None else table.name(site.wire())
        row = {
            "id": seq,
            "name": name,
            "group": key.id,
            "loop": loop,
            "state": key.state,
            "blocked_s": round(found.blocked(info), 3),
            # One map made in one go: a million rows are made for one ``full``.
            "stack": key.wire_source() if source else key.wire() if table is None else table.name(key.wire()),
            "created_by": created,
            "created_in": info.parent,
            "awaiting": awaiting,
            "awaiting_all": list(children),
            "awaited_by": awaiters(awaited_by, seq),
        }
        if not with_stack:
            del row["stack"]
        return row

    def _rows(self, found: Pass, order: Any, awaited_by: list[dict], table: StackTable) -> Any:
        pace = Pacer(self.state.handoff)
        try:
            for n, i in enumerate(order):
                if not n & 127:
                    pace()
                info = found.infos[i]
                yield self._task_row(info(), info, found, awaited_by, table=table)
        finally:
            shards.clear(awaited_by, pace)

    def _by_seq(self, infos: Parts) -> Any:
        """Indices of ``infos`` in task-id order.  Records are walked in creation order, so
        this is ``range(n)`` but after a race between two threads making tasks; checked in
        slices (one C call over 100,000 items held the event loop up), and the seqs listed
        only if they are out of order (a list of a million, grown by appends, was copied into
        fresh memory in one go)."""
        pace = Pacer(self.state.handoff)
        last = -1
        for chunk in infos.slices(CHUNK):
            seqs = list(map(_SEQ, chunk))
            if seqs[0] <= last or not all(map(operator.lt, seqs, seqs[1:])):
                break
            last = seqs[-1]
            pace()
        else:
            return range(len(infos))
        every = array.array("q")
        for chunk in infos.slices(CHUNK):
            every.extend(map(_SEQ, chunk))
            pace()
        return sorted(range(len(every)), key=every.__getitem__)

    def _index(self, infos: Parts, seq: int, scan: bool = True) -> int | None:
        """The index of task ``seq``'s record in ``infos``, or None.  Records are in creation
        order but for the few a race between two threads making tasks puts a little out of
        place: found by halving, then around the place found; if ``scan``, then by a paced
        scan of them all (a task's related tasks, shown briefly, are not: one that ended is
        not there, and a scan for each would take seconds at a million)."""
        at = first_at(infos, seq)
        if at < len(infos) and infos[at].seq == seq:
            return at
        for index in range(max(0, at - NEAR), min(len(infos), at + NEAR)):
            if infos[index].seq == seq:
                return index
        if not scan:
            return None
        pace = Pacer(self.state.handoff)
        for n, info in enumerate(infos):
            if not n & 1023:
                pace()
            if info.seq == seq:
                return n
        return None

    def _awaited_by(self, infos: list) -> list[dict]:
        """Task seq -> the seq of the task awaiting it, or a list of them when several do
        (see ``awaiters``), sharded by seq (``shards``): one dict of 50,000 awaited tasks held
        the event loop up 8-10 ms as it grew.  An int for the usual one: a list per awaited task
        was 100,000 containers at a million tasks, and set off a full collection of the host's heap."""
        out = shards.dicts()
        pace = Pacer(self.state.handoff)
        for n, info in enumerate(infos):
            if not n & 1023:
                pace()
            cached = info.cache
            if type(cached) is GroupKey:
                continue
            _key, awaiting, children = cached
            for awaited in ((awaiting,) if awaiting is not None else ()) + children:
                shard = out[awaited & MASK]
                found = shard.get(awaited)
                if found is None:
                    shard[awaited] = info.seq
                elif type(found) is int:
                    shard[awaited] = [found, info.seq]
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


class StackTable:
    """The distinct stacks of a ``full`` reply, each sent once; a row names its stack and its
    creation stack by their numbers here (``wire.with_stacks`` puts them back).  A million
    rows name a few dozen stacks, and packing each row's own copies was four fifths of packing
    it.  Past ``named`` distinct stacks the rest go in the rows: the table's index grown to
    a million entries would rehash them all at each resize, in one C call."""

    __slots__ = ("stacks", "named", "_numbers")

    def __init__(self, named: int = 4096) -> None:
        self.stacks: list[list] = []
        self.named = named
        self._numbers: dict[int, int] = {}  # id of a key's cached wire stack -> its number

    def name(self, stack: list) -> int | list:
        """``stack``'s number (the table keeps it, so its id stays its own), or ``stack``
        itself once the table is full."""
        number = self._numbers.get(id(stack))
        if number is None:
            if len(self.stacks) >= self.named:
                return stack
            number = self._numbers[id(stack)] = len(self.stacks)
            self.stacks.append(stack)
        return number


def awaiters(awaited_by: list[dict], seq: int) -> list:
    """The sorted seqs of the tasks awaiting task ``seq`` (see ``Replies._awaited_by``)."""
    found = awaited_by[seq & MASK].get(seq)
    return [] if found is None else [found] if type(found) is int else sorted(found)

