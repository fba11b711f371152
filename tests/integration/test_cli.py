"""The ``tasktop`` command end to end: dump (text, --full, --json), ls, run, the py-spy
fallback, and one-line errors for bad input."""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from conftest import target_env, tasktop, wait_until
from tasktop.wire import paths

LEAKY = r'''
import asyncio, threading

async def consume(q):
    await q.get()

async def main():
    global Q
    Q = asyncio.Queue()
    for _ in range(6):
        asyncio.create_task(consume(Q))  # site:consume
    lock = threading.Lock(); lock.acquire()
    threading.Thread(target=lock.acquire, name="stuck-on-lock", daemon=True).start()
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


def test_dump_text(spawn, sockdir):
    target = spawn(LEAKY)
    out = tasktop("dump", str(target.pid), sockdir=sockdir)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith(f"tasktop dump of pid {target.pid}: ")
    assert "7 tasks, 2 threads, 1 event loops" in text
    # the largest group first, innermost frame first, then where it was created
    assert "\nLeak verdicts: none" in text  # the queue is a module global: someone may still fill it
    block = next(b for b in text.split("\n\n") if b.startswith("6 tasks"))
    lines = block.splitlines()
    assert lines[0].startswith("6 tasks: Queue.get, blocked")
    assert lines[1].strip().startswith(("Queue.get (asyncio/queues.py:", "get (asyncio/queues.py:"))
    assert lines[2].strip().startswith("consume (")
    line_no = next(n for n, l in enumerate(open(target.script), 1) if l.rstrip().endswith("# site:consume"))
    assert lines[3].strip().startswith("created by main (") and f":{line_no}) in task 1  ×6" in lines[3]
    assert "1 thread: Lock.acquire" in text


def test_dump_json_document(spawn, sockdir):
    target = spawn(LEAKY)
    out = tasktop("dump", str(target.pid), "--json", sockdir=sockdir)
    doc = json.loads(out.stdout)
    assert doc["schema"] == 1
    assert doc["process"]["pid"] == target.pid and doc["process"]["argv"][-1].endswith(".py")
    assert doc["process"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert doc["totals"] == {"tasks": 7, "threads": 2, "loops": 1, "groups": doc["totals"]["groups"]}
    assert doc["memory"]["rss_bytes"] > 1_000_000
    assert doc["loops"][0]["tasks"] == 7 and "stalls" in doc["loops"][0]
    group = doc["groups"][0]
    assert {"id", "kind", "count", "state", "blocked_min_s", "blocked_max_s", "stack", "created_by"} <= set(group)
    assert group["count"] == 6 and group["kind"] == "task"
    assert set(group["stack"][0]) == {"func", "file", "line"}
    assert "tasks" not in doc and "threads" not in doc

    printed = tasktop("dump", str(target.pid), "--json", "--full", sockdir=sockdir).stdout
    full = json.loads(printed)
    assert len(full["tasks"]) == 7 and len(full["threads"]) == 2
    # Each task's row is one line of compact JSON (encoded in C); the rest is indented.
    rows = [line for line in printed.splitlines() if line.startswith('    {"id": ')]
    assert [json.loads(line.rstrip(",")) for line in rows] == full["tasks"]
    assert '\n  "totals": {\n    "tasks": 7,' in printed
    task = full["tasks"][1]
    assert {"id", "name", "group", "state", "blocked_s", "stack", "created_by", "awaiting", "awaited_by"} <= set(task)
    thread = next(t for t in full["threads"] if t["name"] == "stuck-on-lock")
    assert {"ident", "native_id", "name", "group", "state", "blocked_s", "stack", "cpu_s"} <= set(thread)
    assert thread["state"] == "Lock.acquire"


def test_dump_full_text_and_socket_option(spawn, sockdir):
    target = spawn(LEAKY)
    out = tasktop("dump", "--socket", target.path, "--full", sockdir=sockdir)
    assert out.returncode == 0
    assert out.stdout.count("\ntask ") == 7
    assert "thread " in out.stdout and "stuck-on-lock" in out.stdout
    assert "[Queue.get" in out.stdout


def test_ls_lists_probes_and_cleans_stale_sockets(spawn, sockdir):
    target = spawn(LEAKY)
    # A socket left by a process that died without cleaning up (SIGKILL).
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=target_env(sockdir))
    wait_until(lambda: os.path.exists(paths.socket_path(dead.pid, sockdir)), message="socket")
    dead.kill()
    dead.wait()
    assert os.path.exists(paths.socket_path(dead.pid, sockdir))
    out = tasktop("ls", sockdir=sockdir)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["PID", "TASKS", "THREADS", "RSS", "UPTIME", "COMMAND"]
    row = next(line for line in lines if line.split()[0] == str(target.pid))
    assert row.split()[1:3] == ["7", "2"] and target.script in row
    assert not any(line.split()[0] == str(dead.pid) for line in lines[1:])
    assert not os.path.exists(paths.socket_path(dead.pid, sockdir))
    rows = json.loads(tasktop("ls", "--json", sockdir=sockdir).stdout)
    assert [r["pid"] for r in rows] == [target.pid]


def test_run_enables_the_probe_and_passes_the_exit_code(sockdir, tmp_path):
    script = tmp_path / "app.py"
    script.write_text("import os, sys, time\nprint(os.environ['TASKTOP'], os.path.exists(sys.argv[1]))\nsys.exit(7)\n")
    # The script checks its own socket exists: the probe started before __main__.
    code = ("import os, sys; print(os.environ['TASKTOP'], "
            f"os.path.exists(os.path.join({sockdir!r}, str(os.getpid()) + '.sock'))); sys.exit(7)")
    out = tasktop("run", "--", sys.executable, "-c", code, sockdir=sockdir)
    assert out.returncode == 7
    assert out.stdout.strip() == "1 True"
    assert out.stderr == ""
    bad = tasktop("run", "--", "no-such-command-xyz")
    assert bad.returncode == 127 and bad.stderr.strip() == "tasktop: error: command not found: no-such-command-xyz"
    shared = tmp_path / "shared"  # a socket directory others can reach: refused, left as it was
    shared.mkdir()
    os.chmod(shared, 0o1777)
    refused = tasktop("run", "--", sys.executable, "-c", "print('ran')", sockdir=str(shared))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (f"tasktop: error: the probe cannot start: {shared} is open to other users "
                              "(mode 1777): the socket directory must be one only you can reach (mode 700), "
                              "such as a new one\n")
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    listed = tasktop("ls", sockdir=str(shared))  # and what `ls` says when it finds no probe there
    assert listed.returncode == 0 and listed.stderr.startswith(
        f"tasktop: note: no probe can start there: {shared} is open to other users (mode 1777)")


@pytest.mark.parametrize("args,message", [
    (["dump"], "dump needs a PID or --socket PATH"),
    (["dump", "abc"], "not a process id: 'abc'"),
    (["dump", "-5"], ""),
    (["dump", "4000000"], "no process with pid 4000000"),
    (["dump", "--socket", "/nonexistent/x.sock"], "no probe socket at /nonexistent/x.sock"),
    (["4000000"], "no process with pid 4000000"),
    (["--interval", "0"], "interval must be between"),
    (["run"], "run needs a command"),
    (["frobnicate"], "not a process id: 'frobnicate'"),
])
def test_bad_input_is_one_line_and_nonzero(args, message):
    out = tasktop(*args)
    assert out.returncode != 0
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tasktop: error: "), out.stderr
    assert message in lines[0]
    assert "Traceback" not in out.stderr


def test_a_socket_that_is_not_a_probe(tmp_path):
    path = str(tmp_path / "fake.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    try:
        out = tasktop("dump", "--socket", path, "--json")
        assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
        assert "tasktop: error:" in out.stderr and out.stdout == ""
    finally:
        server.close()


NO_PROBE = r'''
import threading, time, sys
ev = threading.Event()
threading.Thread(target=ev.wait, name="waiting-for-godot", daemon=True).start()
print("ready", flush=True)
time.sleep(600)
'''


def test_dump_without_probe_falls_back_to_py_spy(tmp_path, sockdir):
    script = tmp_path / "plain.py"
    script.write_text(NO_PROBE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert "ready" in proc.stdout.readline()
        out = tasktop("dump", str(proc.pid), sockdir=sockdir)
        if "permission denied" in out.stderr:
            pytest.skip("ptrace is not allowed here")
        assert out.returncode == 0, out.stderr
        assert "has no probe" in out.stderr and "TASKTOP=1" in out.stderr
        assert "threads only" in out.stdout or "py-spy" in out.stdout
        assert "Event.wait" in out.stdout and "waiting-for-godot" not in out.stderr
        doc = json.loads(tasktop("dump", str(proc.pid), "--json", "--full", sockdir=sockdir).stdout)
        assert doc["source"] == "py-spy" and doc["totals"]["tasks"] is None
        names = {t["name"]: t for t in doc["threads"]}
        assert names["waiting-for-godot"]["state"] == "Event.wait"
    finally:
        proc.kill()
        proc.wait()


def test_dump_of_a_process_that_is_not_python(sockdir):
    proc = subprocess.Popen(["sleep", "60"])
    try:
        out = tasktop("dump", str(proc.pid), sockdir=sockdir)
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "not a Python program" in lines[0] or "permission denied" in lines[0]
    finally:
        proc.kill()
        proc.wait()


def test_demo_dump(sockdir):
    out = tasktop("demo", "--dump", "--wait", "2", sockdir=sockdir)
    assert out.returncode == 0, out.stderr
    assert "consume_orders" in out.stdout and "Queue.get" in out.stdout
    assert os.listdir(sockdir) == []


# -- the command registry ----------------------------------------------------------------------------
def test_help_is_each_commands_own():
    top = tasktop("--help")
    assert top.returncode == 0 and top.stderr == ""
    assert top.stdout.startswith("usage: tasktop [-h] [--version] [--socket PATH] [--interval SECONDS] [pid]\n")
    assert "See what is piling up inside a Python process." in top.stdout
    dump = tasktop("dump", "--help")
    assert dump.returncode == 0 and dump.stdout.startswith("usage: tasktop dump [-h] [--socket PATH]")
    assert "Print where every task and thread of a process is blocked." in dump.stdout
    assert "--version" not in dump.stdout
    version = tasktop("--version")
    assert version.returncode == 0 and version.stdout.startswith("tasktop ")
