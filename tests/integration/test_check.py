"""``tasktop check`` end to end against real targets: each threshold passing and failing, the
exit statuses (0 pass, 1 threshold passed, 2 usage, 3 no probe to judge), and ``--json``."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import tasktop, tasktop_cmd, wait_until

STEADY = r'''
import asyncio, signal, time

async def consume(q):
    await q.get()  # line:consume

def block_the_loop():
    time.sleep(0.4)  # line:stall

async def main():
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()
    for _ in range(5):
        asyncio.create_task(consume(q))
    loop.add_signal_handler(signal.SIGUSR1, block_the_loop)
    await loop.run_in_executor(None, time.time)  # leaves an idle executor worker
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    while True:  # short sleeps: only the consumers stay blocked for long
        await asyncio.sleep(0.05)

asyncio.run(main())
'''

LEAKING = r'''
import asyncio

async def leaked(ev):
    await ev.wait()  # line:leaked

async def main():
    never = asyncio.Event()
    print("ready", flush=True)
    while True:
        asyncio.create_task(leaked(never))
        await asyncio.sleep(0.02)

asyncio.run(main())
'''


def where(target, marker: str) -> str:
    line = next(n for n, l in enumerate(open(target.script), 1) if l.rstrip().endswith(marker))
    return f"({os.path.basename(target.script)}:{line})"


def consumers(target) -> dict:
    return next(g for g in target.summary()["groups"] if g["state"] == "Queue.get")


def test_max_tasks(spawn, sockdir):
    target = spawn(STEADY)
    ok = tasktop("check", str(target.pid), "--max-tasks", "100", sockdir=sockdir)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "OK tasks 6 <= 100\n" and ok.stderr == ""
    fail = tasktop("check", str(target.pid), "--max-tasks", "2", sockdir=sockdir)
    assert fail.returncode == 1
    assert fail.stdout == "FAIL tasks 6 > 2\n"


def test_growth_of_a_leaking_group(spawn, sockdir):
    target = spawn(LEAKING)  # a task every 20 ms: about 3000 a minute
    out = tasktop("check", str(target.pid), "--max-growth", "100", "--window", "1", sockdir=sockdir)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("FAIL growth: tasks grew ") and "/min > 100/min" in lines[0]
    gid = next(g["id"] for g in target.summary()["groups"] if g["state"] == "Event.wait")
    assert lines[1].startswith(f"FAIL growth: group {gid} (leaked {where(target, '# line:leaked')}, "
                               f"Event.wait) grew ")
    assert "/min > 100/min (" in lines[1]


def test_growth_of_a_steady_process(spawn, sockdir):
    target = spawn(STEADY)
    out = tasktop("check", str(target.pid), "--max-growth", "1000", "--window", "0.5", sockdir=sockdir)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "OK growth: tasks 0/min <= 1000/min"
    # the main task may be caught between two sleeps, in another group: never 1000 a minute
    assert len(lines) == 2 and lines[1].startswith("OK growth: ")


def test_max_blocked(spawn, sockdir):
    target = spawn(STEADY)
    def idle_too_long():
        groups = target.summary()["groups"]
        idle = [g for g in groups if g["state"] == "executor idle"]
        return consumers(target)["blocked_max_s"] > 0.5 and idle and idle[0]["blocked_max_s"] > 0.5

    wait_until(idle_too_long, message="consumers and the idle worker blocked")
    gid = consumers(target)["id"]
    fail = tasktop("check", str(target.pid), "--max-blocked", "0.5", sockdir=sockdir)
    assert fail.returncode == 1
    # only the consumers wait for long: the main task sleeps 50 ms at a time, and an idle
    # executor worker waits for work, which is no fault
    assert fail.stdout.startswith(f"FAIL blocked: group {gid} (consume {where(target, '# line:consume')}, "
                                  f"Queue.get) blocked ")
    assert fail.stdout.endswith(" > 0.5s\n") and len(fail.stdout.splitlines()) == 1
    ok = tasktop("check", str(target.pid), "--max-blocked", "3600", sockdir=sockdir)
    assert ok.returncode == 0 and ok.stdout.startswith("OK blocked: longest ")
    assert ok.stdout.rstrip().endswith("<= 3600s")


def test_max_lag_sees_a_stall_in_the_window(spawn, sockdir):
    target = spawn(STEADY)
    before = tasktop("check", str(target.pid), "--max-lag", "100", sockdir=sockdir)
    assert before.returncode == 0, before.stdout
    assert before.stdout.startswith("OK lag: worst loop 1 (MainThread) lag ")
    assert ", 0 stalls in the last 10s <= 100ms" in before.stdout

    # The loop runs time.sleep(0.4) on each signal.  A probe that finds itself starved (a
    # loaded machine) posts one heartbeat a second, and a stall between two is not seen: the
    # signal is sent again until one is.
    stall = None
    for _ in range(10):
        os.kill(target.pid, signal.SIGUSR1)
        try:
            stall = wait_until(lambda: (target.summary()["loops"][0]["stalls"] or [None])[-1],
                               timeout=3, message="a stall")
            break
        except AssertionError:
            continue
    assert stall is not None, "no stall seen after ten signals"
    fail = tasktop("check", str(target.pid), "--max-lag", "100", "--window", "60", sockdir=sockdir)
    assert fail.returncode == 1
    assert fail.stdout.startswith("FAIL lag: loop 1 (MainThread) stalled ")
    assert f" in block_the_loop {where(target, '# line:stall')} > 100ms (" in fail.stdout
    assert re.search(r"\(\d+ stalls? in the last ", fail.stdout), fail.stdout
    ok = tasktop("check", str(target.pid), "--max-lag", "1000", "--window", "60", sockdir=sockdir)
    assert ok.returncode == 0 and re.search(r"\d+ stalls? in the last", ok.stdout), ok.stdout
    stall = target.summary()["loops"][0]["stalls"][-1]  # the last of them ages out last

    # once the stall is older than the window, it no longer counts
    ended = stall["at"] + stall["duration_ms"] / 1000
    wait_until(lambda: time.time() > ended + 0.5, message="the stall to age")
    later = tasktop("check", str(target.pid), "--max-lag", "100", "--window", "0.2", sockdir=sockdir)
    assert later.returncode == 0, later.stdout
    assert "0 stalls in the last 0.2s" in later.stdout


def test_all_thresholds_json(spawn, sockdir):
    target = spawn(LEAKING)
    out = tasktop("check", "--socket", target.path, "--max-tasks", "100000", "--max-growth", "100",
                  "--max-blocked", "3600", "--max-lag", "5000", "--window", "0.5", "--json", sockdir=sockdir)
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)
    assert result["pid"] == target.pid and result["ok"] is False and result["status"] == 1
    assert result["window_s"] == 0.5 and len(result["snapshots"]) == 2
    checks = [(c["check"], c["subject"], c["ok"]) for c in result["checks"]]
    assert checks == [("tasks", "tasks", True), ("growth", "tasks", False), ("growth", "groups", False),
                      ("blocked", None, True), ("lag", None, True)]
    growth = result["checks"][2]
    assert growth["limit"] == 100 and growth["value"] > 100
    offender = growth["offenders"][0]
    assert offender["state"] == "Event.wait" and offender["where"].startswith("leaked (")
    assert offender["count"] > offender["old"] and offender["per_min"] == growth["value"]
    assert all(c["line"].startswith("OK " if c["ok"] else "FAIL ") for c in result["checks"])


def test_unreachable_probe_is_status_3(spawn, sockdir, tmp_path):
    # no such process
    out = tasktop("check", "4000000", "--max-tasks", "1", sockdir=sockdir)
    assert out.returncode == 3 and out.stdout == ""
    assert out.stderr.strip() == "tasktop: error: no process with pid 4000000"
    # a process without a probe
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env={k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")})
    try:
        out = tasktop("check", str(plain.pid), "--max-tasks", "1", sockdir=sockdir)
        assert out.returncode == 3
        assert out.stderr.startswith(f"tasktop: error: process {plain.pid} has no tasktop probe")
        assert len(out.stderr.strip().splitlines()) == 1
    finally:
        plain.kill()
        plain.wait()
    # a socket where something else answers
    path = str(tmp_path / "fake.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()

    def answer_garbage():
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        out = tasktop("check", "--socket", path, "--max-tasks", "1")
        assert out.returncode == 3 and out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("tasktop: error: ")
    finally:
        thread.join(10)
        server.close()


def test_process_gone_during_the_window_is_status_3(spawn, sockdir):
    target = spawn(STEADY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env["TASKTOP_DIR"] = sockdir
    check = subprocess.Popen([*tasktop_cmd(), "check", str(target.pid), "--max-growth", "10", "--window", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # Whether the first snapshot was taken before the target goes or not, there is no verdict.
        wait_until(lambda: _in_window(check.pid),
                   timeout=10, message="the first snapshot")
        target.stop()
        out, err = check.communicate(timeout=30)
    finally:
        if check.poll() is None:
            check.kill()
            check.wait()
    assert check.returncode == 3, (out, err)
    assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("tasktop: error: ")


def _in_window(pid: int) -> bool:
    """Whether the check process sleeps in its window (its first snapshot is done); True when
    the kernel does not say (either way the test's outcome is the same)."""
    try:
        with open(f"/proc/{pid}/wchan") as fh:
            wchan = fh.read().strip()
    except OSError:
        return True
    return "nanosleep" in wchan or wchan in ("", "0")


@pytest.mark.parametrize("args,message", [
    (["check", "123"], "check needs at least one threshold"),
    (["check", "--max-tasks", "5"], "check needs a PID or --socket PATH"),
    (["check", "123", "--max-tasks", "lots"], "not a whole number: 'lots'"),
    (["check", "123", "--max-growth", "-1"], "must be a finite number, not negative"),
    (["check", "123", "--max-lag", "nan"], "must be a finite number, not negative"),
    (["check", "123", "--max-tasks", "1", "--window", "0"], "the window must be between 0.1 and 3600"),
])
def test_usage_errors_are_status_2(args, message):
    out = tasktop(*args)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tasktop: error: ") and message in lines[0], lines
