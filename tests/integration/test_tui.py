"""The live TUI against real probed processes, driven with keys through Textual's Pilot.

One target process serves most tests (it is only read from); the tests that make a target exit
start their own.  The target has 7 tasks on ``Queue.get`` created by ``start_consumers``, 3
sleeping, a task awaiting another, a thread holding a lock and one waiting for it, and one
deliberate event-loop stall in ``crunch_numbers``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from textual.widgets import DataTable, Static

from conftest import Target, target_env, wait_until
from tasktop.tui.app import TasktopApp
from tasktop.client.probe_client import ProbeError, ProbeUnavailable
from tasktop.client.connection import Connection
from tasktop.tui.screens.group_detail import GroupScreen
from tasktop.tui.screens.help import KEYS as HELP_KEYS, HelpScreen
from tasktop.tui.screens.main import MainScreen
from tasktop.tui.screens.memory import MemoryScreen
from tasktop.tui.screens.picker import PickerScreen
from tasktop.tui.screens.stalls import StallsScreen
from tasktop.tui.screens.task_detail import TaskScreen
from tasktop.tui.screens.thread_detail import ThreadScreen
from tasktop.tui.screens.verdicts import VerdictsScreen
from tasktop.tui.screens.waits import WaitsScreen

pytestmark = pytest.mark.anyio

TARGET = """
import asyncio, threading, time

lock = threading.Lock()
held = threading.Event()

def hold_lock():
    with lock:
        held.set()
        time.sleep(3600)

def wait_for_lock():
    with lock:
        pass

async def consume(queue):
    while True:
        await queue.get()  # parked here until a producer comes, a comment too long for 80 columns

def start_consumers(queue):
    return [asyncio.ensure_future(consume(queue)) for _ in range(7)]

async def nap():
    await asyncio.sleep(3600)

async def child(event):
    await event.wait()

async def parent(event):
    await asyncio.ensure_future(child(event))

def crunch_numbers():
    time.sleep(0.3)  # blocks the event loop: one stall, named by this function

async def main():
    queue, event = asyncio.Queue(), asyncio.Event()
    consumers = start_consumers(queue)
    nappers = [asyncio.ensure_future(nap()) for _ in range(3)]
    boss = asyncio.ensure_future(parent(event))
    threading.Thread(target=hold_lock, name="lock-holder", daemon=True).start()
    held.wait()
    threading.Thread(target=wait_for_lock, name="lock-waiter", daemon=True).start()
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(0.5)
    crunch_numbers()
    await asyncio.sleep(3600)

