"""``tasktop dashboard``: the command prints or writes the shipped dashboard.  (What the shipped
dashboard holds is in unit/test_fleet_dashboard_shipped.py; its queries run against a real
Prometheus in test_fleet_prometheus.py.)"""
from __future__ import annotations

import json

from conftest import tasktop
from tasktop.fleet import dashboard


def test_command_prints_and_writes(tmp_path):
    printed = tasktop("dashboard")
    assert printed.returncode == 0 and printed.stderr == ""
    assert json.loads(printed.stdout) == dashboard.shipped()
    out = tmp_path / "tasktop.json"
    assert tasktop("dashboard", "-o", str(out)).returncode == 0
    assert out.read_text() == printed.stdout


def test_unwritable_output_is_one_line():
    result = tasktop("dashboard", "-o", "/nonexistent/dir/tasktop.json")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "tasktop: error: cannot write /nonexistent/dir/tasktop.json: No such file or directory\n"
