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


def state(model: Model) -> tuple:
    return ({gid: list(points) for gid, points in model.counts.items()}, list(model.samples), model.stalls,
            model.summary, model.rows(), model.rows(sort="growth"))


def test_a_copy_goes_on_on_its_own():
    """A copy (a replay going back to a moment it built a model for) is fed, rewound and given
    a baseline without changing the model it was made from, and reads as one fed straight."""
    model, straight = Model(), Model()
    for t in range(10, 30):
        for m in (model, straight):
            m.update(snap(float(t), t // 2, extra_group=t > 20, stall_at=15.5 if t >= 16 else None))
    before = state(model)
    copy = model.copy()
    assert state(copy) == before
    for t in range(30, 40):
        copy.update(snap(float(t), t, stall_at=35.5 if t >= 36 else None))
        straight.update(snap(float(t), t, stall_at=35.5 if t >= 36 else None))
    copy.rewind(snap(37.0, 37, stall_at=35.5))
    straight.rewind(snap(37.0, 37, stall_at=35.5))
    copy.set_baseline()
    straight.set_baseline()
    assert state(model) == before and model.baseline is None
    assert state(copy) == state(straight) and list(copy.counts["b"])[-1] == (37.0, 0)
    assert list(model.counts["b"])[-1] == (29.0, 1)
