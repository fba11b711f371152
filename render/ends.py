"""How tasks end and what they wait on, as the views say it: the dump's "Waits" and "How tasks
ended" sections, and the one wording of a waited-on object and of an ending that the TUI and the
exporter use too.
"""
from __future__ import annotations

from typing import Any, Iterable

from .stacks import frame_label, where
from .units import duration, lifetime

#: The object's kind as a user writes it: ``asyncio.queues.Queue`` -> ``asyncio.Queue``.
_MODULES = {"asyncio.queues": "asyncio", "asyncio.locks": "asyncio", "queue": "queue", "threading": "threading"}


def wait_kind(kind: str) -> str:
    """``asyncio.Queue``, ``threading.Event``: the public name of a waited-on object's type."""
    module, _, name = kind.rpartition(".")
    return f"{_MODULES.get(module, module)}.{name}" if module else name


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def wait_numbers(wait: dict) -> str:
    """``40,000 items (max 0), 1 getter, 0 putters`` or ``held, 3 waiters`` or ``value 0 of 4, 2 waiters``."""
    n = wait.get("numbers") or {}
    parts = []
    if "size" in n:
        parts.append(_plural(n["size"], "item") + (f" (max {n['maxsize']:,})" if n.get("maxsize") else " (unbounded)"))
        parts.append(_plural(n.get("getters", 0), "getter"))
        parts.append(_plural(n.get("putters", 0), "putter"))
        if n.get("unfinished") is not None:
            parts.append(f"{n['unfinished']:,} unfinished")
    else:
        if "value" in n:
            bound = f" of {n['bound']}" if n.get("bound") is not None else ""
            parts.append(f"value {n['value']}{bound}")
        if "locked" in n:
            parts.append("held" if n["locked"] else "free")
        if "set" in n:
            parts.append("set" if n["set"] else "not set")
        if n.get("parties") is not None:
            parts.append(f"{n.get('waiters') or 0} of {n['parties']} parties")
        elif "waiters" in n:
            parts.append(_plural(n.get("waiters") or 0, "waiter"))
    return ", ".join(parts) or "numbers not readable"


def wait_moves(wait: dict, since_s: float | None) -> str:
    """``+3,000 items, -1 getter in 5.0 s``; ``unchanged``; ``first look`` when none before."""
    moved = wait.get("moved")
    if moved is None or since_s is None:
        return "first look"
    words = {"size": "item", "getters": "getter", "putters": "putter", "waiters": "waiter",
             "unfinished": "unfinished", "value": "value"}
    parts = [f"{v:+,} {words.get(k, k)}{'' if abs(v) == 1 or k in ('unfinished', 'value') else 's'}"
             for k, v in moved.items() if v]
    return (", ".join(parts) if parts else "unchanged") + f" in {duration(since_s)}"


def wait_where(wait: dict) -> str:
    frame = wait.get("frame")
    return frame_label(frame) if frame else "?"


def wait_lines(waits: dict | None, limit: int | None = 10) -> list[str]:
    """The dump's "Waits" section: objects tasks or threads wait on, most waiters first."""
    if not waits:
        return []
    items = waits.get("waits") or []
    if not items:
        return ["", "Waits: no task or thread waits on a queue, lock, semaphore, event or condition"]
    shown = items if limit is None else items[:limit]
    lines = ["", f"Waits ({waits.get('total', len(items))} objects waited on, most waiters first):"]
    for wait in shown:
        states = ", ".join(f"{n} in {s}" for s, n in sorted(wait.get("states", {}).items(), key=lambda kv: -kv[1]))
        lines.append(f"  {wait_kind(wait['kind'])} waited on at {wait_where(wait)}: {wait_numbers(wait)}")
        lines.append(f"      {_plural(wait['waiting'], 'waiter')} ({states}); {wait_moves(wait, waits.get('since_s'))}"
                     f"  [groups {', '.join(wait.get('groups') or []) or '?'}]")
    if len(shown) < waits.get("total", len(items)):
        lines.append(f"  … {waits.get('total', len(items)) - len(shown)} more (dump --full lists all)")
    return lines


def ending_text(ended: dict) -> str:
    """``cancelled after 1.2 s by TaskGroup (a task of the group raised ValueError) in task 7
    at main (app.py:30)``; ``raised KeyError after 3 ms``; ``returned after 80 ms``."""
    lived = ended.get("lived_s")
    after = f" after {lifetime(lived)}" if lived is not None else ""
    if ended["outcome"] == "raised":
        text = f"raised {ended.get('error') or '?'}{after}"
    else:
        text = f"{ended['outcome']}{after}"
    by = ended.get("cancelled_by")
    if ended["outcome"] == "cancelled":
        text += " by " + canceller_text(by) if by else " (by a cancel() whose caller is not seen: Python < 3.12 without TASKTOP_CANCELLERS=profile, or called from C)"
    return text


def canceller_text(by: dict) -> str:
    reason = f" ({by['reason']})" if by.get("reason") else ""
    task = f" in task {by['task']}" if by.get("task") is not None else ""
    stack = by.get("stack") or []
    at = f" at {where(stack)}" if stack else ""
    return f"{by['how']}{reason}{task}{at}"


def ring_title(ring: dict) -> str:
    """What a ring is: its group's state and frame, or the creation site of tasks no pass saw."""
    if ring.get("group"):
        stack = ring.get("stack") or []
        at = where(stack) if stack else "?"
        return f"group {ring['group']} ({ring.get('state')} at {at})"
    created = ring.get("created_by") or []
    return f"tasks created at {frame_label(created[0])}" if created else "tasks of unknown origin"


def lifetimes_text(lifetimes: dict | None) -> str:
    if not lifetimes or not lifetimes.get("count"):
        return "no lifetimes"
    return (f"median {lifetime(lifetimes['median_s'])}, longest {lifetime(lifetimes['longest_s'])} "
            f"(of {lifetimes['count']})")


def end_lines(ends: dict | None, per_ring: int = 5) -> list[str]:
    """The dump's "How tasks ended" section (``--full``): per group, counts, lifetimes and the
    most recent endings."""
    if not ends:
        return []
    rings = ends.get("rings") or []
    dropped = ends.get("dropped") or 0
    unfollowed = ends.get("unfollowed") or 0
    lines = ["", f"How tasks ended ({ends.get('ended_total', 0):,} since the probe started"
             + (f"; {dropped:,} came too fast to keep" if dropped else "")
             + (f"; {unfollowed:,} more tasks made past {ends.get('follow_per_s', 0):,} a second were not followed"
                if unfollowed else "") + "), most recent first:"]
    if not rings:
        lines.append("  no task made since the probe started has ended")
    for ring in rings:
        errors = ", ".join(f"{n} {e}" for e, n in sorted(ring.get("errors", {}).items(), key=lambda kv: -kv[1]))
        lines.append("")
        lines.append(f"  {ring_title(ring)}: {ring['returned']:,} returned, {ring['raised']:,} raised"
                     f"{f' ({errors})' if errors else ''}, {ring['cancelled']:,} cancelled; "
                     f"lived {lifetimes_text(ring.get('lifetimes'))}")
        for ended in (ring.get("recent") or [])[:per_ring]:
            lines.append(f"      task {ended['id']} {ending_text(ended)}, {duration(ended['ago_s'])} ago")
    return lines


def largest_waits(waits: dict | None, n: int) -> Iterable[dict[str, Any]]:
    """The ``n`` objects with the most waiters (the reply is sorted so)."""
    return ((waits or {}).get("waits") or [])[:n]