asyncio.run(main())
"""

TASKS = 13  # main + 7 consumers + 3 nappers + parent + child


@pytest.fixture
def anyio_backend():
    return "asyncio"


def start_target(directory: str, script_dir: str, **env: str) -> Target:
    script = os.path.join(script_dir, "tui_target.py")
    with open(script, "w") as fh:
        fh.write(TARGET)
    proc = subprocess.Popen([sys.executable, script], env=target_env(directory, **env), cwd=script_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = Target(proc, directory, script)
    try:
        target.wait_ready()
        # Settled: every task seen, and the one stall over and recorded.
        wait_until(lambda: (lambda s: s["totals"]["tasks"] == TASKS and s["loops"][0]["stall_count"] >= 1)(
            target.summary()), message="the target to settle")
        return target
    except BaseException:
        target.stop()
        raise


@pytest.fixture(scope="module")
def target():
    """The shared, read-only target (tracemalloc on, for the memory view)."""
    directory = tempfile.mkdtemp(prefix="tt-", dir="/tmp")
    os.chmod(directory, 0o700)
    running = start_target(directory, directory, TASKTOP_TRACEMALLOC="1")
    yield running
    running.stop()
    shutil.rmtree(directory, ignore_errors=True)


# -- helpers ----------------------------------------------------------------------------------
def plain(widget: Static) -> str:
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)


def rows(table: DataTable) -> list[list[str]]:
    return [[getattr(cell, "plain", str(cell)).strip() for cell in table.get_row_at(i)]
            for i in range(table.row_count)]


def column_labels(table: DataTable) -> list[str]:
    return [column.label.plain.strip() for column in table.columns.values()]


async def until(pilot, predicate, message: str = "condition", timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {message}")


async def attached(pilot) -> MainScreen:
    """Wait until the main screen shows data."""
    await until(pilot, lambda: isinstance(pilot.app.screen, MainScreen)
                and pilot.app.screen.session.model.summary is not None, "the first snapshot")
    return pilot.app.screen


def app_for(target: Target, **kwargs) -> TasktopApp:
    return TasktopApp(target.path, interval=kwargs.pop("interval", 0.25), **kwargs)


# -- main view ----------------------------------------------------------------------------------
async def test_attach_shows_the_numbers_of_the_probe_summary(target):
    expected = target.summary()
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        screen = await attached(pilot)
        header = plain(screen.query_one("#header", Static))
        assert expected["totals"]["tasks"] == TASKS and f"tasks {TASKS}" in header
        assert f"pid {target.pid}" in header and "LIVE" in header and "tui_target.py" in header
        assert f"threads {expected['totals']['threads']}" in header
        table = screen.query_one("#groups", DataTable)
        await until(pilot, lambda: table.row_count == len(expected["groups"]), "one row per group")
        assert column_labels(table) == ["COUNT", "Δ/MIN", "KIND", "STATE", "BLOCKED", "WHERE"]
        shown = rows(table)
        consumers = next(row for row in shown if row[5].startswith("consume ("))
        assert consumers[0] == "7" and consumers[2] == "task" and consumers[3] == "Queue.get"
        assert consumers[5] == "consume (tui_target.py:18)"
        assert shown[0] == consumers  # sorted by count
        lock_waiter = next(row for row in shown if row[5].startswith("wait_for_lock"))
        assert lock_waiter[2:4] == ["thread", "Lock.acquire"]
        assert "stalls 1" in header and "crunch_numbers (tui_target.py:" in header
        caption = plain(screen.query_one("#caption", Static))
        assert f"{len(expected['groups'])} groups · sort: count" in caption


async def test_filter_sort_and_kind(target):
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        screen = await attached(pilot)
        table = screen.query_one("#groups", DataTable)
        await until(pilot, lambda: table.row_count > 5, "the groups")
        everything = table.row_count

        await pilot.press("slash", *"start_consumers")  # text of the creation site is not the stack
        await until(pilot, lambda: table.row_count == 0, "no group for a creation-only text")
        await pilot.press(*["backspace"] * len("start_consumers"), *"queue.get")
        await until(pilot, lambda: table.row_count == 1, "the filtered group")
        assert rows(table)[0][5].startswith("consume (")
        await pilot.press("enter")  # keeps the filter, back to the table
        assert "filter: queue.get" in plain(screen.query_one("#caption", Static))
        assert screen.focused is table
        await pilot.press("escape")  # clears it
        await until(pilot, lambda: table.row_count == everything, "every group again")

        await pilot.press("s")
        assert "sort: growth" in plain(screen.query_one("#caption", Static))
        await pilot.press("s")
        assert "sort: blocked" in plain(screen.query_one("#caption", Static))
        model = screen.session.model
        assert [r.id for r in model.rows(sort="blocked")][:1] == [table.id_at(0)]
        await pilot.press("s")
        assert "sort: count" in plain(screen.query_one("#caption", Static))

        await pilot.press("t")
        await until(pilot, lambda: {row[2] for row in rows(table)} == {"task"}, "tasks only")
        assert "tasks only" in plain(screen.query_one("#caption", Static))
        await pilot.press("t")
        await until(pilot, lambda: {row[2] for row in rows(table)} == {"thread"}, "threads only")
        await pilot.press("t")
        await until(pilot, lambda: {row[2] for row in rows(table)} == {"task", "thread"}, "both")


async def test_baseline_pause_and_interval(target):
    async with app_for(target, interval=1.0).run_test(size=(80, 24)) as pilot:
        screen = await attached(pilot)
        table = screen.query_one("#groups", DataTable)
        await pilot.press("b")
        assert screen.session.model.baseline is not None
        assert column_labels(table)[1] == "Δ BASE"
        assert "change since baseline" in plain(screen.query_one("#caption", Static))
        await until(pilot, lambda: rows(table) and rows(table)[0][1] == "0", "no change against the baseline")
        assert "vs base" in plain(screen.query_one("#history-tasks Static", Static))
        await pilot.press("B")
        assert screen.session.model.baseline is None and column_labels(table)[1] == "Δ/MIN"

        await pilot.press("p")
        assert "PAUSED" in plain(screen.query_one("#header", Static)) and pilot.app.watcher.paused
        await pilot.press("p")
        assert "LIVE" in plain(screen.query_one("#header", Static)) and not pilot.app.watcher.paused
        await pilot.press("plus")
        assert screen.session.interval == 2.0 and pilot.app.watcher.interval == 2.0
        assert "every 2s" in plain(screen.query_one("#header", Static))
        await pilot.press("minus", "minus")
        assert screen.session.interval == 0.5


# -- drilling down ----------------------------------------------------------------------------------
async def test_group_then_task_then_back(target):
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        await attached(pilot)
        await pilot.press("slash", *"consume", "enter", "enter")
        group = await until(pilot, lambda: isinstance(pilot.app.screen, GroupScreen) and pilot.app.screen,
                            "the group view")
        await until(pilot, lambda: group.data is not None, "the group reply")
        members = group.query_one("#members", DataTable)
        assert members.row_count == 7
        assert column_labels(members) == ["ID", "NAME", "BLOCKED", "CREATED BY", "IN TASK"]
        assert all(row[3].startswith("start_consumers") for row in rows(members))
        body = plain(group.query_one("#group-stack", Static))
        assert "await queue.get()" in body  # the source line of the user's frame
        # Cropped to the listing's width, not wrapped onto a line of its own.
        stack = group.query_one("#group-stack", Static)
        source = await until(pilot, lambda: [line for line in plain(stack).splitlines()
                                             if "await queue.get()" in line and line.endswith("…")],
                             "the long source line cropped")
        assert len(source[0]) <= stack.content_region.width
        assert "▶ consume" in body and "Queue.get" in body
        assert "7×" in body and "start_consumers" in body  # creation site and its count
        assert "tasks 1–7 of 7" in plain(group.query_one("#page", Static))
        status = plain(group.query_one("#status", Static))
        assert "7 tasks · Queue.get · consume (tui_target.py:18)" in status

        first = rows(members)[0][0]
        await pilot.press("enter")
        task = await until(pilot, lambda: isinstance(pilot.app.screen, TaskScreen) and pilot.app.screen,
                           "the task view")
        await until(pilot, lambda: task.data is not None, "the task reply")
        assert f"Task {first}" in plain(task.query_one("#status", Static))
        assert "Queue.get" in plain(task.query_one("#status", Static))
        body = plain(task.query_one("#task-body", Static))
        assert "Stack (innermost first)" in body and "await queue.get()" in body
        assert "Created by" in body and "start_consumers" in body
        related = rows(task.query_one("#related", DataTable))
        assert related and related[0][0] == "created in"  # the main task created it

        await pilot.press("escape")
        assert pilot.app.screen is group
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)


async def test_awaiter_chain_navigation(target):
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        await attached(pilot)
        await pilot.press("slash", *"parent", "enter", "enter")
        group = await until(pilot, lambda: isinstance(pilot.app.screen, GroupScreen) and pilot.app.screen,
                            "the group view")
        await until(pilot, lambda: group.data is not None, "the group reply")
        await pilot.press("enter")
        boss = await until(pilot, lambda: isinstance(pilot.app.screen, TaskScreen) and pilot.app.screen,
                           "the parent task")
        await until(pilot, lambda: boss.data is not None, "the task reply")
        assert "await task" in plain(boss.query_one("#status", Static))
        related = rows(boss.query_one("#related", DataTable))
        assert related[0][0] == "waits on" and related[0][2] == "Event.wait"
        assert related[0][3].startswith("Event.wait") or related[0][3].startswith("child")

        await pilot.press("enter")  # follow the chain
        child = await until(pilot, lambda: pilot.app.screen is not boss and isinstance(pilot.app.screen, TaskScreen)
                            and pilot.app.screen, "the awaited task")
        await until(pilot, lambda: child.data is not None, "the child's reply")
        assert "Event.wait" in plain(child.query_one("#status", Static))
        back = rows(child.query_one("#related", DataTable))
        assert [row[0] for row in back] == ["awaited by", "created in"]
        assert back[0][1] == f"#{boss.task_id} {boss.data['name']}"
        await pilot.press("escape")
        assert pilot.app.screen is boss


async def test_thread_group_and_thread_view(target):
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        await attached(pilot)
        await pilot.press("t", "t", "slash", *"wait_for_lock", "enter", "enter")
        group = await until(pilot, lambda: isinstance(pilot.app.screen, GroupScreen) and pilot.app.screen,
                            "the thread group")
        await until(pilot, lambda: group.data is not None, "the group reply")
        members = rows(group.query_one("#members", DataTable))
        assert len(members) == 1 and members[0][0] == "lock-waiter"
        await pilot.press("enter")
        thread = await until(pilot, lambda: isinstance(pilot.app.screen, ThreadScreen) and pilot.app.screen,
                             "the thread view")
        await until(pilot, lambda: thread.data is not None, "the thread reply")
        body = plain(thread.query_one("#thread-body", Static))
        assert "lock-waiter" in body and "Lock.acquire" in body
        assert "kernel" in body and "CPU time" in body
        assert "with lock:" in body  # source of the waiting frame
        await pilot.press("escape", "escape")
        assert isinstance(pilot.app.screen, MainScreen)


# -- other views ------------------------------------------------------------------------------------
async def test_stalls_view_names_the_blocking_code(target):
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        screen = await attached(pilot)
        await until(pilot, lambda: screen.session.model.stalls, "the stall")
        await pilot.press("l")
        assert isinstance(pilot.app.screen, StallsScreen)
        table = pilot.app.screen.query_one("#stalls", DataTable)
        shown = rows(table)
        assert len(shown) == 1 and shown[0][4].startswith("crunch_numbers")
        assert shown[0][2] == "1 (MainThread)"
        stack = plain(pilot.app.screen.query_one("#stall-stack", Static))
        assert "▶ crunch_numbers" in stack and "time.sleep(0.3)" in stack
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)


async def test_memory_view(target):
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        await attached(pilot)
        await pilot.press("m")
        memory = pilot.app.screen
        assert isinstance(memory, MemoryScreen)
        await until(pilot, lambda: memory.data is not None, "the memory reply")
        summary = plain(memory.query_one("#memory-summary", Static))
        assert "gc pending" in summary and "tracemalloc on" in summary
        assert "RSS" in plain(memory.query_one("#rss-label", Static))
        sites = memory.query_one("#sites", DataTable)
        assert sites.row_count > 0 and column_labels(sites)[:2] == ["SIZE", "GROWTH"]
        assert "tasks 13" in plain(memory.query_one("#tasks-label", Static))
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)


async def test_help_lists_the_keys(target):
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        await attached(pilot)
        await pilot.press("question_mark")
        assert isinstance(pilot.app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)


async def test_export_writes_text_and_json(target, tmp_path):
    async with app_for(target, export_dir=str(tmp_path)).run_test(size=(80, 24)) as pilot:
        await attached(pilot)
        await pilot.press("e")
        await until(pilot, lambda: pilot.app.exports, "the export")
    text_path, json_path = pilot.app.exports[0]
    assert os.path.dirname(text_path) == str(tmp_path)
    assert os.path.basename(text_path).startswith(f"tasktop-{target.pid}-") and text_path.endswith(".txt")
    assert json_path == text_path[:-4] + ".json"
    document = json.loads(open(json_path).read())
    assert document["schema"] == 1 and document["process"]["pid"] == target.pid
    assert len(document["tasks"]) == TASKS  # the full snapshot, every task
    text = open(text_path).read()
    assert "Queue.get" in text and "consume" in text


# -- leak verdicts ------------------------------------------------------------------------------------
LEAK_TARGET = """
import asyncio

