"""``tasktop dump --format folded|pprof`` end to end: exact collapsed-stack lines of a known
target, and a pprof profile read back by an independent wire decoder (and by ``go tool pprof``
when Go is installed)."""
from __future__ import annotations

import asyncio
import gzip
import inspect
import json
import os
import pty
import re
import shutil
import subprocess
import sys

import pytest

from conftest import tasktop, tasktop_cmd, wait_until
from tasktop.render import profiles as formats

TARGET = r'''
import asyncio, threading

async def consume(q):
    await q.get()  # line:consume

async def main():
    q = asyncio.Queue()
    for _ in range(3):
        asyncio.create_task(consume(q))
    ev = threading.Event()
    threading.Thread(target=ev.wait, name="waiter", daemon=True).start()
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def line_of(path: str, marker: str) -> int:
    return next(n for n, line in enumerate(open(path), 1) if line.rstrip().endswith(marker))


def queue_get_line() -> int:
    """Where ``asyncio.Queue.get`` waits, in this interpreter's own standard library."""
    lines, start = inspect.getsourcelines(asyncio.Queue.get)
    return start + next(i for i, line in enumerate(lines) if "await getter" in line)


def func(qualname: str) -> str:
    """A function's name as frames give it: the qualified name from 3.11 (``co_qualname``)."""
    return qualname if sys.version_info >= (3, 11) else qualname.rsplit(".", 1)[-1]


def consume_group(target) -> dict:
    return next(g for g in target.summary()["groups"] if g["kind"] == "task" and g["state"] == "Queue.get")


FOLDED_LINE = re.compile(r"^(task|thread) \[[^\]\n;]+\](;[^;\n]+ \([^;\n]+:\d+\))* \d+$")


def test_folded_lines_of_a_known_target(spawn, sockdir):
    target = spawn(TARGET)
    out = tasktop("dump", str(target.pid), "--format", "folded", sockdir=sockdir)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    consume = line_of(target.script, "# line:consume")
    # outermost first, the root frame naming kind and state, then py-spy's func (file:line)
    assert lines[0] == (f"task [Queue.get];consume ({target.script}:{consume});"
                        f"{func('Queue.get')} (asyncio/queues.py:{queue_get_line()}) 3")
    assert all(FOLDED_LINE.match(line) for line in lines), lines
    waiter = [line for line in lines if line.startswith("thread [Event.wait];")]
    assert len(waiter) == 1 and waiter[0].endswith(" 1")
    assert f"{func('Thread.run')} (threading.py:" in waiter[0]
    # one line per group: the counts add up to every task and thread
    summary = target.summary()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == \
        summary["totals"]["tasks"] + summary["totals"]["threads"]


def test_folded_to_a_file(spawn, sockdir, tmp_path):
    target = spawn(TARGET)
    path = tmp_path / "stacks.folded"
    out = tasktop("dump", str(target.pid), "--format", "folded", "-o", str(path), sockdir=sockdir)
    assert out.returncode == 0 and out.stdout == "", out.stderr
    assert path.read_text().startswith("task [Queue.get];consume (")


# -- an independent reader of the protobuf wire format, to check what pure-protobuf wrote ------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def wire_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of every field of one message; LEN values as bytes."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise AssertionError(f"unexpected wire type {wire} for field {number}")
        out.append((number, wire, value))
    return out


def packed(buf: bytes) -> list[int]:
    values, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        values.append(value)
    return values


def decode_profile(blob: bytes) -> dict:
    """profile.proto by hand: string table, sample types, functions, locations, samples."""
    top = wire_fields(gzip.decompress(blob))
    strings = [v.decode() for n, w, v in top if n == 6]
    sub = {n: [dict((f, v) for f, _w, v in wire_fields(v)) for m, w, v in top if m == n] for n in (1, 4, 5)}
    functions = {f[1]: (strings[f[2]], strings[f[4]]) for f in sub[5]}
    locations = {}
    for n, w, v in top:
        if n == 4:
            fields = wire_fields(v)
            loc_id = next(val for f, _w, val in fields if f == 1)
            line = dict((f, val) for f, _w, val in wire_fields(next(val for f, _w, val in fields if f == 4)))
            locations[loc_id] = (functions[line[1]], line[2])
    samples = []
    for n, w, v in top:
        if n != 2:
            continue
        fields = wire_fields(v)
        locs = next(packed(val) for f, _w, val in fields if f == 1)
        values = next(packed(val) for f, _w, val in fields if f == 2)
        labels = {}
        for f, _w, val in fields:
            if f == 3:
                label = dict((k, x) for k, _ww, x in wire_fields(val))
                labels[strings[label[1]]] = strings[label[2]]
        frames = [f"{locations[i][0][0]} ({locations[i][0][1]}:{locations[i][1]})" for i in locs]
        samples.append((frames, values, labels))
    return {"strings": strings, "sample_type": [(strings[t[1]], strings[t[2]]) for t in sub[1]],
            "samples": samples}


def test_pprof_profile_reads_back(spawn, sockdir, tmp_path):
    target = spawn(TARGET)
    wait_until(lambda: consume_group(target)["blocked_min_s"] >= 0.2, message="consumers blocked")
    gid = consume_group(target)["id"]
    path = tmp_path / "tasks.pb.gz"
    out = tasktop("dump", str(target.pid), "--format", "pprof", "-o", str(path), sockdir=sockdir)
    assert out.returncode == 0 and out.stdout == "", out.stderr
    blob = path.read_bytes()
    assert blob[:2] == b"\x1f\x8b"  # gzipped, as pprof expects on disk

    profile = decode_profile(blob)
    assert profile["strings"][0] == ""
    assert profile["sample_type"] == [("tasks", "count"), ("blocked", "milliseconds")]
    consume = line_of(target.script, "# line:consume")
    queues = asyncio.Queue.get.__code__.co_filename
    frames, values, labels = next(s for s in profile["samples"] if s[2]["group"] == gid)
    assert frames == [f"{func('Queue.get')} ({queues}:{queue_get_line()})", f"consume ({target.script}:{consume})"]
    assert values[0] == 3 and values[1] >= 3 * 200  # three members, each blocked at least 0.2 s
    assert labels == {"kind": "task", "state": "Queue.get", "group": gid}
    threads = [s for s in profile["samples"] if s[2]["kind"] == "thread"]
    waiter = [s for s in threads if s[2]["state"] == "Event.wait"]
    assert len(waiter) == 1 and waiter[0][1][0] == 1
    assert any(frame.startswith(f"{func('Event.wait')} (") for frame in waiter[0][0])
    summary = target.summary()
    assert sum(s[1][0] for s in profile["samples"]) == summary["totals"]["tasks"] + summary["totals"]["threads"]

    # the library reads back what the hand decoder read
    again = list(formats.sample_stacks(formats.read_pprof(blob)))
    assert sorted((f, v) for f, v, _l in again) == sorted((f, v) for f, v, _l in profile["samples"])


@pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed")
def test_go_tool_pprof_opens_it(spawn, sockdir, tmp_path):
    target = spawn(TARGET)
    path = tmp_path / "tasks.pb.gz"
    assert tasktop("dump", str(target.pid), "--format", "pprof", "-o", str(path), sockdir=sockdir).returncode == 0
    env = dict(os.environ, HOME=str(tmp_path), GOFLAGS="", GOTOOLCHAIN="local")
    out = subprocess.run(["go", "tool", "pprof", "-top", str(path)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Type: tasks" in out.stdout
    row = next(line for line in out.stdout.splitlines() if line.split()[-1:] == [func("Queue.get")])
    assert row.split()[0] == "3"  # flat: the three consumers wait there
    assert any(line.split()[-1:] == ["consume"] for line in out.stdout.splitlines())


def test_pprof_to_standard_output_is_binary(spawn, sockdir):
    target = spawn(TARGET)
    out = tasktop("dump", str(target.pid), "--format", "pprof", sockdir=sockdir, text=False)
    assert out.returncode == 0, out.stderr
    samples = decode_profile(out.stdout)["samples"]
    assert any(labels["state"] == "Queue.get" and values[0] == 3 for _f, values, labels in samples)


def test_pprof_refuses_a_terminal(spawn, sockdir):
    target = spawn(TARGET)
    master, slave = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
        env["TASKTOP_DIR"] = sockdir
        proc = subprocess.run([*tasktop_cmd(), "dump", str(target.pid), "--format", "pprof"],
                              stdout=slave, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("tasktop: error: the pprof format is binary: write it with -o FILE "
                                   "or redirect the output")


def test_json_and_text_formats_still_work(spawn, sockdir):
    target = spawn(TARGET)
    as_format = json.loads(tasktop("dump", str(target.pid), "--format", "json", sockdir=sockdir).stdout)
    as_flag = json.loads(tasktop("dump", str(target.pid), "--json", sockdir=sockdir).stdout)
    assert as_format["schema"] == as_flag["schema"] == 1
    # Task groups only: a thread's group follows its state at the moment of each dump (the
    # loop's thread is "running" while it answers a heartbeat), and the two dumps are two moments.
    assert ([g["id"] for g in as_format["groups"] if g["kind"] == "task"]
            == [g["id"] for g in as_flag["groups"] if g["kind"] == "task"])
    assert len([g for g in as_format["groups"] if g["kind"] == "task"]) == 2
    text = tasktop("dump", str(target.pid), "--format", "text", sockdir=sockdir).stdout
    assert text.startswith(f"tasktop dump of pid {target.pid}: ")


@pytest.mark.parametrize("args,message", [
    (["--json", "--format", "folded"], "--json conflicts with --format folded"),
    (["--format", "svg"], "invalid choice: 'svg'"),
])
def test_bad_format_options(spawn, sockdir, args, message):
    target = spawn(TARGET)
    out = tasktop("dump", str(target.pid), *args, sockdir=sockdir)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tasktop: error: ") and message in lines[0]


def test_unwritable_output_file(spawn, sockdir, tmp_path):
    target = spawn(TARGET)
    out = tasktop("dump", str(target.pid), "--format", "folded", "-o", str(tmp_path / "no" / "such.txt"),
                  sockdir=sockdir)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("tasktop: error: cannot write ") and "No such file" in out.stderr
