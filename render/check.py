"""``tasktop check``: a verdict on a live process, for cron, health checks and CI.

Each threshold the user gives becomes one check with one line of output, ``OK …`` or
``FAIL …``, naming the worst offender so the line alone says where to look:

* ``tasks``: live asyncio tasks now;
* ``growth``: tasks per minute between two snapshots ``--window`` seconds apart, for the total
  and for every group (matched by its stable id, so a group is followed even as its members
  come and go): a leak is a group that keeps growing;
* ``blocked``: the longest any task or thread has been blocked (groups' ``blocked_max_s``),
  leaving out threads that are merely idle (:data:`IDLE_STATES`);
* ``lag``: the worst event-loop lag now, and the longest stall in the last ``--window``
  seconds (the probe keeps the last stalls of each loop, with when they began);
* ``lost``: tasks destroyed while pending since the probe started (the work they stood for
  never happened), named by the creation site that lost most.

Only ``growth`` needs to wait for a second snapshot; the others judge one snapshot, so a
health check that does not ask about growth answers at once.  The evaluation is a pure
function of the snapshots, separate from fetching them.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from . import stacks
from .units import duration, ms

#: Exit statuses of a verdict (the command adds 2 for usage errors and 3 for no verdict).
EXIT_OK = 0
EXIT_FAIL = 1


#: Thread states that mean "waiting for work", not stuck: an executor's idle workers and an
#: event loop with nothing to do wait as long as there is no work, which is no fault.
IDLE_STATES = ("executor idle", "idle loop")


@dataclass
class Limits:
    """The thresholds asked for (``None``: not checked) and the growth window in seconds."""

    tasks: int | None = None
    growth: float | None = None  # tasks per minute
    blocked: float | None = None  # seconds
    lag: float | None = None  # milliseconds
    lost: int | None = None  # tasks destroyed while pending
    window: float = 10.0

    def given(self) -> bool:
        return any(v is not None for v in (self.tasks, self.growth, self.blocked, self.lag, self.lost))

    def needs_two_snapshots(self) -> bool:
        return self.growth is not None


@dataclass
class Verdict:
    """One line of the result."""

    check: str  # tasks, growth, blocked, lag, lost
    ok: bool
    line: str
    value: float | None = None
    limit: float | None = None
    subject: str | None = None  # what ``value`` measures, when a check has several lines
    offenders: list = field(default_factory=list)


def take_snapshots(fetch: Callable[[], dict], limits: Limits,
                   sleep: Callable[[float], None] = time.sleep) -> tuple[dict | None, dict]:
    """(first, last): two summaries ``limits.window`` apart when growth is checked, else
    (None, one summary)."""
    if not limits.needs_two_snapshots():
        return None, fetch()
    first = fetch()
    sleep(limits.window)
    return first, fetch()


def evaluate(limits: Limits, last: dict, first: dict | None = None) -> list[Verdict]:
    """Every asked-for check against the snapshots (``first`` only matters for growth)."""
    out: list[Verdict] = []
    if limits.tasks is not None:
        out.append(_tasks(limits.tasks, last))
    if limits.growth is not None:
        if first is None:
            raise ValueError("growth needs two snapshots")
        out.extend(_growth(limits.growth, first, last, limits.window))
    if limits.blocked is not None:
        out.append(_blocked(limits.blocked, last))
    if limits.lag is not None:
        out.append(_lag(limits.lag, last, first, limits.window))
    if limits.lost is not None:
        out.append(_lost(limits.lost, last))
    return out


def status(verdicts: list[Verdict]) -> int:
    return EXIT_OK if all(v.ok for v in verdicts) else EXIT_FAIL


def render(verdicts: list[Verdict]) -> str:
    return "".join(v.line + "\n" for v in verdicts)


def to_json(verdicts: list[Verdict], last: dict, first: dict | None, limits: Limits) -> dict:
    """The ``--json`` result: the overall verdict, then each check with all its offenders."""
    proc = last.get("process") or {}
    return {
        "pid": proc.get("pid"),
        "ok": all(v.ok for v in verdicts),
        "status": status(verdicts),
        "window_s": limits.window,
        "snapshots": [s.get("time") for s in (first, last) if s is not None],
        "checks": [asdict(v) for v in verdicts],
    }


# -- the checks ------------------------------------------------------------------------------------
def _num(value: float) -> str:
    """A limit as the user would write it: ``100``, ``0.5``."""
    return f"{value:g}"


def _rate(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def _signed_rate(value: float) -> str:
    return ("+" if value > 0 else "") + _rate(value)


def _group_name(group: dict) -> str:
    """``group 4154c4a7061e (consume (worker.py:40), Queue.get)``."""
    return f"group {group.get('id')} ({stacks.where(group.get('stack'))}, {group.get('state')})"


def _more(n: int, what: str = "groups") -> str:
    return f" (and {n} more {what if n != 1 else what.rstrip('s')})" if n else ""


def _brief(group: dict) -> dict:
    return {"id": group.get("id"), "kind": group.get("kind"), "state": group.get("state"),
            "where": stacks.where(group.get("stack")), "count": group.get("count")}


def _lost(limit: int, last: dict) -> Verdict:
    endings = last.get("endings") or {}
    total = int(endings.get("lost_total") or 0)
    rows = endings.get("lost") or []
    ok = total <= limit
    line = f"{'OK' if ok else 'FAIL'} lost: {total} tasks destroyed while pending {'<=' if ok else '>'} {limit}"
    if rows:
        worst = rows[0]
        created = stacks.frame_label(worst["site"][0]) if worst.get("site") else "an unknown site"
        line += f" ({worst['count']} created by {created}{_more(len(rows) - 1, 'sites')})"
    offenders = [{"created_by": r.get("site"), "count": r.get("count"), "state": r.get("last_state")}
                 for r in rows] if not ok else []
    return Verdict("lost", ok, line, total, limit, "lost", offenders)


def _tasks(limit: int, last: dict) -> Verdict:
    tasks = (last.get("totals") or {}).get("tasks") or 0
    ok = tasks <= limit
    line = f"{'OK' if ok else 'FAIL'} tasks {tasks} {'<=' if ok else '>'} {limit}"
    return Verdict("tasks", ok, line, tasks, limit, "tasks")


def _growth(limit: float, first: dict, last: dict, window: float) -> list[Verdict]:
    elapsed = (last.get("time") or 0.0) - (first.get("time") or 0.0)
    if elapsed <= 0:
        elapsed = window
    per_min = 60.0 / elapsed
    lim = _num(limit)

    t0 = (first.get("totals") or {}).get("tasks") or 0
    t1 = (last.get("totals") or {}).get("tasks") or 0
    total = (t1 - t0) * per_min
    ok = total <= limit
    total_line = (f"OK growth: tasks {_signed_rate(total)}/min <= {lim}/min" if ok else
                  f"FAIL growth: tasks grew {_rate(total)}/min > {lim}/min ({t0} -> {t1} in {duration(elapsed)})")
    verdicts = [Verdict("growth", ok, total_line, round(total, 3), limit, "tasks")]

    before = {g["id"]: g.get("count", 0) for g in first.get("groups") or ()}
    # The summary lists at most the largest groups: one missing from a truncated list had at
    # most as many members as the smallest listed.
    listed = len(before)
    truncated = ((first.get("totals") or {}).get("groups") or 0) > listed
    absent = min(before.values()) if truncated and before else 0
    rates = []
    for group in last.get("groups") or ():
        old = before.get(group["id"], absent)
        rate = (group.get("count", 0) - old) * per_min
        rates.append((rate, old, group))
    rates.sort(key=lambda item: -item[0])
    offenders = [dict(_brief(g), old=old, per_min=round(rate, 3)) for rate, old, g in rates if rate > limit]
    if offenders:
        rate, old, group = rates[0]
        line = (f"FAIL growth: {_group_name(group)} grew {_rate(rate)}/min > {lim}/min "
                f"({old} -> {group.get('count', 0)} in {duration(elapsed)}){_more(len(offenders) - 1)}")
        verdicts.append(Verdict("growth", False, line, round(rate, 3), limit, "groups", offenders))
    else:
        growing = [item for item in rates if item[0] > 0]
        if growing:
            rate, _old, group = growing[0]
            line = f"OK growth: fastest {_group_name(group)} {_signed_rate(rate)}/min <= {lim}/min"
        else:
            rate, line = 0.0, f"OK growth: no group grew in {duration(elapsed)}"
        verdicts.append(Verdict("growth", True, line, round(rate, 3), limit, "groups"))
    return verdicts


def _blocked(limit: float, last: dict) -> Verdict:
    groups = sorted((g for g in last.get("groups") or () if g.get("state") not in IDLE_STATES),
                    key=lambda g: -(g.get("blocked_max_s") or 0.0))
    lim = f"{_num(limit)}s"
    if not groups:
        return Verdict("blocked", True, f"OK blocked: nothing is blocked <= {lim}", 0.0, limit)
    worst = groups[0]
    longest = worst.get("blocked_max_s") or 0.0
    offenders = [dict(_brief(g), blocked_max_s=g.get("blocked_max_s")) for g in groups
                 if (g.get("blocked_max_s") or 0.0) > limit]
    if offenders:
        line = (f"FAIL blocked: {_group_name(worst)} blocked {duration(longest)} > {lim}"
                f"{_more(len(offenders) - 1)}")
        return Verdict("blocked", False, line, longest, limit, None, offenders)
    if longest <= 0:
        return Verdict("blocked", True, f"OK blocked: nothing is blocked <= {lim}", 0.0, limit)
    line = f"OK blocked: longest {duration(longest)} in {_group_name(worst)} <= {lim}"
    return Verdict("blocked", True, line, longest, limit)


def _lag(limit: float, last: dict, first: dict | None, window: float) -> Verdict:
    lim = f"{_num(limit)}ms"
    loops = last.get("loops") or []
    if not loops:
        return Verdict("lag", True, f"OK lag: no event loop <= {lim}", None, limit)
    now = last.get("time") or time.time()
    start = first.get("time") if first is not None else now - window
    span = f"in the last {duration(now - start)}"
    worst: tuple[float, str, dict] | None = None  # (ms, what, offender)
    offenders = []
    stall_total = 0
    for loop in loops:
        name = f"loop {loop.get('id')} ({loop.get('thread_name') or loop.get('thread')})"
        lag = loop.get("lag_ms")
        if lag is not None:
            item = (lag, f"{name} lag {ms(lag)}", {"loop": loop.get("id"), "lag_ms": lag})
            if worst is None or lag > worst[0]:
                worst = item
            if lag > limit:
                offenders.append(item[2])
        for stall in loop.get("stalls") or ():
            took = stall.get("duration_ms") or 0.0
            if (stall.get("at") or 0.0) + took / 1000.0 < start:
                continue
            stall_total += 1
            stack = stall.get("stack") or []
            where = stacks.where(stack) if stack else "(stack not captured)"
            item = (took, f"{name} stalled {ms(took)} in {where}",
                    {"loop": loop.get("id"), "stall_ms": took, "at": stall.get("at"), "where": where})
            if worst is None or took > worst[0]:
                worst = item
            if took > limit:
                offenders.append(item[2])
    stalls = f"{stall_total} stall{'s' if stall_total != 1 else ''} {span}"
    if worst is None:
        return Verdict("lag", True, f"OK lag: not measured yet, {stalls} <= {lim}", None, limit)
    if offenders:
        more = len(offenders) - 1
        line = f"FAIL lag: {worst[1]} > {lim} ({stalls}{f'; {more} more over' if more else ''})"
        return Verdict("lag", False, line, worst[0], limit, None, offenders)
    return Verdict("lag", True, f"OK lag: worst {worst[1]}, {stalls} <= {lim}", worst[0], limit)