KEEP = []

async def consume(q):
    await q.get()

async def orphan_consumers():
    q = asyncio.Queue()  # nobody else will ever see this queue
    await asyncio.gather(*(consume(q) for _ in range(3)))

async def nap():
    await asyncio.sleep(3600)

async def main():
    KEEP.append(asyncio.ensure_future(orphan_consumers()))
    KEEP.extend(asyncio.ensure_future(nap()) for _ in range(2))
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""

QUIET_TARGET = """
import asyncio

async def nap():
    await asyncio.sleep(3600)

async def main():
    naps = [asyncio.ensure_future(nap()) for _ in range(3)]
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


class GatedConnection(Connection):
    """A real connection whose ``verdicts`` waits until the test opens the gate (so "checking…"
    can be seen for sure), and counts how often it is asked."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        super().__init__(path, timeout)
        self.gate = threading.Event()
        self.calls = 0

    def verdicts(self, budget_s: float = 2.0) -> dict:
        self.calls += 1
        if not self.gate.wait(30):
            raise ProbeUnavailable("the test never opened the gate")
        return super().verdicts(budget_s)


class OldProbeConnection(Connection):
    def verdicts(self, budget_s: float = 2.0) -> dict:
        raise ProbeError("unknown request 'verdicts'")


async def test_leak_verdicts_prove_a_leak_and_open_its_group(spawn):
    target = spawn(LEAK_TARGET)
    app = app_for(target, connection_factory=GatedConnection)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await attached(pilot)
        connection = main.session.connection
        assert "v leak verdicts" in plain(main.query_one("#caption", Static))  # the footer is full
        assert connection.calls == 0  # never asked for by the watcher
        await pilot.press("v")
        screen = await until(pilot, lambda: isinstance(pilot.app.screen, VerdictsScreen) and pilot.app.screen,
                             "the verdicts screen")
        caption = screen.query_one("#verdicts-caption", Static)
        assert plain(caption) == "checking… (proving leaks, up to 2 s)"
        await until(pilot, lambda: connection.calls == 1, "the request on its worker")
        # The probe is still working: the keys answer, and r does not pile a second proof on it.
        await pilot.press("question_mark")
        assert isinstance(pilot.app.screen, HelpScreen)
        await pilot.press("escape", "r")
        assert pilot.app.screen is screen and screen._asked == 1
        assert "checking…" in plain(caption)

        connection.gate.set()
        table = screen.query_one("#verdicts", DataTable)
        await until(pilot, lambda: any(r[0] == "PROVEN LEAK" and r[3].startswith("consume (") for r in rows(table)),
                    "the proven leak")
        shown = rows(table)
        assert column_labels(table) == ["VERDICT", "COUNT", "STATE", "WHERE"]
        consume = next(r for r in shown if r[3].startswith("consume ("))
        assert consume == ["PROVEN LEAK", "3 tasks", "Queue.get", f"consume ({os.path.basename(target.script)}:7)"]
        gathering = next(r for r in shown if r[3].startswith("orphan_consumers ("))
        assert gathering[:3] == ["PROVEN LEAK", "1 task", "gather"]
        assert not any(r[3].startswith("nap (") for r in shown)  # asleep: it wakes by itself
        assert "proven leaks" in plain(caption) and "checking" not in plain(caption)
        assert "checked" in plain(screen.query_one("#status", Static))

        await pilot.press(*["down"] * shown.index(consume))
        body = plain(screen.query_one("#verdict-body", Static))
        assert body.startswith("PROVEN LEAK  3 tasks · Queue.get · consume (")
        assert "the queue is referenced only by the 3 tasks waiting on it" in body
        gid = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value.split(":", 1)[1]

        await pilot.press("enter")
        group = await until(pilot, lambda: isinstance(pilot.app.screen, GroupScreen) and pilot.app.screen,
                            "the group view")
        await until(pilot, lambda: group.data is not None, "the group reply")
        assert group.group["id"] == gid and group.query_one("#members", DataTable).row_count == 3
        assert "3 tasks · Queue.get · consume (" in plain(group.query_one("#status", Static))
        await pilot.press("escape")
        assert pilot.app.screen is screen
        assert screen._asked == 1 and not screen._loading  # coming back is no reason for a heap walk

        connection.gate.clear()
        await pilot.press("r")
        assert "checking…" in plain(caption)
        assert any(r[3].startswith("consume (") for r in rows(table))  # the last verdicts stay meanwhile
        connection.gate.set()
        await until(pilot, lambda: connection.calls == 2 and not screen._loading, "the second check")
        assert any(r[3].startswith("consume (") for r in rows(table))

        connection.gate.clear()
        await pilot.press("v")  # v again, on the verdicts: checks again, opens nothing
        assert pilot.app.screen is screen and "checking…" in plain(caption)
        connection.gate.set()
        await until(pilot, lambda: connection.calls == 3 and not screen._loading, "the third check")

        await pilot.press("escape")
        assert pilot.app.screen is main
        assert main.session.model.is_proven(gid)
        assert [r.proven for r in main.session.model.rows() if r.id == gid] == [True]


