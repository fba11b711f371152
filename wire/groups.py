"""What makes tasks and threads one group, and the groups of a document: one rule for the
probe's ids, the py-spy fallback, the profiles, ``diff`` and the pytest plugin's report.

A group is every task (or thread) with the same kind, state and stack; its id is a hash of
those, so it is the same in every snapshot and every process running the same code.
"""
from __future__ import annotations

import hashlib
from typing import Iterable


def group_id(kind: str, state: str, frames: Iterable[tuple]) -> str:
    """A short id that is the same for the same kind, state and stack (``(file, func, line)``
    innermost first) in every snapshot and every process: the probe's groups and the py-spy
    fallback's are named by it, so ``diff`` lines them up."""
    text = "\n".join([kind, state] + [f"{file}:{func}:{line}" for file, func, line in frames])
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=6).hexdigest()


def groups_of(data: dict) -> list[dict]:
    """Every group of a snapshot, largest first, each with ``blocked_total_s`` when known.

    The listed groups are kept as they are; groups the summary left out (it carries at most the
    largest 500) are rebuilt from the members of a ``full`` snapshot, and the members give
    each group the sum of their blocked times.
    """
    groups = {g["id"]: dict(g) for g in data.get("groups") or ()}
    members = [("task", m) for m in data.get("tasks") or ()] + \
              [("thread", m) for m in data.get("threads") or ()]
    if members:
        totals: dict[str, float | None] = {}
        for kind, member in members:
            gid = member.get("group")
            if gid is None:
                continue
            blocked = member.get("blocked_s")  # None: not known (a process read without a probe)
            totals[gid] = None if blocked is None or totals.get(gid, 0.0) is None else totals.get(gid, 0.0) + blocked
            if gid not in groups or groups[gid].get("_rebuilt"):
                group = groups.setdefault(gid, {
                    "id": gid, "kind": kind, "count": 0, "state": member.get("state", "?"),
                    "blocked_min_s": blocked, "blocked_max_s": blocked,
                    "stack": member.get("stack") or [], "created_by": [], "_rebuilt": True,
                })
                group["count"] += 1
                if blocked is None or group["blocked_max_s"] is None:
                    group["blocked_min_s"] = group["blocked_max_s"] = None
                else:
                    group["blocked_min_s"] = min(group["blocked_min_s"], blocked)
                    group["blocked_max_s"] = max(group["blocked_max_s"], blocked)
        for gid, total in totals.items():
            groups[gid]["blocked_total_s"] = total
    out = []
    for group in groups.values():
        group.pop("_rebuilt", None)
        out.append(group)
    out.sort(key=lambda g: (-g.get("count", 0), g.get("kind", ""), g.get("id", "")))
    return out


def missing_groups(data: dict, groups: list[dict]) -> int:
    """How many groups of the process are in neither the group list nor the members."""
    total = (data.get("totals") or {}).get("groups")
    return max(0, total - len(groups)) if isinstance(total, int) else 0
