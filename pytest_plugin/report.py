"""The failure message of a test that left something behind, grouped like ``tasktop dump``.

A summary line, then one block per group (kind, state and stack), largest first, each with
where its members were created, then how to let leftovers through or wait longer for them.
"""
from __future__ import annotations

import re
from typing import Iterable

from tasktop.render.text import frame_text
from tasktop.wire.groups import group_id
from tasktop.wire.units import duration

from .leftovers import Leftover
from .options import CREATION_DEPTH, INI_ALLOW, INI_RUNNER, INI_TIMEOUT, MARKER


def _natural(text: str) -> list:
    """Sort key: ``Task-9`` before ``Task-10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def plural(count: int, noun: str) -> str:
    """``1 thread``, ``2 threads``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _texts(stack: Iterable, root: str) -> tuple:
    """``func (file:line)`` of each frame, the file as ``tasktop dump`` shows it but relative to
    pytest's root directory."""
    return tuple(frame_text(frame, root) for frame in stack)


def _grouped(rows: list[Leftover], root: str) -> list[dict]:
    """The rows in groups of one kind, state and stack (the dump's group id), largest first,
    each counting its members' creation sites."""
    groups: dict = {}  # group id -> {kind, state, stack, rows, sites}
    for row in rows:
        frames = [(frame["file"], frame["func"], frame["line"]) for frame in row["stack"]]
        group = groups.setdefault(group_id(row["kind"], row["state"], frames), {
            "kind": row["kind"], "state": row["state"], "stack": row["stack"], "rows": [], "sites": {}})
        group["rows"].append(row)
        site = _texts(row["site"], root) if row["site"] else None
        group["sites"][site] = group["sites"].get(site, 0) + 1
    return sorted(groups.values(), key=lambda g: (-len(g["rows"]), g["kind"], g["state"]))


def _group_lines(group: dict, root: str) -> list[str]:
    """One group: its count, state and first names, its stack, and where its members were made."""
    members = sorted(group["rows"], key=lambda m: _natural(str(m["name"])))
    names = [m["name"] for m in members[:3]]
    more = f", … {len(members) - 3} more" if len(members) > 3 else ""
    lines = ["", f"{plural(len(members), group['kind'])}: {group['state']}  [{', '.join(map(str, names))}{more}]"]
    lines.extend("    " + frame for frame in _texts(group["stack"], root) or ("(no Python frames)",))
    for site, count in sorted(group["sites"].items(), key=lambda kv: -kv[1]):
        if not site:  # asyncio.Task() called directly, _thread.start_new_thread()...
            lines.append(f"  creation site not recorded  ×{count}")
            continue
        lines.append(f"  created by {site[0]}  ×{count}")
        lines.extend("      " + frame for frame in site[1:])
    return lines


def render(rows: list[Leftover], timeout: float, root: str) -> str:
    """The failure message: a summary line, then the leftovers grouped by kind, state and stack,
    largest group first, each with where its members were created."""
    n_threads = sum(1 for r in rows if r["kind"] == "thread")
    n_tasks = len(rows) - n_threads
    parts = []
    if n_threads:
        parts.append(plural(n_threads, "thread"))
    if n_tasks:
        parts.append(plural(n_tasks, "asyncio task"))
    still = f" (still there after {duration(timeout)})" if any(not r["final"] for r in rows) else ""
    lines = [f"tasktop_leaks: the test left {' and '.join(parts)} behind{still}"]
    for group in _grouped(rows, root):
        lines.extend(_group_lines(group, root))
    lines.append("")
    lines.append("Threads and tasks that existed before the test are not counted.")
    lines.append(f"To let some through: @pytest.mark.{MARKER}(ignore=[\"name or function glob\"]), "
                 f"or in every test a line \"glob = reason\" of the {INI_ALLOW} ini option;")
    lines.append(f"to wait longer for them: @pytest.mark.{MARKER}(timeout=seconds) or {INI_TIMEOUT}.")
    if any(r["final"] for r in rows):
        lines.append(f"Tasks a runner had to cancel count unless runner_cancelled=False "
                     f"(or {INI_RUNNER} = false).")
    return "\n".join(lines)


def render_lost(lost: list, root: str) -> str:
    """The failure message for tasks the test lost: destroyed while still pending, because
    nothing referenced them, so the work they stood for never happened."""
    from tasktop.probe.keys import SiteKey

    total = sum(count for _site, count in lost)
    lines = [f"tasktop_leaks: {plural(total, 'asyncio task')} of the test "
             f"{'was' if total == 1 else 'were'} destroyed while pending (lost): nothing referenced "
             f"{'it' if total == 1 else 'them'}, so {'its' if total == 1 else 'their'} work never happened"]
    for site, count in sorted(lost, key=lambda item: -item[1]):
        frames = []
        if site not in (None, "other"):
            try:
                key = site if type(site) is SiteKey else SiteKey(site, CREATION_DEPTH)
                frames = key.wire()
            except Exception:
                frames = []
        where = frame_text(frames[0], root) if frames else "a place the probe did not see"
        lines.append(f"  {count} created by {where}")
        lines.extend(f"      {frame_text(f, root)}" for f in frames[1:])
    lines.append("Keep a reference to each task until it is done (a set, a TaskGroup), or await it.")
    return "\n".join(lines)
