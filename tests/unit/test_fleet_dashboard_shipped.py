"""The shipped Grafana dashboard: what grafana-foundation-sdk builds from the panel list, with the
panels and the process picker the fleet view needs.  (The command, and the queries against a real
Prometheus, are in integration/.)"""
from __future__ import annotations

import pytest

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
