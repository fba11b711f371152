"""The probe thread's background stays within its CPU budget however many tasks there are: a
sample that costs more waits longer (at a million tasks a sample takes 1.6-1.9 s of CPU, minutes
of budget), and the endings noted meanwhile are drained by the heartbeat, not left to wait for
the next sample."""
from __future__ import annotations

from tasktop.probe.budget import BUDGET, Budget
from tasktop.probe.config import Options
from tasktop.probe.state import State


def test_a_sample_as_costly_as_one_at_a_million_tasks_waits_as_long_as_the_budget_needs():
    budget = Budget(1.0)
    budget.sampled(100.0, 0.0, 1.8)
    assert budget.interval >= 1.8 / BUDGET  # 200 s: 60 s at most once made it 3 % of a core


def test_a_cheap_sample_comes_at_the_interval_asked_for():
    budget = Budget(1.0)
    budget.sampled(100.0, 0.0, 0.001)
    assert budget.interval == 1.0


def test_the_heartbeat_drains_the_endings_every_second_between_samples():
    state = State(Options(), None)
    drains: list = []
    state.ends.drain = lambda: drains.append(now)  # the end history's own drain is its tests'
    for now in (1000.0, 1000.05, 1000.5, 1000.99, 1001.0, 1001.2, 1002.5):
        state.heartbeat(now)
    assert drains == [1000.0, 1001.0, 1002.5]
