"""``tasktop diff OLD.json NEW.json``: what piled up between two snapshots.

Like ``pprof -diff_base``: the groups of two ``tasktop dump --json`` documents (or the TUI's
exports, which are the same document) are matched by their stable id, which depends only on
kind, state and stack, so two snapshots of one process, or of two processes running the same
code, line up.  Each group gets its old count, new count and change; groups only in the new
document are *new*, groups only in the old one are *gone*.  Largest growth first: the top line
is the first suspect.
"""
from __future__ import annotations

import json
import time

from . import stacks
from .profiles import groups_of
from .units import duration, size

SCHEMA = 1


class DocumentError(Exception):
    """A file that is not a readable schema-1 document; the message is one line."""


def load(path: str) -> dict:
    """A schema-1 document from ``path``, or a :class:`DocumentError` saying what is wrong."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DocumentError(f"{path} is not JSON (not UTF-8 text)") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DocumentError(f"{path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or "schema" not in doc:
        raise DocumentError(f"{path} is not a tasktop document (no schema field; "
                            "make one with tasktop dump PID --json)")
    if doc["schema"] != SCHEMA:
        raise DocumentError(f"{path} has schema {doc['schema']!r}; this tasktop reads schema {SCHEMA}")
    if not isinstance(doc.get("groups"), list) or not all(
            isinstance(g, dict) and "id" in g and "count" in g for g in doc["groups"]):
        raise DocumentError(f"{path} is not a tasktop document (no valid groups list)")
    return doc


def _total(old: dict, new: dict, section: str, key: str) -> dict:
    a = (old.get(section) or {}).get(key)
    b = (new.get(section) or {}).get(key)
    delta = b - a if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
    return {"old": a, "new": b, "delta": delta}


def _side(doc: dict, path: str | None) -> dict:
    proc = doc.get("process") or {}
    return {"file": path, "pid": proc.get("pid"), "time": doc.get("time"),
            "argv": proc.get("argv"), "groups_missing": _missing(doc)}


def _missing(doc: dict) -> int:
    total = (doc.get("totals") or {}).get("groups")
    listed = len(groups_of(doc))
    return max(0, total - listed) if isinstance(total, int) else 0


def diff(old: dict, new: dict, old_path: str | None = None, new_path: str | None = None) -> dict:
    """The change from ``old`` to ``new`` (the ``--json`` result of ``tasktop diff``)."""
    before = {g["id"]: g for g in groups_of(old)}
    after = {g["id"]: g for g in groups_of(new)}
    rows = []
    for gid in list(after) + [gid for gid in before if gid not in after]:
        a, b = before.get(gid), after.get(gid)
        group = b or a
        old_count = a.get("count", 0) if a else 0
        new_count = b.get("count", 0) if b else 0
        rows.append({
            "id": gid,
            "kind": group.get("kind"),
            "state": group.get("state"),
            "where": stacks.where(group.get("stack")),
            "old": old_count,
            "new": new_count,
            "delta": new_count - old_count,
            "status": "new" if a is None else "gone" if b is None else
                      "same" if new_count == old_count else "changed",
            "stack": group.get("stack") or [],
        })
    rows.sort(key=lambda r: (-r["delta"], -r["new"], r["id"]))
    elapsed = None
    if isinstance(old.get("time"), (int, float)) and isinstance(new.get("time"), (int, float)):
        elapsed = new["time"] - old["time"]
    return {
        "schema": SCHEMA,
        "old": _side(old, old_path),
        "new": _side(new, new_path),
        "elapsed_s": elapsed,
        "totals": {
            "tasks": _total(old, new, "totals", "tasks"),
            "threads": _total(old, new, "totals", "threads"),
            "rss_bytes": _total(old, new, "memory", "rss_bytes"),
            "groups": {"old": len(before), "new": len(after), "delta": len(after) - len(before)},
        },
        "groups": rows,
    }


# -- text ----------------------------------------------------------------------------------------
def _signed(n: float | None, fmt=str) -> str:
    if n is None:
        return "?"
    return ("+" if n > 0 else "-" if n < 0 else "") + fmt(abs(n))


def _when(side: dict) -> str:
    t = side.get("time")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if isinstance(t, (int, float)) else "?"
    return f"pid {side.get('pid', '?')} at {stamp}"


def render(result: dict) -> str:
    """The text of ``tasktop diff``: header, totals, then one row per group."""
    old, new, totals = result["old"], result["new"], result["totals"]
    elapsed = result.get("elapsed_s")
    later = "?" if elapsed is None else (duration(elapsed) if elapsed >= 0 else f"-{duration(-elapsed)}")
    lines = [f"tasktop diff: {old.get('file') or 'old'} ({_when(old)}) -> "
             f"{new.get('file') or 'new'} ({_when(new)}, {later} later)"]

    def total_line(name: str, item: dict, fmt=str) -> str:
        a = "?" if item["old"] is None else fmt(item["old"])
        b = "?" if item["new"] is None else fmt(item["new"])
        return f"{name:<8} {a:>10} -> {b:<10} {_signed(item['delta'], fmt)}"

    lines.append(total_line("tasks", totals["tasks"]))
    lines.append(total_line("threads", totals["threads"]))
    lines.append(total_line("RSS", totals["rss_bytes"], size))
    lines.append(total_line("groups", totals["groups"]))
    for side, label in ((old, "old"), (new, "new")):
        if side.get("groups_missing"):
            lines.append(f"note: the {label} document lists only its largest groups "
                         f"({side['groups_missing']} more not recorded)")
    lines.append("")
    lines.append(f"{'OLD':>6} {'NEW':>6} {'DELTA':>6}  {'GROUP':<12}  {'KIND':<6}  {'STATE':<17}  WHERE")
    for row in result["groups"]:
        mark = "  (new)" if row["status"] == "new" else "  (gone)" if row["status"] == "gone" else ""
        lines.append(f"{row['old']:>6} {row['new']:>6} {_signed(row['delta']):>6}  {row['id']:<12}  "
                     f"{row['kind'] or '?':<6}  {row['state'] or '?':<17}  {row['where']}{mark}")
    if not result["groups"]:
        lines.append("(no groups in either document)")
    return "\n".join(lines) + "\n"
