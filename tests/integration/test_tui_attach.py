"""The picker lists Python processes without a probe, marked with what can be done (``readable``
on 3.14+, ``attach``, or why not), and Enter on one asks first, then starts the probe in it and
opens the live view, or (3.14+) opens the read-only live view without running anything in it;
answering no leaves the process alone."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from textual.widgets import DataTable

from tasktop.client import attach, processes
from tasktop.tui.app import TasktopApp
from tasktop.tui.screens.confirm_attach import ATTACH, VIEW, ConfirmAttachScreen
from tasktop.tui.screens.main import MainScreen
from tasktop.tui.screens.picker import PickerScreen
from tasktop.wire import paths
from test_attach import IDLE, ask, need
from test_tui import attached, rows, until

pytestmark = pytest.mark.anyio


def _start_unprobed(tmp_path, exe: str) -> subprocess.Popen:
    script = tmp_path / "unprobed.py"
    script.write_text(IDLE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKTOP", "PYTHON"))}
    proc = subprocess.Popen([exe, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert "ready" in proc.stdout.readline()
    return proc


@pytest.fixture
def unprobed(tmp_path):
    proc = _start_unprobed(tmp_path, sys.executable)
    yield proc
    proc.kill()
    proc.communicate(timeout=10)


@pytest.fixture
def unprobed_314(tmp_path):
    """An idle asyncio process on CPython 3.14 started without the probe (skipped without 3.14)."""
    proc = _start_unprobed(tmp_path, need((3, 14)))
    yield proc
    proc.kill()
    proc.communicate(timeout=10)


async def picker_row(pilot, pid: int) -> tuple[PickerScreen, list]:
    picker = await until(pilot, lambda: isinstance(pilot.app.screen, PickerScreen) and pilot.app.screen, "the picker")
    table = picker.query_one("#probes", DataTable)
    row = await until(pilot, lambda: next((r for r in rows(table) if r[0] == str(pid)), None), "the process's row")
    return picker, row


async def test_enter_on_a_process_without_probe_asks_then_attaches(unprobed, sockdir):
    app = TasktopApp(None, interval=0.25, socket_dir=sockdir, finder=lambda: [processes.describe(unprobed.pid)])
    async with app.run_test(size=(120, 24)) as pilot:
        picker, row = await picker_row(pilot, unprobed.pid)
        assert row[1:3] == ["no probe attach↵", "unprobed.py"]
        await pilot.press("enter")
        question = await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmAttachScreen)
                               and pilot.app.screen, "the question")
        assert question.choices == [ATTACH]  # 3.11: no read-only view
        await pilot.press("n")
        await until(pilot, lambda: pilot.app.screen is picker, "back to the picker")
        assert not os.path.exists(paths.socket_path(unprobed.pid, sockdir))  # left alone
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmAttachScreen), "the question again")
        await pilot.press("y")
        screen = await attached(pilot)
        assert screen.session.model.summary["process"]["pid"] == unprobed.pid
    assert attach.detach(unprobed.pid, directory=sockdir)
    unprobed.kill()
    assert unprobed.communicate(timeout=10)[1] == ""


async def test_a_process_that_cannot_be_attached_to_says_why(sockdir):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        fake = processes.describe(sleeper.pid)
        fake.implementation, fake.version = "CPython", (3, 8)  # what /proc would say of an old Python
        app = TasktopApp(None, socket_dir=sockdir, finder=lambda: [fake])
        async with app.run_test(size=(120, 24)) as pilot:
            picker, row = await picker_row(pilot, sleeper.pid)
            assert row[1] == "no probe no attach"
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert pilot.app.screen is picker
            assert any("the probe needs 3.9 or newer" in str(n.message) for n in pilot.app._notifications)
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_the_readable_mark_is_for_cpython_3_14_and_newer(sockdir):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        fake = processes.describe(sleeper.pid)
        fake.implementation, fake.version = "CPython", (3, 14)
        app = TasktopApp(None, socket_dir=sockdir, finder=lambda: [fake])
        async with app.run_test(size=(120, 24)) as pilot:
            _picker, row = await picker_row(pilot, sleeper.pid)
            assert (row[1], row[-1]) == ("no probe readable attach↵", "3.14")
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_enter_on_a_3_14_process_offers_the_read_only_view_too(unprobed_314, sockdir):
    """On CPython 3.14+ the question offers both: ``v`` opens the live view on the tasks read
    from outside, and nothing is started in the process."""
    proc = unprobed_314
    app = TasktopApp(None, interval=0.25, socket_dir=sockdir, finder=lambda: [processes.describe(proc.pid)])
    async with app.run_test(size=(120, 24)) as pilot:
        picker, row = await picker_row(pilot, proc.pid)
        assert row[1] == "no probe readable attach↵"
        await pilot.press("enter")
        question = await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmAttachScreen)
                               and pilot.app.screen, "the question")
        assert question.choices == [ATTACH, VIEW]
        text = str(question.query_one("#confirm-attach-text").render())
        assert "y attach" in text and "v view read-only" in text and "no code run in it" in text
        await pilot.press("v")
        screen = await until(pilot, lambda: isinstance(pilot.app.screen, MainScreen)
                             and pilot.app.screen.session.model.summary is not None and pilot.app.screen,
                             "the first outside reading", timeout=60)
        summary = screen.session.model.summary
        assert summary["source"] == "remote" and summary["totals"]["tasks"] == 4  # main() and 3 Event.wait
        assert type(screen.session.connection).__name__ == "RemoteSource"
    assert not os.path.exists(paths.socket_path(proc.pid, sockdir))  # nothing started in it
    assert "tasktop" not in ask(proc, "state").split("factory")[0]  # no thread of ours either
    proc.kill()
    assert proc.communicate(timeout=10)[1] == ""


async def test_a_3_14_process_that_refuses_attach_can_still_be_viewed(tmp_path, sockdir):
    """Remote debugging off: no attach, but the question still offers the read-only view, and
    says why it cannot attach."""
    script = tmp_path / "off.py"
    script.write_text(IDLE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKTOP", "PYTHON"))}
    proc = subprocess.Popen([need((3, 14)), "-X", "disable-remote-debug", str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "ready" in proc.stdout.readline()
        app = TasktopApp(None, interval=0.25, socket_dir=sockdir, finder=lambda: [processes.describe(proc.pid)])
        async with app.run_test(size=(120, 24)) as pilot:
            picker, row = await picker_row(pilot, proc.pid)
            assert row[1] == "no probe readable no attach"
            await pilot.press("enter")
            question = await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmAttachScreen)
                                   and pilot.app.screen, "the question")
            assert question.choices == [VIEW]
            assert "Cannot attach: process" in str(question.query_one("#confirm-attach-text").render())
            await pilot.press("y")  # not offered: nothing happens
            await pilot.pause(0.2)
            assert pilot.app.screen is question
            await pilot.press("enter")  # the one choice
            screen = await until(pilot, lambda: isinstance(pilot.app.screen, MainScreen)
                                 and pilot.app.screen.session.model.summary is not None and pilot.app.screen,
                                 "the first outside reading", timeout=60)
            assert screen.session.model.summary["totals"]["tasks"] == 4  # read with remote debugging off
    finally:
        proc.kill()
        proc.communicate(timeout=10)
