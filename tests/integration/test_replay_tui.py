"""``tasktop replay`` through the real app (App.run_test + Pilot): a recording of a real
leaking target, stepped, jumped, played, and every screen that has its data; and the live
view's record key."""
from __future__ import annotations

import os
import subprocess

import pytest
from textual import events
from textual.widgets import DataTable, Static

from conftest import tasktop, wait_until
from tasktop.client.recorded import open_recording
from tasktop.tui.app import TasktopApp
from tasktop.tui.replay import ReplayScreen
from tasktop.tui.screens.group_detail import GroupScreen
from tasktop.tui.screens.main import MainScreen
from tasktop.tui.screens.memory import MemoryScreen
from tasktop.tui.screens.stalls import StallsScreen
from tasktop.tui.screens.verdicts import VerdictsScreen
from tasktop.wire.recording import Recording

LEAK = """
    import asyncio, time
    async def hang(event):
        await event.wait()
    async def main():
        event, keep = asyncio.Event(), []
        print("ready", flush=True)
        n = 0
        while True:
            keep.append(asyncio.ensure_future(hang(event)))
            n += 1
            if n % 40 == 0:
                time.sleep(0.15)  # a stall of the loop, for the stalls screen
            await asyncio.sleep(0.02)
    asyncio.run(main())
"""


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def recording(spawn, sockdir, tmp_path) -> str:
    target = spawn(LEAK)
    # A stall first: the probe keeps its last ten, so every sample will hold it (on a loaded
    # machine its heartbeats slow to one a second, and a 4 s recording could catch none).
    wait_until(lambda: any(loop.get("stalls") for loop in target.summary()["loops"]), 60,
               message="a stall of the target's loop")
    out = tmp_path / "leak.ttrec"
    done = tasktop("record", str(target.pid), "-o", str(out), "--interval", "0.2", "--duration", "4s",
                   "--verdicts", "1s", "--budget", "0", sockdir=sockdir)
    assert done.returncode == 0, done.stderr
    return str(out)


def plain(widget: Static) -> str:
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)


def hangs(screen) -> int:
    return sum(g["count"] for g in screen.session.model.summary["groups"]
               if any(f["func"] == "hang" for f in g["stack"]))


async def until(pilot, predicate, message="condition", timeout=15.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {message}")


@pytest.mark.anyio
async def test_replay_steps_jumps_plays_and_opens_every_screen(recording):
    rec = open_recording(recording)
    n = len(rec)
    counts = [sum(g["count"] for g in s["groups"] if any(f["func"] == "hang" for f in g["stack"]))
              for s in rec.iter_summaries()]
    app = TasktopApp(replay=(rec, None))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.index >= 0, "the replay")
        screen = app.screen
        header = plain(screen.query_one("#header", Static))
        assert "REPLAY" in header and f"sample {n}/{n}" in header and f"tasks {rec.summary(n - 1)['totals']['tasks']}" in header
        assert "●" in plain(screen.query_one("#timebar", Static))
        assert hangs(screen) == counts[-1]
        await pilot.press("comma")  # one sample back
        assert screen.index == n - 2 and hangs(screen) == counts[-2]
        assert f"sample {n - 1}/{n}" in plain(screen.query_one("#header", Static))
        await pilot.press("full_stop")
        assert screen.index == n - 1
        await pilot.press("g")  # the start
        assert screen.index == 0 and hangs(screen) == counts[0]
        await pilot.press("G")
        assert screen.index == n - 1
        await pilot.press("j")  # jump to a moment: asked for on the time bar's line
        table = screen.query_one("#groups", DataTable)
        assert "jump to:" in plain(screen.query_one("#timebar", Static)) and table.has_focus
        await pilot.press(*"+1x", "backspace", "s")  # every key edits the TIME (s does not sort)
        assert "jump to: +1s" in plain(screen.query_one("#timebar", Static)) and screen.session.sort == "count"
        await pilot.press("enter")
        assert screen.index == rec.index_at(rec.start + 1.0) and screen.jump_text is None
        assert "●" in plain(screen.query_one("#timebar", Static)) and table.has_focus
        await pilot.press("j")
        app.focused.post_message(events.Paste("+2s\nmore"))  # as a terminal pastes: to the focused widget
        await pilot.pause()
        assert screen.jump_text == "+2s"
        await pilot.press("escape", "j", *"nonsense", "enter")
        assert screen.jump_text == "nonsense" and screen.index == rec.index_at(rec.start + 1.0)  # refused, kept
        await pilot.press("escape")
        assert screen.jump_text is None and "●" in plain(screen.query_one("#timebar", Static))
        assert screen.index == rec.index_at(rec.start + 1.0)
        await pilot.press("g", "1")  # play at 1x from the start (the recording lasts 4 s)...
        assert screen.playing and screen.speed == 1
        assert "▶ 1x" in plain(screen.query_one("#timebar", Static))
        await pilot.press("3")  # ...then at 100x: to the end, in order
        assert screen.speed == 100
        await until(pilot, lambda: not screen.playing, "the player to reach the end")
        assert screen.index == n - 1 and hangs(screen) == counts[-1]
        assert len(screen.session.model.samples) == n  # every sample on the way fed the history
        # The screens, on the recorded data
        await pilot.press("l")
        assert isinstance(app.screen, StallsScreen)
        await until(pilot, lambda: app.screen.session.model.stalls, "recorded stalls")
        await pilot.press("escape", "m")
        assert isinstance(app.screen, MemoryScreen)
        await pilot.press("escape", "v")
        assert isinstance(app.screen, VerdictsScreen)
        await until(pilot, lambda: app.screen.session.model.verdicts is not None, "recorded verdicts")
        await pilot.press("escape")
        assert app.screen is screen
        table = screen.query_one("#groups", DataTable)
        table.focus()
        shown = screen.session.model.rows("both", "", "count")
        hang_row = next(i for i, g in enumerate(shown) if any(f["func"] == "hang" for f in g.group["stack"]))
        table.move_cursor(row=hang_row)
        await pilot.press("enter")
        assert isinstance(app.screen, GroupScreen)
        await until(pilot, lambda: getattr(app.screen, "data", None), "the recorded group page")
        page = app.screen.data
        assert page["total"] == shown[hang_row].count and page["items"] and page["recorded_at"] <= rec.end
        assert any(f.get("source") for f in page["group"]["stack"])  # with source lines
        await pilot.press("escape")
        await pilot.press("comma")  # the group screen follows the cursor too
        assert screen.index == n - 2


