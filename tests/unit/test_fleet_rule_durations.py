"""``tasktop rules``' durations, read and written.  (The rules under ``promtool`` are in
integration/test_fleet_rules.py.)"""
from __future__ import annotations

import pytest

from tasktop.fleet import rules


def test_durations():
    assert rules.duration_seconds("1h30m") == 5400
    assert rules.duration_text(5400) == "1h30m"
    assert rules.duration_text(0.5) == "500ms"
    with pytest.raises(ValueError):
        rules.duration_seconds("15 m")
