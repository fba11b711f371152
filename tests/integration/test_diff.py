"""``tasktop diff`` end to end: two dumps of a real target, taken before and after it leaks five
tasks into a new group and lets two others finish; the TUI's export files; bad files."""
from __future__ import annotations

import json
import os
import signal

import pytest

from conftest import tasktop, wait_until
from tasktop.render import export

TARGET = r'''
import asyncio, signal

async def consume(q):
    await q.get()

async def leak(ev):
    await ev.wait()  # line:leak

async def waiter(ev):
    await ev.wait()

async def main():
    loop = asyncio.get_running_loop()
    q, done, never = asyncio.Queue(), asyncio.Event(), asyncio.Event()
    for _ in range(3):
        asyncio.create_task(consume(q))
    for _ in range(2):
        asyncio.create_task(waiter(done))
    def on_signal():
        done.set()
        for _ in range(5):
            asyncio.create_task(leak(never))
    loop.add_signal_handler(signal.SIGUSR1, on_signal)
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def settled(target) -> dict:
    """A summary once the main task is asleep (just after ``ready`` it may still be running)."""
    def asleep():
        summary = target.summary()
        return summary if any(g["state"] == "sleep" for g in summary["groups"]) else None

    return wait_until(asleep, message="the main task asleep")


@pytest.fixture
def dumps(spawn, sockdir, tmp_path):
    """(target, old.json, new.json): before and after the leak."""
    target = spawn(TARGET)
    settled(target)
    old = tmp_path / "old.json"
    new = tmp_path / "new.json"
    old.write_text(tasktop("dump", str(target.pid), "--json", sockdir=sockdir).stdout)
    os.kill(target.pid, signal.SIGUSR1)
    wait_until(lambda: target.summary()["totals"]["tasks"] == 9, message="the leak")
    new.write_text(tasktop("dump", str(target.pid), "--json", sockdir=sockdir).stdout)
    return target, str(old), str(new)


def test_diff_text(dumps):
    target, old, new = dumps
    out = tasktop("diff", old, new)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"tasktop diff: {old} (pid {target.pid} at ")
    assert f"-> {new} (pid {target.pid} at " in lines[0]
    assert lines[1].split() == ["tasks", "6", "->", "9", "+3"]
    assert lines[2].split() == ["threads", "1", "->", "1", "0"]
    assert lines[3].startswith("RSS ")
    assert lines[4].split() == ["groups", "4", "->", "4", "0"]
    header = lines.index(next(l for l in lines if l.split()[:3] == ["OLD", "NEW", "DELTA"]))
    rows = [l.split() for l in lines[header + 1:]]
    leak_line = next(n for n, l in enumerate(open(target.script), 1) if l.rstrip().endswith("# line:leak"))
    script = os.path.basename(target.script)
    # largest growth first, the new group marked; the vanished group last, marked
    assert rows[0][:3] == ["0", "5", "+5"] and rows[0][4:6] == ["task", "Event.wait"]
    assert " ".join(rows[0][6:]) == f"leak ({script}:{leak_line}) (new)"
    assert rows[-1][:3] == ["2", "0", "-2"] and rows[-1][-1] == "(gone)" and rows[-1][6].startswith("waiter")
    consume = next(r for r in rows if r[5] == "Queue.get")
    assert consume[:3] == ["3", "3", "0"] and consume[-1] != "(new)"


def test_diff_json(dumps):
    _target, old, new = dumps
    out = tasktop("diff", old, new, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["totals"]["tasks"] == {"old": 6, "new": 9, "delta": 3}
    assert result["totals"]["rss_bytes"]["delta"] == result["totals"]["rss_bytes"]["new"] - \
        result["totals"]["rss_bytes"]["old"]
    assert result["elapsed_s"] > 0
    rows = result["groups"]
    assert [r["delta"] for r in rows] == sorted((r["delta"] for r in rows), reverse=True)
    assert (rows[0]["status"], rows[0]["old"], rows[0]["new"]) == ("new", 0, 5)
    assert rows[0]["where"].startswith("leak (") and rows[0]["stack"][0]["func"].endswith("wait")
    assert (rows[-1]["status"], rows[-1]["old"], rows[-1]["new"]) == ("gone", 2, 0)
    # groups are matched by id: the same id on both sides of an unchanged group
    old_ids = {g["id"] for g in json.load(open(old))["groups"]}
    same = [r for r in rows if r["status"] == "same"]
    assert same and all(r["id"] in old_ids for r in same)


def test_diff_accepts_the_tuis_export_files(spawn, sockdir, tmp_path):
    target = spawn(TARGET)
    _text, exported = export.write_export(settled(target), str(tmp_path / "exports"))
    os.kill(target.pid, signal.SIGUSR1)
    wait_until(lambda: target.summary()["totals"]["tasks"] == 9, message="the leak")
    dumped = tmp_path / "now.json"
    dumped.write_text(tasktop("dump", str(target.pid), "--json", "--full", sockdir=sockdir).stdout)
    out = tasktop("diff", exported, str(dumped), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["totals"]["tasks"]["delta"] == 3
    assert result["totals"]["threads"]["delta"] == 0
    # Task groups: a thread's group follows its state at the moment of each snapshot (the loop's
    # thread is "running" while it answers a heartbeat), and the two are two moments.
    assert [(r["old"], r["new"]) for r in result["groups"]
            if r["status"] != "same" and r["kind"] == "task"] == [(0, 5), (2, 0)]


def test_diff_of_a_document_with_itself(dumps):
    _target, old, _new = dumps
    result = json.loads(tasktop("diff", old, old, "--json").stdout)
    assert all(r["delta"] == 0 and r["status"] == "same" for r in result["groups"])
    assert result["totals"]["tasks"]["delta"] == 0


@pytest.mark.parametrize("content,message", [
    (None, "cannot read {path}: No such file or directory"),
    ("not json at all", "{path} is not JSON: "),
    ('{"schema": 2, "groups": []}', "{path} has schema 2; this tasktop reads schema 1"),
    ('[1, 2, 3]', "{path} is not a tasktop document"),
    ('{"schema": 1, "groups": [{"count": 1}]}', "{path} is not a tasktop document (no valid groups list)"),
])
def test_bad_files_are_one_line_errors(dumps, tmp_path, content, message):
    _target, good, _new = dumps
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    for args in ((str(bad), good), (good, str(bad))):
        out = tasktop("diff", *args)
        assert out.returncode == 1 and out.stdout == ""
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tasktop: error: " + message.format(path=bad)), lines


def test_diff_usage_errors():
    out = tasktop("diff", "only-one.json")
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tasktop: error: ") and "NEW.json" in lines[0]
