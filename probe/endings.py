"""Tasks that ended badly without anyone seeing: lost (destroyed while pending) and unretrieved
exceptions, counted by where the task was created.

A task nothing references is destroyed by the collector while it still waits; asyncio then
says "Task was destroyed but it is pending!" through the loop's exception handler, maybe minutes
later and with no creation site, and the work it stood for never happens.  A task whose
exception nobody retrieved is reported the same way ("Task exception was never retrieved").
Both come through ``call_exception_handler``, which the probe wraps: nothing runs per task
(only the records of freed tasks are kept a little longer, ``record_lists.departed``), and the
handler the user would see still runs.

The loop threads only append to bounded counters here (``observe``); the probe thread turns
them into the wire's shapes when asked (``lost_rows``, ``unretrieved_rows``).
"""
from __future__ import annotations

import time
import traceback
from typing import Any

#: Distinct creation sites (and exception types) kept; beyond, they are counted under "other".
MAX_SITES = 500
LOST = "Task was destroyed but it is pending!"
UNRETRIEVED = "Task exception was never retrieved"

# site -> [count, last_at, last description (GroupKey or tuple, from the last pass), seq]
lost: dict = {}
# (site, exception type name) -> [count, last_at, last traceback text]
unretrieved: dict = {}
totals = {"lost": 0, "unretrieved": 0}


def _bounded_key(table: dict, key: Any) -> Any:
    return key if key in table or len(table) < MAX_SITES else "other"


def observe(context: dict, find_record: Any) -> None:
    """Count what ``context`` (a loop's exception handler context) says, if it is a task that
    ended unseen.  Runs on the loop's thread; never raises."""
    try:
        message = context.get("message") or ""
        if message.startswith(LOST):
            task = context.get("task")
            info = find_record(task)
            site = getattr(info, "site", None)
            key = _bounded_key(lost, site)
            row = lost.get(key)
            if row is None:
                row = lost[key] = [0, 0.0, None]
            row[0] += 1
            row[1] = time.time()
            row[2] = getattr(info, "cache", None) or row[2]
            totals["lost"] += 1
        elif message.startswith(UNRETRIEVED):
            task = context.get("future")
            exc = context.get("exception")
            info = find_record(task)
            site = getattr(info, "site", None)
            key = _bounded_key(unretrieved, (site, type(exc).__name__))
            row = unretrieved.get(key)
            if row is None:
                row = unretrieved[key] = [0, 0.0, ""]
            row[0] += 1
            row[1] = time.time()
            if exc is not None:
                row[2] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=20))[-4000:]
            totals["unretrieved"] += 1
    except Exception:
        pass


def lost_rows(site_frames: Any, described: Any) -> list[dict]:
    """The lost tasks by creation site, most first: ``site_frames(site)`` gives the creation
    stack in wire frames, ``described(cache)`` the ``(state, stack)`` where the last one of
    them was last seen waiting (None if no pass saw it)."""
    rows = []
    for site, (count, last_at, cache) in list(lost.items()):
        last = described(cache) if cache is not None else None
        rows.append({"site": site_frames(site) if site not in (None, "other") else [],
                     "count": count, "last_at": last_at,
                     "last_state": last[0] if last else None, "last_stack": last[1] if last else []})
    rows.sort(key=lambda r: -r["count"])
    return rows


def unretrieved_rows(site_frames: Any) -> list[dict]:
    """The unretrieved exceptions by creation site and exception type, most first."""
    rows = []
    for key, (count, last_at, text) in list(unretrieved.items()):
        site, exc_type = key if key != "other" else (None, "other")
        rows.append({"site": site_frames(site) if site is not None else [], "type": exc_type,
                     "count": count, "last_at": last_at, "traceback": text})
    rows.sort(key=lambda r: -r["count"])
    return rows


#: Rows of lost tasks and of unretrieved exceptions in a summary; tracebacks among them.
MAX_ENDINGS = 50
TRACEBACKS = 5


def summary(depth: int) -> dict:
    """The ``endings`` of a summary: lost tasks and unretrieved exceptions by creation site
    (the largest ``MAX_ENDINGS`` of each; tracebacks of the first ``TRACEBACKS``)."""
    from .keys import GroupKey, SiteKey  # the probe thread's interned keys

    def site_frames(site: Any) -> list:
        try:
            key = site if type(site) is SiteKey else SiteKey(site, depth)
            return key.wire() if key.stack else []
        except Exception:
            return []

    def last_seen(cache: Any) -> tuple:
        key = cache if type(cache) is GroupKey else cache[0]
        return key.state, key.wire()

    lost_by_site = _merged(lost_rows(site_frames, last_seen), ("site",))
    unretrieved_by_site = _merged(unretrieved_rows(site_frames), ("site", "type"))
    for row in unretrieved_by_site[TRACEBACKS:]:
        row["traceback"] = None  # a summary is asked for every second: a few are enough
    return {"lost_total": totals["lost"], "unretrieved_total": totals["unretrieved"],
            "lost": lost_by_site[:MAX_ENDINGS], "unretrieved": unretrieved_by_site[:MAX_ENDINGS]}


def _merged(rows: list[dict], by: tuple) -> list[dict]:
    """Rows that name the same creation stack (a site is counted under its first and its
    interned form) added up, the most recent one's details kept; most first."""
    out: dict = {}
    for row in rows:
        key = tuple(repr(row[k]) for k in by)
        kept = out.get(key)
        if kept is None:
            out[key] = row
            continue
        count = kept["count"] + row["count"]
        if row["last_at"] > kept["last_at"]:
            kept.update(row)
        kept["count"] = count
    return sorted(out.values(), key=lambda r: -r["count"])


def reset() -> None:
    """Forget every count (tests, and a probe started again)."""
    lost.clear()
    unretrieved.clear()
    totals.update(lost=0, unretrieved=0)
