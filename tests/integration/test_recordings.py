"""Recordings of real targets: ``tasktop record``, ``dump FILE --at``, ``diff FILE@T``, the
probe's flight recorder killed with SIGKILL mid-write, and ``ls --dead``."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess

import msgpack
import pytest

from tasktop.client.recorded import open_recording
from tasktop.wire.recording import SEGMENT_SUFFIX, Recording

from conftest import tasktop_cmd, tasktop, target_env, wait_until

LEAK = """
    import asyncio
    async def hang(event):
        await event.wait()
    async def main():
        event, keep = asyncio.Event(), []
        print("ready", flush=True)
        while True:
            keep.append(asyncio.ensure_future(hang(event)))
            await asyncio.sleep(0.02)
    asyncio.run(main())
"""


def leaking(group: dict) -> bool:
    return group["kind"] == "task" and any(f["func"] == "hang" for f in group["stack"])


def hang_count(summary: dict) -> int:
    return sum(g["count"] for g in summary["groups"] if leaking(g))


def test_record_then_dump_at_and_diff(spawn, sockdir, tmp_path):
    target = spawn(LEAK)
    out = tmp_path / "leak.ttrec"
    done = tasktop("record", str(target.pid), "-o", str(out), "--interval", "0.2", "--duration", "3s",
                   "--verdicts", "1s", "--budget", "0", sockdir=sockdir)
    assert done.returncode == 0, done.stderr
    assert f"to {out}: duration" in done.stderr
    rec = Recording(str(out))
    assert len(rec) >= 5 and not rec.torn
    counts = [hang_count(s) for s in rec.iter_summaries()]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert rec.extras.get("verdicts") and rec.extras.get("page")  # leak verdicts, group pages
    # dump at the start and at the end: the JSON document of that moment
    first = json.loads(tasktop("dump", str(out), "--at", "start", "--json").stdout)
    last = json.loads(tasktop("dump", str(out), "--json").stdout)
    assert hang_count(first) == counts[0] and hang_count(last) == counts[-1]
    assert last["verdicts"] is not None
    assert first["time"] == rec.start and last["time"] == rec.end
    middle = json.loads(tasktop("dump", str(out), "--at", "+1s", "--json").stdout)
    assert rec.start + 0.5 <= middle["time"] <= rec.start + 1.0
    text = tasktop("dump", str(out), "--at", "-1s").stdout
    assert text.startswith(f"tasktop dump of pid {target.pid}: ")
    diff = tasktop("diff", f"{out}@start", f"{out}@end", "--json")
    assert diff.returncode == 0, diff.stderr
    changes = {g["id"]: g for g in json.loads(diff.stdout)["groups"]}
    grown = [g for g in changes.values() if g.get("delta") and g["delta"] > 0]
    assert grown, changes


@pytest.mark.parametrize("args, message", [
    (["dump", "{rec}", "--at", "yesterday"], "not a TIME: 'yesterday'"),
    (["dump", "{rec}", "--at", "-3h"], "-3h is not within the recording"),
    (["dump", "{bad}"], "is not a tasktop recording"),
    (["dump", "12", "--at", "-5m"], "--at is for a recording"),
    (["dump", "{rec}", "--full"], "--full is for a live process"),
    (["diff", "{bad}@-5m", "{rec}"], "is not a tasktop recording"),
    (["diff", "{rec}@noon", "{rec}"], "not a TIME: 'noon'"),
    (["replay", "{bad}"], "is not a tasktop recording"),
    (["replay", "/nonexistent/1234"], "no such file: /nonexistent/1234"),
    (["record", "--duration", "5m"], "the following arguments are required: -o/--output"),
])
def test_bad_recordings_and_times_are_one_line_errors(tmp_path, args, message):
    from tasktop.client.recorded import FileRecorder

    rec = tmp_path / "r.ttrec"
    recorder = FileRecorder(str(rec))
    for i in range(3):
        recorder.add({"schema": 1, "time": 1_800_000_000.0 + i, "process": {"pid": 1}, "groups": []})
    recorder.close()
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 1}')
    done = tasktop(*[a.format(rec=rec, bad=bad) for a in args])
    assert done.returncode != 0
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_record_ends_cleanly_on_ctrl_c(spawn, sockdir, tmp_path):
    target = spawn(LEAK)
    out = tmp_path / "c.ttrec"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env["TASKTOP_DIR"] = sockdir
    # Ctrl-C's signal as a terminal delivers it: a test run started in the background by a
    # shell without job control inherits SIGINT ignored, and Python then leaves it so.
    proc = subprocess.Popen([*tasktop_cmd(), "record", str(target.pid), "-o", str(out), "--interval", "0.1"],
                            env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_until(lambda: out.exists() and samples(out) >= 3, message="three samples recorded")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    rec = Recording(str(out))
    assert not rec.torn and rec.ended == {"reason": "stopped"}


def samples(path) -> int:
    """How many samples a recording being written holds yet (0 before its first)."""
    from tasktop.wire.recording import RecordingError

    try:
        return len(Recording(str(path)))
    except RecordingError:
        return 0


def flight_run(spawn_env: dict, directory, tmp_path, seconds_before_kill: float) -> int:
    script = tmp_path / "leak.py"
    import textwrap

    script.write_text(textwrap.dedent(LEAK))
    import sys

    proc = subprocess.Popen([sys.executable, str(script)], env=spawn_env, stdout=subprocess.PIPE, text=True)
    try:
        assert "ready" in proc.stdout.readline()
        wait_until(lambda: any(samples(p) >= 4 for p in directory.iterdir() if p.name.startswith(f"{proc.pid}-")),
                   message="four flight samples")
        import time

        time.sleep(seconds_before_kill)  # a random moment: mid-write or between writes
    finally:  # killed in any case: a failed wait leaves no target behind
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    return proc.pid


def test_flight_recorder_survives_sigkill(sockdir, tmp_path):
    """Kill a leaking target with SIGKILL at random moments, several times: each replay shows
    the growth up to the kill, and every record of every segment is whole."""
    directory = tmp_path / "flight"
    env = target_env(sockdir, TASKTOP_RECORD=str(directory), TASKTOP_INTERVAL="0.05",
                     TASKTOP_RECORD_INTERVAL="0.05", TASKTOP_RECORD_SIZE="256K")
    rng = random.Random(14)
    pids = [flight_run(env, directory, tmp_path, rng.uniform(0.0, 0.5)) for _ in range(4)]
    for pid in pids:
        rec = open_recording(str(directory / str(pid)))  # DIR/PID: its newest recording
        assert rec.ended is None  # killed: no end record
        counts = [hang_count(s) for s in rec.iter_summaries()]
        assert len(counts) >= 4 and counts[-1] > counts[0] and counts == sorted(counts)
        for segment in sorted(os.listdir(rec.path)):
            assert segment.endswith(SEGMENT_SUFFIX)
            with open(os.path.join(rec.path, segment), "rb") as fh:
                data = fh.read()
            unpacker = msgpack.Unpacker(raw=False)
            unpacker.feed(data)
            records = list(unpacker)
            # a record is whole or absent: at most a torn tail of bytes after the last one
            import zlib

            assert all(zlib.crc32(r[2]) == r[3] for r in records)
    listed = tasktop("ls", "--dead", "--dir", str(directory), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["pid"]: row for row in json.loads(listed.stdout)}
    assert set(pids) <= set(rows)
    assert all(rows[p]["ended"] == "killed (no end record)" and rows[p]["bytes"] > 0 for p in pids)
    text = tasktop("ls", "--dead", "--dir", str(directory)).stdout
    assert f"tasktop replay {rows[pids[0]]['path']}" in text


def test_flight_recorder_marks_a_clean_exit(spawn, tmp_path):
    directory = tmp_path / "flight"
    target = spawn(LEAK.replace("while True:", "for _ in range(100):"), TASKTOP_RECORD=str(directory),
                   TASKTOP_INTERVAL="0.05", TASKTOP_RECORD_INTERVAL="0.05")
    [path] = wait_until(lambda: list(directory.iterdir()), message="the recording directory")
    status = target.summary()["probe"]["record"]
    assert status["path"] == str(path) and status["error"] is None
    assert target.proc.wait(timeout=60) == 0  # it ends by itself: atexit writes the end record
    rec = Recording(str(path))
    assert rec.ended == {"reason": "exit"} and not rec.torn
    assert "exited" in tasktop("ls", "--dead", "--dir", str(directory)).stdout


def test_unwritable_directory_stops_the_recorder_quietly(spawn, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    target = spawn(LEAK, TASKTOP_RECORD=str(blocker / "sub"))
    status = target.summary()["probe"]["record"]
    assert status["error"].startswith("stopped recording: ")
    assert target.proc.poll() is None
    out, err = target.stop()
    assert "Traceback" not in err


def test_a_pass_in_another_process_packs_summaries_the_replay_reads_from(tmp_path):
    """``client.recording_pass``: a long recording walked once in another process; what it
    sends back is kept by the reader, which then gives every moment as it did without it;
    stopped early, the process ends."""
    from tasktop.client import recording_pass
    from tasktop.wire import recording as fmt

    path = tmp_path / "long.ttrec"
    with open(path, "wb") as fh:
        writer = fmt.Writer(fh.write, {"process": {"pid": 42}, "started": 100.0})
        for i in range(recording_pass.PASS_FROM + 100):
            writer.sample({"time": 100.0 + i, "totals": {"tasks": i},
                           "groups": [{"id": f"{g:012x}", "kind": "task", "count": 1 + (i * g) // 50,
                                       "blocked_max_s": float(i), "stack": [{"func": f"f{g}"}]}
                                      for g in range(20)]})
    rec, plain = Recording(str(path)), Recording(str(path))
    walked = recording_pass.start(rec)
    assert walked is not None
    wait_until(walked.done.is_set, message="the pass to end")
    assert walked.process.returncode == 0
    expected = sum(1 for i, s in enumerate(rec.samples) if s[2] == "delta" and i % fmt.PACKED_EVERY == 0)
    assert walked.received == expected == len(rec._packed_at) > 0
    for i in (len(rec) - 1, 450, 333, 301, 29, 0):
        assert rec.summary(i) == plain.summary(i), i
    stopped = recording_pass.start(Recording(str(path)))
    stopped.stop()
    assert stopped.done.is_set() and stopped.process.returncode is not None
    short = tmp_path / "short.ttrec"
    with open(short, "wb") as fh:
        fmt.Writer(fh.write, {"process": {"pid": 42}, "started": 100.0}).sample({"time": 100.0, "groups": []})
    assert recording_pass.start(Recording(str(short))) is None  # too short to be worth one