async def test_leak_verdicts_none(spawn):
    target = spawn(QUIET_TARGET)
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        await attached(pilot)
        await pilot.press("v")
        screen = await until(pilot, lambda: isinstance(pilot.app.screen, VerdictsScreen) and pilot.app.screen,
                             "the verdicts screen")
        await until(pilot, lambda: screen.data is not None, "the verdicts reply")
        assert screen.data["verdicts"] == []
        assert screen.query_one("#verdicts", DataTable).row_count == 0
        assert plain(screen.query_one("#verdicts-caption", Static)).startswith("No leak verdicts")
        body = plain(screen.query_one("#verdict-body", Static))
        assert body.startswith("No leak verdicts: no group is proven unreachable, growing or stuck.")
        assert "growth needs at least 20 s" in body  # the target is younger than that
        await pilot.press("enter")  # nothing to open
        assert pilot.app.screen is screen
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)


async def test_leak_verdicts_from_a_probe_without_them(target):
    async with app_for(target, connection_factory=OldProbeConnection).run_test(size=(80, 24)) as pilot:
        await attached(pilot)
        await pilot.press("v")
        screen = await until(pilot, lambda: isinstance(pilot.app.screen, VerdictsScreen) and pilot.app.screen,
                             "the verdicts screen")
        await until(pilot, lambda: screen.error, "the failed request")
        status = plain(screen.query_one("#status", Static))
        assert "CHECK FAILED" in status and "unknown request 'verdicts'" in status
        assert "could not give verdicts" in plain(screen.query_one("#verdict-body", Static))
        assert "LIVE" in status  # the attachment itself is fine
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)


