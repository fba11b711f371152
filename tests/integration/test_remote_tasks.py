"""A CPython 3.14+ process without a probe: ``tasktop dump`` reads its asyncio tasks from outside
(tasktop's own reader of its memory; the interpreter's reader, run by the target's interpreter,
as the fallback), groups them like the probe's, and marks what it cannot know as unknown."""
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

async def other(event):
    await park(event)

async def main():
    event = asyncio.Event()
    kept = [asyncio.create_task(park(event)) for _ in range(100_000)]
    kept += [asyncio.create_task(other(event)) for _ in range(7)]
    await asyncio.sleep(0)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''

#: Two threads besides the main one, each with its own event loop and tasks of its own.
THREADS = r'''
import asyncio, threading

async def alpha(q):
    await q.get()

async def beta_inner():
    await asyncio.sleep(1000)

async def beta():
    await beta_inner()

async def gamma(event):
    await event.wait()

def loop_thread(coro_fn, n, ready):
    async def run():
        kept = [asyncio.create_task(coro_fn()) for _ in range(n)]
        await asyncio.sleep(0)
        ready()
        await asyncio.sleep(1000)
    asyncio.run(run())

started = []
ids = {}
def spawn(name, coro_fn, n):
    done = threading.Event()
    def ready():
        ids[name] = threading.get_native_id()
        done.set()
    threading.Thread(target=loop_thread, args=(coro_fn, n, ready), name=name, daemon=True).start()
    done.wait()

spawn("alpha-loop", lambda: alpha(asyncio.Queue()), 3)
spawn("beta-loop", beta, 4)
ids["main"] = threading.get_native_id()

async def main():
    event = asyncio.Event()
    kept = [asyncio.create_task(gamma(event)) for _ in range(2)]
    await asyncio.sleep(0)
    print("ready", " ".join(f"{k}={v}" for k, v in ids.items()), flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def _line(source: str, text: str) -> int:
    """The line number of the line of ``source`` that contains ``text``."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


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
    proc.ready_line = line  # type: ignore[attr-defined]
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
    # Both loops: 3 + 2 consumers, 2 + 2 sleepers, a parent and a main task in each.
    assert groups[("task", "Queue.get", "consume")]["count"] == 5
    assert groups[("task", "sleep", "sleeper")]["count"] == 4
    parents = groups[("task", "await task", "parent")]
    assert parents["count"] == 2
    assert parents["blocked_max_s"] is None and parents["blocked_min_s"] is None  # not known
    assert doc["totals"]["tasks"] == sum(g["count"] for g in doc["groups"] if g["kind"] == "task")
    assert len(doc["loops"]) == 2
    assert doc["totals"]["threads"] == 2  # py-spy's
    assert "only the main thread" not in doc["unknown"]
    # The parent awaits its two sleepers: the awaiter chain is kept, in the probe's shape.
    text = tasktop("dump", str(proc.pid), "--full")
    assert text.returncode == 0, text.stderr
    assert "no probe: tasks read from outside by tasktop's reader" in text.stdout
    assert "blocked ?" in text.stdout and "awaiting tasks" in text.stdout
    folded = tasktop("dump", str(proc.pid), "--format", "folded")
    assert "task [Queue.get];consume (" in folded.stdout


@pytest.mark.parametrize("version", ["3.14", "3.15"])
def test_event_loops_of_every_thread_are_read_with_their_stacks(tmp_path, started, version):
    """The interpreter's reader on 3.14 returns only the main thread's tasks; tasktop's reads the
    loops of two other threads too, each task on its own thread's loop, with its stack."""
    proc = _start(tmp_path, _python(version), THREADS)
    started.append(proc)
    tids = {k: int(v) for k, v in (item.split("=") for item in proc.ready_line.split()[1:])}
    out = tasktop("dump", str(proc.pid), "--json", "--full")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    loops = {loop["thread"]: loop["id"] for loop in doc["loops"]}
    assert set(loops) == set(tids.values())
    by_func: dict[str, list[dict]] = {}
    for task in doc["tasks"]:
        if task["stack"]:
            by_func.setdefault(task["stack"][-1]["func"], []).append(task)
    here = lambda func, text: {"file": str(tmp_path / "target.py"), "func": func, "line": _line(THREADS, text)}
    expected = {  # outermost coroutine: (thread, count, the stack's frames of the target itself)
        "alpha": ("alpha-loop", 3, [here("alpha", "await q.get()")]),
        "beta": ("beta-loop", 4, [here("beta_inner", "await asyncio.sleep(1000)"),
                                  here("beta", "await beta_inner()")]),
        "gamma": ("main", 2, [here("gamma", "await event.wait()")]),
    }
    inner = {"alpha": "Queue.get", "beta": "sleep", "gamma": "Event.wait"}
    for func, (thread, count, frames) in expected.items():
        tasks = by_func[func]
        assert len(tasks) == count
        for task in tasks:
            assert task["loop"] == loops[tids[thread]]
            assert task["stack"][0]["func"] == inner[func] and "asyncio" in task["stack"][0]["file"]
            assert task["stack"][1:] == frames
            assert task["state"] == inner[func]
    # Each loop's run() task too: 3 loops, 3 + 4 + 2 tasks and a run/main task each.
    assert doc["totals"]["tasks"] == 12 and doc["totals"]["loops"] == 3
    assert "not read" not in doc["unknown"] and "only the main thread" not in doc["unknown"]


@pytest.mark.parametrize("version", ["3.14", "3.15"])
def test_more_than_65536_tasks_on_one_thread_are_all_read(tmp_path, started, version):
    """The interpreter's reader refuses above 2**16 tasks a thread; tasktop's reads 100,007."""
    proc = _start(tmp_path, _python(version), MANY)
    started.append(proc)
    out = tasktop("dump", str(proc.pid), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["totals"]["tasks"] == 100_008  # and main
    groups = {tuple(f["func"] for f in g["stack"]): g for g in doc["groups"] if g["kind"] == "task"}
    assert groups[("Event.wait", "park")]["count"] == 100_000
    assert groups[("Event.wait", "park", "other")]["count"] == 7
    assert groups[("Event.wait", "park")]["state"] == "Event.wait"
    assert groups[("sleep", "main")]["count"] == 1
    # The interpreter's reader, tasktop's fallback, refuses such a thread: one line that says so.
    from tasktop.client import remote_tasks

    with pytest.raises(remote_tasks.RemoteTasksError, match="^it has more than 65,536 tasks on one thread"):
        remote_tasks.read_by_interpreter(proc.pid)


#: Two loops, each with 20,000 tasks that stay and a churn of short ones coming and going.
CHURN = r'''
import asyncio, random, threading

