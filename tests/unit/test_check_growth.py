"""``tasktop check``'s growth rule over summaries made by hand.  (``check`` against real targets
is in integration/test_check.py.)"""
from __future__ import annotations


def test_growth_against_a_truncated_summary():
    """The summary lists only the largest groups: a group missing from the first one had at most
    as many members as the smallest listed, so its growth is not overstated."""
    from tasktop.render import check

    frame = [{"func": "f", "file": "/app/a.py", "line": 1}]
    first = {"time": 100.0, "totals": {"tasks": 30, "groups": 3},
             "groups": [{"id": "a", "count": 20, "state": "sleep", "stack": frame},
                        {"id": "b", "count": 8, "state": "sleep", "stack": frame}]}
    last = {"time": 110.0, "totals": {"tasks": 40, "groups": 3},
            "groups": [{"id": "a", "count": 20, "state": "sleep", "stack": frame},
                       {"id": "c", "count": 12, "state": "Queue.get", "stack": frame},
                       {"id": "b", "count": 8, "state": "sleep", "stack": frame}]}
    verdicts = check.evaluate(check.Limits(growth=20.0, window=10), last, first)
    assert [v.line for v in verdicts] == [
        "FAIL growth: tasks grew 60/min > 20/min (30 -> 40 in 10s)",
        "FAIL growth: group c (f (a.py:1), Queue.get) grew 24/min > 20/min (8 -> 12 in 10s)",
    ]
    assert check.status(verdicts) == 1
