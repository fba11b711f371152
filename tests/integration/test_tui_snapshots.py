"""Snapshot tests of every screen, fed a frozen recording of the demo target.

The recording (``data/tui_recorded.json``, made by ``data/record_tui.py``) holds 12 summaries
one second apart and the detail replies these screens ask for, with pid, clock and paths
pinned.  The app's two boundaries with the outside world are replaced: the watcher (which here
only reports "live"; the summaries go through the same ``SnapshotReceived`` message and model as
live ones) and the connection (which answers detail requests from the recording).  Update the
SVGs after an intended change with ``pytest tests/integration/test_tui_snapshots.py --snapshot-update``.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from tasktop.tui.app import TasktopApp
from tasktop.client.probe_client import ProbeError
from tasktop.client.discovery import ProbeInfo
from tasktop.tui.messages import ConnectionChanged, SnapshotReceived
from tasktop.tui.screens.main import MainScreen

RECORDING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tui_recorded.json")

with open(RECORDING) as _fh:
    DATA = json.load(_fh)


class RecordedConnection:
    """Answers like the probe did when the recording was made."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.pid = 4242

    def process_alive(self) -> bool:
        return True

    def summary(self) -> dict:
        return DATA["summaries"][-1]

    def full(self) -> dict:
        return DATA["summaries"][-1]

    def group(self, group_id: str, offset: int = 0, limit: int = 100) -> dict:
        if group_id not in DATA["groups"]:
            raise ProbeError(f"no group {group_id} (it may have emptied)")
        return DATA["groups"][group_id]

    def task(self, task_id: int) -> dict:
        if str(task_id) not in DATA["tasks"]:
            raise ProbeError(f"no task {task_id} (it may have finished)")
        return DATA["tasks"][str(task_id)]

    def thread(self, ident: int) -> dict:
        if str(ident) not in DATA["threads"]:
            raise ProbeError(f"no thread {ident} (it may have exited)")
        return DATA["threads"][str(ident)]

    def memory(self, top: int = 20) -> dict:
        return DATA["memory"]

    def stalls(self) -> list:
        return []

    def close(self) -> None:
        pass


class RecordedWatcher:
    """The watcher's place: says "live"; the test replays the summaries itself, one by one,
    so that none is dropped as stale."""

    def __init__(self, connection, target, interval: float = 1.0) -> None:
        self.target = target
        self.interval = interval
        self.paused = False

    def start(self) -> None:
        self.target.post_message(ConnectionChanged("live"))

    def stop(self) -> None:
        pass

    def pause(self, paused: bool) -> None:
        self.paused = paused

    def set_interval(self, interval: float) -> None:
        self.interval = interval

    def poll_now(self) -> None:
        pass


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Clock times (the stalls' "AT") render in UTC whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def recorded_app() -> TasktopApp:
    return TasktopApp("/srv/4242.sock", connection_factory=RecordedConnection, watcher_factory=RecordedWatcher)


async def replay(pilot) -> None:
    while not isinstance(pilot.app.screen, MainScreen):
        await pilot.pause()
    screen = pilot.app.screen
    for summary in DATA["summaries"]:
        pilot.app.post_message(SnapshotReceived(summary))  # as the live loop does
        await pilot.pause()
    while len(screen.session.model.samples) < len(DATA["summaries"]):
        await pilot.pause(0.01)
    await pilot.pause()


async def loaded(pilot) -> None:
    """Wait for the detail screen on top to show its reply (fetched on a worker thread)."""
    for _ in range(500):
        if getattr(pilot.app.screen, "data", None) is not None:
            break
        await pilot.pause(0.01)
    await pilot.pause()


def test_main_80x24(snap_compare):
    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=replay)


def test_main_200x60(snap_compare):
    assert snap_compare(recorded_app(), terminal_size=(200, 60), run_before=replay)


def test_group(snap_compare):
    async def run_before(pilot):
        await replay(pilot)
        await pilot.press("enter")  # the first group: the leak
        await loaded(pilot)

    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=run_before)


def test_task_with_awaiter_chain(snap_compare):
    async def run_before(pilot):
        await replay(pilot)
        await pilot.press("slash", *"generate_invoices", "enter", "enter")
        await loaded(pilot)
        await pilot.press("enter")
        await loaded(pilot)

    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=run_before)


def test_thread(snap_compare):
    async def run_before(pilot):
        await replay(pilot)
        await pilot.press("t", "t", "slash", *"write_ledger", "enter", "enter")
        await loaded(pilot)
        await pilot.press("enter")
        await loaded(pilot)

    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=run_before)


def test_stalls(snap_compare):
    async def run_before(pilot):
        await replay(pilot)
        await pilot.press("l")

    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=run_before)


def test_memory(snap_compare):
    async def run_before(pilot):
        await replay(pilot)
        await pilot.press("m")
        await loaded(pilot)

    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=run_before)


def test_help(snap_compare):
    async def run_before(pilot):
        await replay(pilot)
        await pilot.press("question_mark")

    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=run_before)


def test_picker(snap_compare):
    rows = [
        ProbeInfo(pid=4242, path="/run/user/1000/tasktop/4242.sock", command="demo.py --rate 5", python="3.11.7",
                  tasks=129, threads=11, rss=28_600_000, uptime=106.0),
        ProbeInfo(pid=5120, path="/run/user/1000/tasktop/5120.sock", command="uvicorn app:api --port 8000",
                  python="3.12.1", tasks=100_044, threads=3, rss=412_000_000, uptime=86_400.0 * 3 + 3600),
        ProbeInfo(pid=6001, path="/run/user/1000/tasktop/6001.sock", command="worker.py",
                  error="no probe answers at /run/user/1000/tasktop/6001.sock: timed out"),
    ]
    app = TasktopApp(None, socket_dir="/run/user/1000/tasktop", scanner=lambda directory: rows)

    async def run_before(pilot):
        for _ in range(500):
            table = pilot.app.screen.query("#probes")
            if table and table.first().row_count == len(rows):
                break
            await pilot.pause(0.01)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
