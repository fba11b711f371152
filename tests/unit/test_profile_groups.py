"""Folded and pprof profiles of a snapshot whose summary lists only the largest groups.  (The
formats of real targets, and pprof read by ``go tool pprof``, are in integration/test_formats.py.)"""
from __future__ import annotations

from tasktop.render import profiles as formats


def test_groups_beyond_the_summary_come_from_the_members():
    """The summary lists only the largest groups; a full snapshot's members complete them."""
    frame = {"func": "f", "file": "/app/a.py", "line": 3}
    data = {
        "totals": {"tasks": 3, "threads": 0, "groups": 2},
        "groups": [{"id": "g1", "kind": "task", "count": 2, "state": "sleep", "blocked_min_s": 1.0,
                    "blocked_max_s": 2.0, "stack": [frame]}],
        "tasks": [{"group": "g1", "state": "sleep", "blocked_s": 1.0, "stack": [frame]},
                  {"group": "g1", "state": "sleep", "blocked_s": 2.0, "stack": [frame]},
                  {"group": "g2", "state": "Queue.get", "blocked_s": 0.5, "stack": [dict(frame, line=9)]}],
    }
    groups = formats.groups_of(data)
    assert [(g["id"], g["count"], g["blocked_total_s"]) for g in groups] == [("g1", 2, 3.0), ("g2", 1, 0.5)]
    assert formats.missing_groups(data, groups) == 0
    assert formats.folded(data).splitlines() == ["task [sleep];f (/app/a.py:3) 2",
                                                 "task [Queue.get];f (/app/a.py:9) 1"]
    samples = list(formats.sample_stacks(formats.read_pprof(formats.pprof(data))))
    assert [(s[1], s[2]["group"]) for s in samples] == [([2, 3000], "g1"), ([1, 500], "g2")]
