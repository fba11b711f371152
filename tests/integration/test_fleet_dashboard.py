"""``tasktop dashboard``: the shipped dashboard is what grafana-foundation-sdk builds from the
panel list, it has the panels and the process picker the fleet view needs, and the command prints
or writes it.  (Its queries run against a real Prometheus in test_fleet_prometheus.py.)"""
from __future__ import annotations

import json

import pytest

from conftest import tasktop
from tasktop.fleet import dashboard


def test_shipped_copy_is_what_the_sdk_builds():
    pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk needs Python 3.11+")
    assert dashboard.to_json(dashboard.build()) == dashboard.to_json(dashboard.shipped()), \
        "the shipped dashboard is stale: python -m tasktop.fleet.dashboard > fleet/tasktop-dashboard.json"


def test_panels_and_process_picker():
    board = dashboard.shipped()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    picker = variables["command"]
    assert (picker["type"], picker["label"], picker["multi"], picker["includeAll"], picker["allValue"]) == (
        "query", "process", True, True, ".*")
    assert picker["query"] == 'label_values(tasktop_process_up{instance=~"$instance"}, command)'
    titles = [p["title"] for p in board["panels"]]
    for wanted in ("Asyncio tasks by state", "Threads by state", "Largest groups", "Growth per minute",
                   "Longest blocked", "Event-loop lag", "Event-loop stalls", "RSS by process", "Lost tasks"):
        assert wanted in titles
    for title, expr in dashboard.queries(board):
        assert 'instance=~"$instance", command=~"$command"' in expr, title
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    largest = next(p for p in board["panels"] if p["title"] == "Largest groups")
    assert largest["type"] == "table" and all(t["format"] == "table" for t in largest["targets"])


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