def model_state(model) -> tuple:
    """What a model shows: its history, stalls, the moment's summary, and the table's rows."""
    return ({gid: list(points) for gid, points in model.counts.items()}, list(model.samples),
            model.stalls, model.summary, model.rows(), model.rows(sort="growth"))


@pytest.mark.anyio
async def test_a_jump_shows_what_stepping_there_shows(tmp_path):
    """A jump (and g, G) reads the samples before the new moment in one pass: the model it
    builds is the one fed every summary of those samples one at a time, as steps feed it, and
    a step back and forward from there gives it again."""
    from tasktop.tui.model import Model
    from tasktop.tui.replay import WARM_S
    from tasktop.wire.recording import Writer

    path = tmp_path / "steps.ttrec"
    with open(path, "wb") as fh:
        writer = Writer(fh.write, {"process": {"pid": 7}, "started": 1000.0}, key_every=40)
        for i in range(400):
            groups = [{"id": f"g{k:02d}", "kind": "task", "state": "Event.wait", "count": 5 + (i // (k + 1) if k < 3 else k),
                       "blocked_min_s": 1.0, "blocked_max_s": float(i), "stack": [{"func": f"h{k}", "file": "/srv/a.py",
                                                                                 "line": k}]}
                      for k in range(20) if not (k == 7 and 150 <= i < 250)]
            loops = [{"id": 1, "lag_ms": 0.5, "stalls": [{"at": 1000.0 + i - i % 30, "duration_ms": 150.0,
                                                          "stack": [{"func": "slow"}]}]}]
            writer.sample({"time": 1000.0 + i, "totals": {"tasks": sum(g["count"] for g in groups), "threads": 1},
                           "memory": {"rss_bytes": 10_000 + i}, "loops": loops, "groups": groups})
    rec = Recording(str(path))
    stepped = Recording(str(path))

    def by_steps(index: int):
        model = Model()
        first = max(rec.index_at(rec.times[index] - WARM_S), 0)
        for i in range(first, index + 1):
            model.update(stepped.summary(i))
        return model_state(model)

    app = TasktopApp(replay=(rec, None))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.index >= 0, "the replay")
        screen = app.screen
        assert model_state(screen.session.model) == by_steps(399)
        for when in ("+200s", "+250s", "+123s", "+200s"):  # the last, a model built before: a copy
            await pilot.press("j", *when, "enter")
            index = screen.index
            assert index == rec.index_at(1000.0 + float(when[1:-1])) and index > 100
            assert model_state(screen.session.model) == by_steps(index), when
            await pilot.press("comma", "full_stop")
            assert screen.index == index and model_state(screen.session.model) == by_steps(index), when
        await pilot.press("g")
        assert model_state(screen.session.model) == by_steps(0)
        await pilot.press("G")
        assert model_state(screen.session.model) == by_steps(399)
        await pilot.press("comma", "comma", "g", "G")  # the end's model, kept as it was built
        assert model_state(screen.session.model) == by_steps(399)


def test_replay_command_refuses_a_bad_file_in_one_line(tmp_path):
    bad = tmp_path / "x.ttrec"
    bad.write_bytes(b"\x00garbage")
    done = tasktop("replay", str(bad))
    assert done.returncode == 1 and done.stderr.strip() == f"tasktop: error: {bad} is not a tasktop recording"


@pytest.mark.anyio
async def test_record_key_records_the_live_session(spawn, tmp_path):
    target = spawn(LEAK)
    app = TasktopApp(target.path, interval=0.2, export_dir=str(tmp_path))
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen) and app.screen.session.model.summary, "live data")
        screen = app.screen
        assert any(b.binding.action == "app.record" and b.binding.show for b in screen.active_bindings.values())
        await pilot.press("R")
        recorder = screen.session.recorder
        assert recorder is not None
        await until(pilot, lambda: recorder.samples >= 4, "four recorded samples")
        assert "● REC" in plain(screen.query_one("#header", Static))
        await pilot.press("v")
        await until(pilot, lambda: screen.session.model.verdicts is not None, "verdicts")
        await pilot.press("escape", "R")
        assert screen.session.recorder is None
        assert "● REC" not in plain(screen.query_one("#header", Static))
    [path] = [p for p in os.listdir(tmp_path) if p.endswith(".ttrec")]
    rec = Recording(str(tmp_path / path))
    assert len(rec) >= 4 and rec.ended == {"reason": "stopped"} and rec.extras.get("verdicts")
    assert rec.head["process"]["pid"] == target.pid


def test_the_replay_keys_are_in_the_help():
    from tasktop.tui.screens.help import KEYS

    documented = " ".join(key for _, keys in KEYS for key, _ in keys).split()
    names = {"question_mark": "?", "slash": "/", "escape": "Esc", "comma": ",", "full_stop": ".", "space": "Space"}
    for binding in ReplayScreen.BINDINGS:
        key = binding.key.split(",")[0]
        assert names.get(key, key) in documented, f"{key} is not in the help"