# -- connection state --------------------------------------------------------------------------------
async def test_target_exit_keeps_the_data_and_says_so(sockdir, tmp_path):
    target = start_target(sockdir, str(tmp_path))
    try:
        async with app_for(target, export_dir=str(tmp_path / "out")).run_test(size=(80, 24)) as pilot:
            screen = await attached(pilot)
            table = screen.query_one("#groups", DataTable)
            await until(pilot, lambda: table.row_count > 5, "the groups")
            before = table.row_count
            target.stop()
            await until(pilot, lambda: "PROCESS EXITED" in plain(screen.query_one("#header", Static)),
                        "the exit to show")
            assert table.row_count == before  # the last data stays
            assert f"tasks {TASKS}" in plain(screen.query_one("#header", Static))
            banner = screen.query_one("#banner", Static)
            assert banner.display and f"Process {target.pid} exited" in plain(banner)
            # Export still works, from the last summary.
            await pilot.press("e")
            await until(pilot, lambda: pilot.app.exports, "the export of the last data")
            document = json.loads(open(pilot.app.exports[0][1]).read())
            assert document["process"]["pid"] == target.pid and document["totals"]["tasks"] == TASKS
            # Detail views still open on the last data, and say the probe is gone.
            await pilot.press("enter")
            group = await until(pilot, lambda: isinstance(pilot.app.screen, GroupScreen) and pilot.app.screen,
                                "the group view")
            await until(pilot, lambda: group.error, "the failed request")
            assert "PROCESS EXITED" in plain(group.query_one("#status", Static))
    finally:
        target.stop()


