"""Model.rewind: a replay stepping back forgets what came after, as if it had not come yet."""
from __future__ import annotations

from tasktop.tui.model import Model


def snap(t: float, count: int, extra_group: bool = False, stall_at: float | None = None) -> dict:
    groups = [{"id": "a", "kind": "task", "count": count, "state": "sleep", "blocked_min_s": 0.0,
               "blocked_max_s": 1.0, "stack": [], "created_by": []}]
    if extra_group:
        groups.append(dict(groups[0], id="b", count=1))
    loops = [{"id": 1, "thread_name": "MainThread", "stalls": [] if stall_at is None else
              [{"at": stall_at, "duration_ms": 150.0, "stack": []}]}]
    return {"time": t, "totals": {"tasks": count, "threads": 1}, "memory": {"rss_bytes": 1}, "loops": loops,
            "groups": groups}


def test_rewind_forgets_the_later_samples():
    model, first, second = Model(), snap(10.0, 1), snap(11.0, 2)
    for summary in (first, second, snap(12.0, 5, extra_group=True, stall_at=11.5)):
        model.update(summary)
    assert len(model.samples) == 3 and "b" in model.counts and model.stalls
    model.rewind(second)
    assert [s.t for s in model.samples] == [10.0, 11.0]
    assert list(model.counts["a"]) == [(10.0, 1), (11.0, 2)] and "b" not in model.counts
    assert model.stalls == [] and model.summary is second
    model.update(snap(12.0, 3))  # and goes on from there as if live
    assert list(model.counts["a"])[-1] == (12.0, 3) and len(model.samples) == 3