async def short():
    await asyncio.sleep(random.random() * 0.01)

async def stay(event):
    await event.wait()

async def churn():
    while True:
        kept = [asyncio.create_task(short()) for _ in range(200)]
        await asyncio.sleep(0)

async def main(ready):
    event = asyncio.Event()
    kept = [asyncio.create_task(stay(event)) for _ in range(20_000)]
    kept.append(asyncio.create_task(churn()))
    await asyncio.sleep(0.05)
    ready()
    await asyncio.sleep(1000)

started = threading.Event()
threading.Thread(target=lambda: asyncio.run(main(started.set)), daemon=True).start()
started.wait()
asyncio.run(main(lambda: print("ready", flush=True)))
'''


@pytest.mark.parametrize("version", ["3.14", "3.15"])
def test_task_lists_changing_under_the_read_are_read_whole(tmp_path, started, version):
    """Tasks created and ended thousands of times a second while the lists are walked: a walk
    that goes astray is completed from the list's other end, and every task that stays is read,
    each time, once."""
    from tasktop.client import remote_memory, remote_tasks

    proc = _start(tmp_path, _python(version), CHURN)
    started.append(proc)
    for _ in range(5):
        raw = remote_memory.read_tasks(proc.pid)
        staying = [t for thread in raw["threads"] for t in thread["tasks"]
                   if [raw["frames"][i][1] for i in raw["stacks"][t[2]]] == ["Event.wait", "stay"]]
        assert len(staying) == 40_000
        assert len({t[0] for thread in raw["threads"] for t in thread["tasks"]}) == sum(
            len(thread["tasks"]) for thread in raw["threads"])
        assert len(raw["threads"]) == 2
    changed = dict(raw, lists_changed=1)
    assert "tasks created or ended meanwhile may be missing" in remote_tasks.merge_into({}, changed)["unknown"]


@pytest.mark.parametrize("version", ["3.14", "3.15"])
def test_a_process_that_exits_mid_read_is_one_line(tmp_path, started, version):
    """The target is killed after the reader has begun walking its task lists: one line, from
    the reader and from ``tasktop dump``, never a traceback."""
    from tasktop.client import remote_memory, remote_tasks

    proc = _start(tmp_path, _python(version), MANY)
    started.append(proc)
    reader = remote_memory.TaskReader(proc.pid)
    read_block = reader.mem.raw

    def raw(address: int, size: int) -> bytes:
        if reader.mem.reads == 50:  # well into the list of 100,007 tasks
            proc.kill()
            proc.wait()
        return read_block(address, size)

    reader.mem.raw = raw  # type: ignore[method-assign]
    with pytest.raises(remote_memory.ProcessGone) as exc:
        reader.read()
    assert str(exc.value) == f"process {proc.pid} exited while its tasks were being read"
    assert reader.mem.reads > 50
    with pytest.raises(remote_tasks.RemoteTasksError) as gone:
        remote_tasks.read(proc.pid)
    assert str(gone.value) == f"process {proc.pid} has exited"
    out = tasktop("dump", str(proc.pid))
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_the_interpreter_reader_is_the_fallback_and_names_what_it_misses(tmp_path, started):
    """The interpreter's own reader (used where tasktop's does not know the interpreter) gives
    the same tasks as tasktop's on the main thread; on 3.14 the header then says which threads'
    loops it did not read."""
    from tasktop.client import pyspy, remote_memory, remote_tasks

    proc = _start(tmp_path, _python("3.14"), TARGET)
    started.append(proc)
    theirs = remote_tasks.read_by_interpreter(proc.pid)
    ours = remote_memory.read_tasks(proc.pid)

    def flat(raw: dict) -> dict:
        return {task[0]: (thread["thread"], task[1], [tuple(raw["frames"][i]) for i in raw["stacks"][task[2]]],
                          sorted(a for a, _s in task[3]))
                for thread in raw["threads"] for task in thread["tasks"]}

    theirs_tasks, our_tasks = flat(theirs), flat(ours)
    assert len(theirs_tasks) == 7 and len(our_tasks) == 13  # main thread's only, both threads'
    assert {a: our_tasks[a] for a in theirs_tasks} == theirs_tasks
    data = remote_tasks.merge_into(pyspy.thread_dump(proc.pid), theirs)
    assert "3.14's reader sees only the main thread's tasks" in data["unknown"]
    assert "the loops of threads other-loop (" in data["unknown"]
    assert data["reader"] == "Python 3.14's own reader"


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["3.14", "3.15"])
async def test_the_live_view_reads_a_process_without_a_probe_from_outside(tmp_path, started, version):
    """``tasktop PID`` on a 3.14/3.15 process without a probe: the live view's source is the
    outside reading (every thread's loop), refreshed no faster than ``RemoteSource.INTERVAL``,
    and the header says so."""
    from textual.widgets import DataTable, Static

    from tasktop.client.remote_tasks import RemoteSource
    from tasktop.tui.app import TasktopApp
    from tasktop.tui.screens.main import MainScreen

    proc = _start(tmp_path, _python(version), TARGET)
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

        pilot.app.export_dir = str(tmp_path / "exports")  # ``e``: the export works without a probe too
        await pilot.press("e")
        for _ in range(600):
            if pilot.app.exports:
                break
            await pilot.pause(0.05)
        else:
            raise AssertionError("no export written")
        with open(pilot.app.exports[-1][1]) as fh:
            assert json.load(fh)["totals"]["tasks"] == 13
