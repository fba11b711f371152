"""The TUI's client-side model and formatting, without a terminal: growth, leak suspects,
baseline, filter and sort, stalls gathered across summaries, the user's frame of a stack."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from tasktop.render import export
from tasktop.render import stacks
from tasktop.render import units
from tasktop.client.connection import Connection
from tasktop.client.probe_client import ProbeUnavailable
from tasktop.tui.messages import ConnectionChanged, SnapshotReceived
from tasktop.wire.stacks import UNWALKED_FUNC
from tasktop.tui.model import Model
from tasktop.tui.session import Session
from tasktop.tui.source import SummarySource
from tasktop.tui.watcher import Watcher

QUEUES = "/usr/lib/python3.11/asyncio/queues.py"
THREADING = "/usr/lib/python3.11/threading.py"


def frame(func: str, file: str, line: int) -> dict:
    return {"func": func, "file": file, "line": line}


CONSUMER = [frame("Queue.get", QUEUES, 158), frame("consume", "/srv/app/worker.py", 40)]
LOCKED = [frame("waiter", "/srv/app/locks.py", 10), frame("Thread.run", THREADING, 982)]


def summary(t: float, counts: dict, stalls: list | None = None) -> dict:
    """A summary as the probe sends it, with groups ``{id: count}``."""
    groups = []
    for gid, count in counts.items():
        kind = "thread" if gid.startswith("th") else "task"
        groups.append({"id": gid, "kind": kind, "count": count,
                       "state": "Lock.acquire" if kind == "thread" else "Queue.get",
                       "blocked_min_s": 1.0, "blocked_max_s": float(count),
                       "stack": LOCKED if kind == "thread" else CONSUMER, "created_by": []})
    tasks = sum(c for g, c in counts.items() if not g.startswith("th"))
    threads = sum(c for g, c in counts.items() if g.startswith("th"))
    return {"time": t, "process": {"pid": 1}, "totals": {"tasks": tasks, "threads": threads, "loops": 1,
                                                         "groups": len(groups)},
            "memory": {"rss_bytes": 1000 * tasks}, "groups": groups,
            "loops": [{"id": 1, "thread_name": "MainThread", "lag_ms": 0.5, "stall_count": len(stalls or ()),
                       "stalls": stalls or []}]}


def feed(model: Model, counts_over_time: list[dict], step: float = 1.0, start: float = 1000.0) -> None:
    for number, counts in enumerate(counts_over_time):
        model.update(summary(start + number * step, counts))


# -- user frame and labels ------------------------------------------------------------------
def test_user_frame_skips_stdlib_and_prefers_application_code():
    stack = [frame("Queue.get", QUEUES, 158),
             frame("ClientSession._request", "/venv/lib/python3.12/site-packages/aiohttp/client.py", 500),
             frame("fetch", "/srv/app/fetch.py", 12)]
    assert stacks.where(stack) == "fetch (fetch.py:12)"
    # Only library code: the package frame is the best there is; only stdlib: the innermost.
    assert stacks.where(stack[:2]) == "ClientSession._request (client.py:500)"
    assert stacks.where(stack[:1]) == "Queue.get (queues.py:158)"
    assert stacks.where([]) == "-"
    assert stacks.is_stdlib("/root/.pyenv/versions/3.13.0/lib/python3.13/selectors.py")
    assert stacks.is_stdlib("<frozen importlib._bootstrap>")
    assert not stacks.is_stdlib("/home/me/lib/python3.11/site-packages/x.py")


def test_labels_fit_by_cutting_the_function_name_first():
    assert stacks.func_label("start.<locals>.inner") == "start.inner"
    label = "update_inventory (demo.py:157)"
    assert stacks.fit_label(label, 40) == label
    assert stacks.fit_label(label, 24) == "update_in… (demo.py:157)"
    assert len(stacks.fit_label(label, 24)) == 24
    assert stacks.display_path("/usr/lib/python3.11/asyncio/queues.py") == "asyncio/queues.py"
    assert stacks.display_path("/v/lib/python3.11/site-packages/aiohttp/client.py") == "aiohttp/client.py"
    assert stacks.display_path("/srv/app/worker.py") == "/srv/app/worker.py"


def test_units():
    assert [units.duration(s) for s in (0.42, 12.7, 123, 3725, 200000, None)] == \
        ["0.4s", "12s", "2m03s", "1h02m", "2d07h", "-"]
    assert [units.size(n) for n in (512, 2048, 26_017_792, 3 * 1024 ** 3)] == ["512B", "2.00K", "24.8M", "3.00G"]
    assert [units.signed(v) for v in (12, -3, 0, 2.5, 120.4)] == ["+12", "-3", "0", "+2.5", "+120"]
    assert units.count(100000) == "100,000"


# -- growth and leak suspects ---------------------------------------------------------------
def test_growth_per_minute_over_the_window():
    model = Model()
    feed(model, [{"a": 10 + n, "b": 5} for n in range(11)])  # +1 a second for 10 seconds
    rows = {row.id: row for row in model.rows()}
    assert rows["a"].change == pytest.approx(60.0)
    assert rows["b"].change == 0.0
    assert model.total_change("tasks") == pytest.approx(60.0)
    assert model.history("tasks") == [15.0 + n for n in range(11)]


def test_a_steadily_growing_group_is_a_leak_suspect_and_a_breathing_pool_is_not():
    model = Model()
    pool = [8, 12, 9, 14, 10, 13, 8, 12, 11, 9, 14, 10, 12, 9, 13, 11]
    feed(model, [{"leak": 10 + 2 * n, "pool": pool[n], "flat": 7} for n in range(16)])
    assert model.is_suspect("leak")
    assert not model.is_suspect("pool")
    assert not model.is_suspect("flat")
    rows = {row.id: row for row in model.rows()}
    assert rows["leak"].suspect and not rows["pool"].suspect


def test_a_group_filling_in_while_the_probe_walks_cold_chains_is_not_a_suspect():
    """Summaries with tasks whose await chain the probe had not walked yet (its pseudo-group
    ``(await chain not walked yet)``) show the real groups rising as the chains are walked:
    no growth; once every chain is walked, growth counts again."""
    unwalked = [{"func": UNWALKED_FUNC, "file": "<tasktop>", "line": 0}]
    model = Model()
    for n in range(16):  # the group fills in, the pseudo-group empties
        data = summary(1000.0 + n, {"parked": 100 * n})
        data["groups"].append({"id": "cold", "kind": "task", "count": 1500 - 100 * n, "state": "waiting",
                               "blocked_min_s": 0.0, "blocked_max_s": 0.0, "stack": unwalked, "created_by": []})
        model.update(data)
    feed(model, [{"parked": 1500}] * 3, start=1016.0)
    assert not model.is_suspect("parked")
    feed(model, [{"parked": 1500 + 10 * n} for n in range(16)], start=1019.0)  # then it grows
    assert model.is_suspect("parked")


def test_a_burst_that_settled_is_not_a_suspect_and_short_history_says_nothing():
    model = Model()
    feed(model, [{"burst": 50 if n > 1 else 5} for n in range(16)])
    assert not model.is_suspect("burst")
    short = Model()
    feed(short, [{"leak": 10 + 5 * n} for n in range(5)])  # 4 seconds: too little to judge
    assert not short.is_suspect("leak")


def test_a_new_group_grew_from_zero_and_a_vanished_one_is_forgotten():
    model = Model()
    feed(model, [{"a": 3}, {"a": 3}, {"a": 3, "new": 6}])
    assert list(model.counts["new"]) == [(1001.0, 0), (1002.0, 6)]
    feed(model, [{"a": 3}] * 200, start=1003.0)
    assert "new" not in model.counts
    assert model.rows()[0].id == "a"


def test_histories_keep_the_window_and_the_point_before_it_and_a_rewind_replays_the_same():
    """Each history keeps the points of the last 120 s and the last one before them; a group
    gone long enough is forgotten and comes back as new; stepping back and feeding the same
    summaries again ends where feeding them once did."""
    def counts(n: int) -> dict:
        here = {"a": 5 + n % 7}
        if 50 <= n < 100 or n >= 250:
            here["b"] = 2
        return here

    model = Model()
    feed(model, [counts(n) for n in range(300)], start=0.0)
    assert list(model.counts["a"]) == [(float(n), 5 + n % 7) for n in range(179, 300)]
    assert list(model.counts["b"]) == [(249.0, 0)] + [(float(n), 2) for n in range(250, 300)]
    model = Model()
    feed(model, [counts(n) for n in range(221)], start=0.0)
    assert "b" not in model.counts  # its last count, at 99 s, is out of the window
    model = Model()
    feed(model, [counts(n) for n in range(220)], start=0.0)
    assert list(model.counts["b"])[:2] == [(99.0, 2), (100.0, 0)]

    straight, rewound = Model(), Model()
    feed(straight, [counts(n) for n in range(300)], start=0.0)
    feed(rewound, [counts(n) for n in range(290)], start=0.0)
    rewound.rewind(summary(200.0, counts(200)))
    feed(rewound, [counts(n) for n in range(201, 300)], start=201.0)
    assert rewound.counts == straight.counts and list(rewound.samples) == list(straight.samples)


def test_baseline_makes_changes_and_history_relative():
    model = Model()
    assert model.set_baseline() is None  # nothing to take it from yet
    feed(model, [{"a": 10, "th1": 2}, {"a": 12, "th1": 2}])
    model.set_baseline()
    feed(model, [{"a": 15, "th1": 1, "new": 4}], start=1002.0)
    rows = {row.id: row for row in model.rows()}
    assert (rows["a"].change, rows["th1"].change, rows["new"].change) == (3.0, -1.0, 4.0)
    assert model.history("tasks") == [12.0, 19.0]
    assert model.total_change("tasks") == 7.0
    model.clear_baseline()
    assert len(model.history("tasks")) == 3


def test_the_same_snapshot_twice_adds_no_point():
    model = Model()
    model.update(summary(5.0, {"a": 1}))
    model.update(summary(5.0, {"a": 2}))
    assert len(model.samples) == 1
    assert model.rows()[0].count == 2


# -- filter and sort ------------------------------------------------------------------------
def test_filter_matches_any_text_of_the_stack_and_the_state_and_kind_and_sort():
    model = Model()
    feed(model, [{"a": 3, "b": 9, "th1": 1}, {"a": 8, "b": 9, "th1": 1}])
    assert [r.id for r in model.rows()] == ["b", "a", "th1"]
    assert [r.id for r in model.rows(sort="growth")][0] == "a"
    assert [r.id for r in model.rows(sort="blocked")] == ["b", "a", "th1"]
    assert [r.id for r in model.rows(text="WORKER.py")] == ["b", "a"]
    assert [r.id for r in model.rows(text="lock.acq")] == ["th1"]
    assert [r.id for r in model.rows(text="consume queues.py:158")] == ["b", "a"]
    assert model.rows(text="nothing-like-this") == []
    assert [r.id for r in model.rows(kind="thread")] == ["th1"]
    assert [r.id for r in model.rows(kind="task")] == ["b", "a"]


# -- stalls ---------------------------------------------------------------------------------
def test_stalls_are_gathered_across_summaries_newest_first():
    model = Model()
    one = {"at": 100.0, "duration_ms": 150.0, "stack": CONSUMER}
    two = {"at": 105.0, "duration_ms": 300.0, "stack": LOCKED}
    model.update(summary(101.0, {"a": 1}, [one]))
    model.update(summary(106.0, {"a": 1}, [one, two]))
    model.update(summary(107.0, {"a": 1}, [two]))  # the probe's ring forgot the first one
    assert [s.at for s in model.stalls] == [105.0, 100.0]
    assert model.last_stall().duration_ms == 300.0
    assert model.lag_ms() == 0.5


def test_session_steps_and_cycles():
    session = Session(connection=None, interval=1.0)  # type: ignore[arg-type]
    assert [session.step_interval(1), session.step_interval(1), session.step_interval(-1)] == [2.0, 5.0, 2.0]
    for _ in range(10):
        session.step_interval(-1)
    assert session.interval == 0.25
    assert [session.cycle_sort() for _ in range(3)] == ["growth", "blocked", "count"]
    assert [session.cycle_kind() for _ in range(3)] == ["task", "thread", "both"]


# -- the watcher, against a connection that fails and comes back ------------------------------
class FlakyConnection:
    """Stands in for the socket: answers, goes away (process gone), comes back."""

    path = "/tmp/none.sock"

    def __init__(self) -> None:
        self.replies = [summary(1.0, {"a": 1}), ProbeUnavailable("lost the probe"), summary(3.0, {"a": 2})]
        self.alive = True

    def summary(self) -> dict:
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            self.alive = False
            raise reply
        self.alive = True
        return reply

    def process_alive(self):
        return self.alive

    def close(self) -> None:
        pass


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []
        self.event = threading.Event()

    def post_message(self, message) -> bool:
        self.messages.append(message)
        if len(self.messages) >= 5:
            self.event.set()
        return True


def test_watcher_reports_exit_and_reconnects_at_the_same_socket():
    inbox = Inbox()
    watcher = Watcher(FlakyConnection(), inbox, interval=0.01)  # type: ignore[arg-type]
    watcher.start()
    assert inbox.event.wait(10)
    watcher.stop()
    kinds = [(type(m).__name__, getattr(m, "state", None)) for m in inbox.messages[:5]]
    assert kinds == [("ConnectionChanged", "live"), ("SnapshotReceived", None), ("ConnectionChanged", "exited"),
                     ("ConnectionChanged", "live"), ("SnapshotReceived", None)]
    assert isinstance(inbox.messages[4], SnapshotReceived) and inbox.messages[4].summary["time"] == 3.0
    assert isinstance(inbox.messages[2], ConnectionChanged) and "lost the probe" in inbox.messages[2].reason


def test_the_probe_connection_is_a_summary_source():
    assert isinstance(Connection("/tmp/none.sock"), SummarySource)
    assert isinstance(FlakyConnection(), SummarySource)
    assert not isinstance(object(), SummarySource)


def test_export_names_files_by_pid_and_time_in_the_export_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKTOP_EXPORT_DIR", str(tmp_path))
    data = summary(1000.0, {"a": 2, "th1": 1})
    data.update(schema=1, process={"pid": 77, "argv": ["app.py"], "python": "3.11.7"})
    text_path, json_path = export.write_export(data, when=0.0)
    assert os.path.dirname(text_path) == str(tmp_path)
    assert os.path.basename(text_path) == "tasktop-77-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(0)) + ".txt"
    assert json.loads(open(json_path).read())["process"]["pid"] == 77
    assert "consume" in open(text_path).read()


def test_first_at_is_the_first_point_at_or_after_a_time():
    from tasktop.tui.model import first_at

    times = [3.0, 5.0, 5.5, 8.0, 13.0, 21.0]
    for t in (-1, 3, 4, 5, 5.2, 5.5, 6, 13, 20.9, 21):
        assert first_at(times, t) == next(i for i, at in enumerate(times) if at >= t), t
    assert first_at(times, 99) == len(times) - 1  # none: the last one
    assert first_at([1.0], 5) == 0