async def test_no_probe_says_how_to_enable_it(tmp_path):
    app = TasktopApp(str(tmp_path / "nothing.sock"), interval=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await until(pilot, lambda: isinstance(pilot.app.screen, MainScreen) and pilot.app.screen,
                             "the main screen")
        banner = screen.query_one("#banner", Static)
        await until(pilot, lambda: "TASKTOP=1 python app.py" in plain(banner), "the hint")
        assert "tasktop run -- CMD" in plain(banner) and "nothing.sock" in plain(banner)
        assert "NOT ANSWERING" in plain(screen.query_one("#header", Static))


class ClosingConnection(Connection):
    """A real connection that says when the live loop lets go of it."""

    closed = threading.Event()

    def close(self) -> None:
        super().close()
        ClosingConnection.closed.set()


async def test_picker_lists_probes_and_attaches(target):
    ClosingConnection.closed.clear()
    app = TasktopApp(None, interval=0.25, socket_dir=target.directory, connection_factory=ClosingConnection,
                     finder=lambda: [])
    async with app.run_test(size=(80, 24)) as pilot:
        picker = await until(pilot, lambda: isinstance(pilot.app.screen, PickerScreen) and pilot.app.screen,
                             "the picker")
        table = picker.query_one("#probes", DataTable)
        await until(pilot, lambda: table.row_count == 1, "the probe in the list")
        pid, status, command, tasks, threads = rows(table)[0][:5]
        assert status == "live"
        assert (pid, command, tasks) == (str(target.pid), "tui_target.py", str(TASKS))
        await pilot.press("enter")
        screen = await attached(pilot)
        assert f"pid {target.pid}" in plain(screen.query_one("#header", Static))
        await pilot.press("escape")  # back to the picker
        assert pilot.app.screen is picker
        assert pilot.app.watcher is None and pilot.app.session is None
        await until(pilot, ClosingConnection.closed.is_set, "the live loop to stop and close its connection")


async def test_picker_without_probes_says_how_to_start_one(sockdir):
    app = TasktopApp(None, socket_dir=sockdir, finder=lambda: [])
    async with app.run_test(size=(80, 24)) as pilot:
        picker = await until(pilot, lambda: isinstance(pilot.app.screen, PickerScreen) and pilot.app.screen,
                             "the picker")
        empty = picker.query_one("#picker-empty", Static)
        await until(pilot, lambda: "No process with the probe on" in plain(empty), "the empty list")
        assert "TASKTOP=1 python app.py" in plain(empty)


# -- waits, lifetimes, how a task ended ---------------------------------------------------------
ENDS_TARGET = """
import asyncio, sys

async def consume(queue):
    await queue.get()

async def short():
    await asyncio.sleep(0.05)
    raise KeyError("gone")

async def main():
    queue = asyncio.Queue()
    for i in range(3):
        queue.put_nowait(i)
    empty = asyncio.Queue()
    consumers = [asyncio.ensure_future(consume(empty)) for _ in range(4)]
    doomed = asyncio.ensure_future(short())
    print("ready", doomed.get_name(), flush=True)
    try:
        await doomed
    except KeyError:
        pass
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_waits_view_group_lifetimes_and_a_gone_task(spawn):
    target = spawn(ENDS_TARGET)
    gone = wait_until(lambda: next((e["id"] for r in target.request("ends")["rings"] for e in r["recent"]
                                    if e["outcome"] == "raised"), None), message="the short task's end")
    async with app_for(target).run_test(size=(80, 24)) as pilot:
        await attached(pilot)
        await pilot.press("w")
        waits = await until(pilot, lambda: isinstance(pilot.app.screen, WaitsScreen) and pilot.app.screen,
                            "the waits view")
        await until(pilot, lambda: waits.data is not None, "the waits reply")
        table = waits.query_one("#waits", DataTable)
        assert column_labels(table) == ["WAITERS", "WHAT", "NOW", "MOVED", "WHERE"]
        first = rows(table)[0]
        assert first[:3] == ["4", "asyncio.Queue", "0 items"] and first[4].startswith("consume (")
        assert "4 getters" in plain(waits.query_one("#wait-body", Static))
        await pilot.press("enter")
        group = await until(pilot, lambda: isinstance(pilot.app.screen, GroupScreen) and pilot.app.screen,
                            "the waiters' group")
        await until(pilot, lambda: group.data is not None, "the group reply")
        body = plain(group.query_one("#group-stack", Static))
        assert "Lifetimes" in body and "members so far: median" in body and "(of 4)" in body

        pilot.app.push_screen(TaskScreen(pilot.app.session, gone))
        task = await until(pilot, lambda: isinstance(pilot.app.screen, TaskScreen) and pilot.app.screen,
                           "the task view")
        def ended() -> str:
            found = task.query("#status")  # empty until the screen is composed
            text = plain(found.first(Static)) if found else ""
            return text if "How it ended" in text else ""
        status = await until(pilot, ended, "how the task ended")
        assert "raised KeyError after" in status
    keys = {key: what for _section, rows in HELP_KEYS for key, what in rows}
    assert keys["w"].startswith("waits: queues, locks")
