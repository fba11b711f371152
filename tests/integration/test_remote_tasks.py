"""A CPython 3.14+ process without a probe: ``tasktop dump`` reads its asyncio tasks from outside
(the interpreter's own reader, run by the target's interpreter), groups them like the probe's,
and marks what it cannot know as unknown."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import tasktop

TARGET = r'''
import asyncio, threading

async def consume(q):
    await q.get()

async def sleeper():
    await asyncio.sleep(1000)

async def parent():
    await asyncio.gather(*(asyncio.create_task(sleeper()) for _ in range(2)))

async def main(n, ready):
    q = asyncio.Queue()
    kept = [asyncio.create_task(consume(q)) for _ in range(n)]
    kept.append(asyncio.create_task(parent()))
    await asyncio.sleep(0)  # the parent has made its sleepers
    ready()
    await asyncio.sleep(1000)

started = threading.Event()
threading.Thread(target=lambda: asyncio.run(main(2, started.set)), name="other-loop", daemon=True).start()
started.wait()
asyncio.run(main(3, lambda: print("ready", flush=True)))
'''

MANY = r'''
import asyncio

async def park(event):
    await event.wait()

async def main():
    event = asyncio.Event()
    kept = [asyncio.create_task(park(event)) for _ in range(70_000)]
    await asyncio.sleep(0)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def _python(version: str) -> str:
    """The pyenv interpreter of ``version`` (3.14 or 3.15), or skip."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    versions = os.path.join(root, "versions")
    names = sorted((n for n in os.listdir(versions) if n.startswith(version + ".")) if os.path.isdir(versions) else [],
                   key=lambda n: int(n.split(".")[2]) if n.split(".")[2].isdigit() else -1)
    if not names:
        pytest.skip(f"CPython {version} is not installed")
    return os.path.join(versions, names[-1], "bin", "python")


def _start(tmp_path, python: str, source: str) -> subprocess.Popen:
    script = tmp_path / "target.py"
    script.write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    proc = subprocess.Popen([python, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=str(tmp_path))
    line = proc.stdout.readline()
    assert "ready" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


@pytest.fixture
def started():
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("version", ["3.14", "3.15"])
def test_tasks_of_a_process_without_a_probe_are_read_from_outside(tmp_path, started, version):
    proc = _start(tmp_path, _python(version), TARGET)
    started.append(proc)
    out = tasktop("dump", str(proc.pid), "--json")
    assert out.returncode == 0, out.stderr
    assert "its tasks were read from outside" in out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"] == "remote" and "unknown" in doc["unknown"]
    groups = {(g["kind"], g["state"], g["stack"][-1]["func"] if g["stack"] else None): g
              for g in doc["groups"]}
    # 3.14's reader sees only the main thread's tasks (3 consumers, 2 sleepers, a parent, main).
    every_thread = version != "3.14"
    assert groups[("task", "Queue.get", "consume")]["count"] == (5 if every_thread else 3)
    assert groups[("task", "sleep", "sleeper")]["count"] == (4 if every_thread else 2)
    parents = groups[("task", "await task", "parent")]
    assert parents["count"] == (2 if every_thread else 1)
    assert parents["blocked_max_s"] is None and parents["blocked_min_s"] is None  # not known
    assert doc["totals"]["tasks"] == sum(g["count"] for g in doc["groups"] if g["kind"] == "task")
    assert len(doc["loops"]) == (2 if every_thread else 1)
    assert doc["totals"]["threads"] == 2  # py-spy's
    if not every_thread:
        assert "only the main thread" in doc["unknown"]
        # The thread py-spy sees running a loop whose tasks were not read is named.
        assert "the loops of threads other-loop (" in doc["unknown"]
    # The parent awaits its two sleepers: the awaiter chain is kept, in the probe's shape.
    text = tasktop("dump", str(proc.pid), "--full")
    assert text.returncode == 0, text.stderr
    assert "no probe: tasks read from outside" in text.stdout
    assert "blocked ?" in text.stdout and "awaiting tasks" in text.stdout
    folded = tasktop("dump", str(proc.pid), "--format", "folded")
    assert "task [Queue.get];consume (" in folded.stdout


def test_more_tasks_than_the_reader_walks_is_one_line_and_the_threads(tmp_path, started):
    proc = _start(tmp_path, _python("3.15"), MANY)
    started.append(proc)
    out = tasktop("dump", str(proc.pid))
    assert out.returncode == 0, out.stderr
    assert "more than 65,536 tasks on one thread" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert "threads only, read by py-spy" in out.stdout


@pytest.mark.anyio
async def test_the_live_view_reads_a_process_without_a_probe_from_outside(tmp_path, started):
    """``tasktop PID`` on a 3.15 process without a probe: the live view's source is the outside
    reading, refreshed no faster than ``RemoteSource.INTERVAL``, and the header says so."""
    from textual.widgets import DataTable, Static

    from tasktop.client.remote_tasks import RemoteSource
    from tasktop.tui.app import TasktopApp
    from tasktop.tui.screens.main import MainScreen

    proc = _start(tmp_path, _python("3.15"), TARGET)
    started.append(proc)
    app = TasktopApp(RemoteSource(proc.pid), interval=0.25)
    async with app.run_test(size=(160, 30)) as pilot:
        for _ in range(600):  # a py-spy read and an outside read: a few seconds under load
            screen = pilot.app.screen
            if isinstance(screen, MainScreen) and screen.session.model.summary is not None:
                break
            await pilot.pause(0.05)
        else:
            raise AssertionError("no summary from the outside reading")
        assert screen.session.interval == RemoteSource.INTERVAL  # slower than asked
        header = screen.query_one("#header", Static)
        text = header.content.plain if hasattr(header.content, "plain") else str(header.content)
        assert "no probe: tasks read from outside" in text and "blocked times" in text
        assert "tasks 13" in text  # 2 loops: 5 + 4 and the main task of each, 2 parents
        table = screen.query_one("#groups", DataTable)
        cells = [[getattr(c, "plain", str(c)).strip() for c in table.get_row_at(i)] for i in range(table.row_count)]
        consumers = next(row for row in cells if row[-1].startswith("consume ("))
        assert consumers[0] == "5" and consumers[3] == "Queue.get"
