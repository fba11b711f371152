"""``tasktop attach`` and ``tasktop detach`` on real processes started without the probe, on
every CPython from 3.9 to 3.15 the machine has (a missing one is a skip): the probe starts in an
event loop idle in ``epoll_wait``, finds the tasks made before it (shown as made before the
probe) and hooks the ones made after; a second attach does nothing; detach removes the socket,
ends the probe's thread and puts the hooks back, and a new attach works again.  Nothing is
written to the target's stderr."""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from tasktop.client.probe_client import ProbeClient
from tasktop.wire import paths

from conftest import SHARED_TMP, tasktop, tasktop_cmd, wait_until

VERSIONS = [(3, minor) for minor in range(9, 16)]


def python(version: tuple) -> str | None:
    """An interpreter of ``version``: on PATH, or installed by pyenv."""
    name = f"python{version[0]}.{version[1]}"
    if tuple(sys.version_info[:2]) == version:
        return sys.executable
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", f"{version[0]}.{version[1]}.*", "bin", name)))
    if found:
        return found[-1]
    path = shutil.which(name)
    return path if path and "shims" not in path else None


def need(version: tuple) -> str:
    exe = python(version)
    if exe is None:
        pytest.skip(f"no Python {version[0]}.{version[1]} on this machine")
    return exe


# Idle in epoll_wait until a line comes on stdin: "more" makes two tasks at made_after,
# "state" prints the threads and whether asyncio's hooks are the originals.
IDLE = r'''
import asyncio, sys, threading
import asyncio.events as events

ORIGINAL = (events._set_running_loop, asyncio.BaseEventLoop.__init__, asyncio.BaseEventLoop.create_task,
            asyncio.BaseEventLoop.set_task_factory)
EVENT = None
KEEP = []

def made_after():
    for _ in range(2):
        KEEP.append(asyncio.get_running_loop().create_task(EVENT.wait()))

def state():
    loop = asyncio.get_running_loop()
    now = (events._set_running_loop, asyncio.BaseEventLoop.__init__, asyncio.BaseEventLoop.create_task,
           asyncio.BaseEventLoop.set_task_factory)
    print("threads", sorted(t.name for t in threading.enumerate()), "factory", loop.get_task_factory(),
          "raw", loop._task_factory, "hooks", "original" if now == ORIGINAL else "changed", flush=True)

def line():
    text = sys.stdin.readline().strip()
    if text == "more":
        made_after()
        print("made", flush=True)
    elif text == "state":
        state()

async def main():
    global EVENT
    EVENT = asyncio.Event()
    KEEP.extend(asyncio.create_task(EVENT.wait()) for _ in range(3))
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), line)
    print("ready", flush=True)
    await EVENT.wait()

asyncio.run(main())
'''


@pytest.fixture
def plain(tmp_path, sockdir):
    """``plain(source, python, *args, **env)``: a target started WITHOUT the probe."""
    started = []

    def _plain(source: str, exe: str = sys.executable, *args: str, **env: str) -> subprocess.Popen:
        script = tmp_path / f"plain{len(started)}.py"
        script.write_text(textwrap.dedent(source))
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("TASKTOP", "PYTHON"))}
        environ.update(env)
        proc = subprocess.Popen([exe, *args, str(script)], env=environ, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
        started.append(proc)
        line = proc.stdout.readline()
        assert "ready" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        return proc

    yield _plain
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def ask(proc: subprocess.Popen, line: str) -> str:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline()


def task_groups(path: str) -> list[dict]:
    with ProbeClient(path, timeout=15) as client:
        return [g for g in client.summary()["groups"] if g["kind"] == "task"]


@pytest.mark.parametrize("version, via", [(v, "auto") for v in VERSIONS] + [((3, 14), "remote-exec"),
                                                                       ((3, 15), "remote-exec")],
                         ids=lambda x: x if isinstance(x, str) else f"{x[0]}.{x[1]}")
def test_attach_then_detach_on_every_python(version, via, plain, sockdir):
    proc = plain(IDLE, need(version))
    pid = str(proc.pid)
    path = paths.socket_path(proc.pid, sockdir)

    done = tasktop("attach", pid, "--via", via, sockdir=sockdir)
    assert done.returncode == 0, done.stderr
    assert ("by sys.remote_exec" if via == "remote-exec" else "by ptrace") in done.stdout
    assert f"probe started in process {pid} (Python {version[0]}.{version[1]}" in done.stdout
    assert os.path.exists(path)
    again = tasktop("attach", pid, sockdir=sockdir)
    assert (again.returncode, again.stdout.strip()) == (0, f"tasktop: process {pid} already has a probe "
                                                           f"(nothing done): tasktop {pid}")

    assert "made" in ask(proc, "more")  # two tasks made with the probe in place
    groups = wait_until(lambda: [g for g in task_groups(path) if any(
        s["stack"] and s["stack"][0]["func"].endswith("made_after") for s in g["created_by"])],
        message="the tasks made after the attach, with their creation site")
    assert sum(s["count"] for g in groups for s in g["created_by"] if s["stack"]) == 2
    before = [s for g in task_groups(path) for s in g["created_by"] if s["stack"] is None]
    assert sum(s["count"] for s in before) == 4  # three Event.wait tasks and main()
    dump = tasktop("dump", pid, "--no-verdicts", sockdir=sockdir)
    assert dump.returncode == 0, dump.stderr
    assert "created before the probe started  ×3" in dump.stdout
    assert "tasktop-probe" in ask(proc, "state")

    stopped = tasktop("detach", pid, sockdir=sockdir)
    assert (stopped.returncode, stopped.stdout.strip()) == (0, f"tasktop: probe of process {pid} stopped")
    assert not os.path.exists(path)
    state = wait_until(lambda: (lambda s: "tasktop-probe" not in s and s)(ask(proc, "state")),
                       message="the probe's thread to end")
    assert re.search(r"factory None raw None hooks original", state), state
    nothing = tasktop("detach", pid, sockdir=sockdir)
    assert (nothing.returncode, nothing.stdout.strip()) == (0, f"tasktop: process {pid} has no probe (nothing done)")

    assert tasktop("attach", pid, sockdir=sockdir).returncode == 0  # once more, after a detach
    assert os.path.exists(path)
    assert "made" in ask(proc, "more")
    wait_until(lambda: sum(s["count"] for g in task_groups(path) for s in g["created_by"]
                           if s["stack"] and s["stack"][0]["func"].endswith("made_after")) == 4,
               message="the tasks made after each attach")
    assert tasktop("detach", pid, sockdir=sockdir).returncode == 0
    # No sys.remote_exec request is left pending (3.14+): one run now would find its script gone
    # and print "Can't open debugger script" on the process's stderr.
    os.unlink(os.path.join(sockdir, "attach.py"))
    assert "hooks original" in ask(proc, "state")
    proc.kill()
    _out, err = proc.communicate(timeout=10)
    assert err == ""


# The main thread blocked on a lock for good, the event loop in another thread.
MAIN_BLOCKED = r'''
import asyncio, threading

def run():
    async def main():
        print("ready", flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())

threading.Thread(target=run, daemon=True).start()
threading.Event().wait()
'''


def test_attach_on_3_14_when_the_main_thread_never_runs_python(plain, sockdir):
    """sys.remote_exec waits for the main thread, which never comes: after a second of trying
    the main thread alone, another thread waiting in a safe call runs the script."""
    proc = plain(MAIN_BLOCKED, need((3, 14)))
    done = tasktop("attach", str(proc.pid), "--via", "remote-exec", sockdir=sockdir)
    assert done.returncode == 0, done.stderr
    assert "by sys.remote_exec, woken by ptrace in epoll_wait" in done.stdout
    groups = task_groups(paths.socket_path(proc.pid, sockdir))
    assert sum(s["count"] for g in groups for s in g["created_by"]) == 1  # main(), in the other thread
    assert tasktop("detach", str(proc.pid), sockdir=sockdir).returncode == 0
    proc.kill()
    assert proc.communicate(timeout=10)[1] == ""


# -- refusals: one line, a non-zero status, and the remedy ---------------------------------------
def refused(*args: str, sockdir: str) -> str:
    done = tasktop("attach", *args, sockdir=sockdir)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tasktop: error: "), done.stderr
    return lines[0]


def test_attach_refuses_a_process_that_has_exited(sockdir):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert f"no process with pid {gone.pid} (it has exited)" in refused(str(gone.pid), sockdir=sockdir)


def test_attach_refuses_a_process_that_is_not_python(sockdir):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        line = refused(str(sleeper.pid), sockdir=sockdir)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert f"process {sleeper.pid} (sleep) is not a Python process" in line
    assert "tasktop attaches to CPython 3.9 to 3.15" in line


@pytest.mark.parametrize("switch", ["-X", "env"])
def test_attach_refuses_a_process_with_remote_debugging_off(switch, plain, sockdir):
    exe = need((3, 14))
    if switch == "-X":
        proc = plain(IDLE, exe, "-X", "disable-remote-debug")
        why = "-X disable-remote-debug"
    else:
        proc = plain(IDLE, exe, PYTHON_DISABLE_REMOTE_DEBUG="1")
        why = "PYTHON_DISABLE_REMOTE_DEBUG"
    line = refused(str(proc.pid), sockdir=sockdir)
    assert f"process {proc.pid} has remote debugging switched off ({why}): restart it without {why}" in line
    assert not os.path.exists(paths.socket_path(proc.pid, sockdir))


NOBODY = 65534
# tasktop as user nobody: what it imports is imported first, as root, since nobody cannot read
# this machine's Pythons (a user's own Python is readable by that user); registry.commands()
# loads every command module as the CLI does, with whatever they import at their top.
AS_NOBODY = r'''
import os, sys
from tasktop.cli import main as cli, registry
registry.commands()
from tasktop.cli.commands import attach as command
from tasktop.client import attach, inject, processes
import pyinjector.api, hypno.api, psutil, pwd, hashlib, tempfile, json, argparse, shutil, stat
pwd.getpwuid(0)
os.setgid(65534)
os.setgroups([])
os.setuid(65534)
sys.exit(cli.main(["attach", sys.argv[1]]))
'''


def skip_unless_nobody_reads_tasktop() -> None:
    """tasktop run as user nobody imports its modules as it goes: it must be able to read them
    (not so for a checkout under a /tmp of mode 700)."""
    from tasktop import cli, probe
    from tasktop.client.attach import _readable_by

    for package in (cli, probe):  # what tasktop runs, and what a process it attaches to imports
        if not _readable_by(os.path.dirname(package.__file__), NOBODY, {NOBODY}):
            pytest.skip("user nobody cannot read this tasktop installation")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges to another user")
def test_attach_refuses_another_users_process(plain, sockdir, tmp_path):
    """tasktop run as user nobody, against a process of root."""
    skip_unless_nobody_reads_tasktop()
    proc = plain(IDLE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env["TASKTOP_DIR"] = str(tmp_path / "nobody")
    done = subprocess.run([sys.executable, "-c", AS_NOBODY, str(proc.pid)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.strip() == (f"tasktop: error: process {proc.pid} belongs to user root, not to you: "
                                   f"run tasktop as that user or as root (sudo tasktop attach {proc.pid})")
    assert "tasktop-probe" not in ask(proc, "state")


# -- ptrace not allowed: exercised against the real kernel ------------------------------------------
# A target that runs as user nobody (it drops root itself, after its imports, since nobody
# cannot read this machine's Pythons) and sets its dumpable flag: not dumpable, the kernel
# refuses ptrace and memory reads to everybody without CAP_SYS_PTRACE, as Yama would.
AS_NOBODY_TARGET = r'''
import asyncio, ctypes, os, sys
os.setgid(65534)
os.setgroups([])
os.setuid(65534)
if ctypes.CDLL(None, use_errno=True).prctl(4, int(sys.argv[1]), 0, 0, 0) != 0:  # PR_SET_DUMPABLE
    sys.exit("prctl failed")
async def main():
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
'''
# The ways in, tried as user nobody against the target: what the kernel says to each.
TRY_AS_NOBODY = AS_NOBODY.replace("sys.exit(cli.main([\"attach\", sys.argv[1]]))", r'''
pid, exe = int(sys.argv[1]), sys.argv[2]
tries = [("ptrace", lambda: inject.ptrace_run(pid, "pass", timeout=2))]
if sys.argv[3] == "remote":
    tries.append(("remote_exec", lambda: inject.remote_exec(pid, "/nonexistent.py", (3, 14), exe)))
for name, call in tries:
    try:
        call()
        print(name, "ran")
    except inject.PtraceRefused:
        print(name, "refused")
    except inject.InjectError as exc:
        print(name, "error:", exc)
print(processes.ptrace_denied(processes.describe(pid)))
''')


@pytest.fixture
def nobody_target(tmp_path):
    """``nobody_target(exe, dumpable)``: an idle asyncio process of user nobody."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start a process as another user")
    started = []

    def _start(exe: str, dumpable: int) -> subprocess.Popen:
        script = tmp_path / "nobody_target.py"
        script.write_text(AS_NOBODY_TARGET)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKTOP", "PYTHON"))}
        proc = subprocess.Popen([exe, str(script), str(dumpable)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, cwd="/")
        started.append(proc)
        line = proc.stdout.readline()
        assert "ready" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        return proc

    yield _start
    for proc in started:
        proc.kill()
        proc.communicate(timeout=10)


def as_nobody(script: str, *args: str, tmp_path) -> subprocess.CompletedProcess:
    skip_unless_nobody_reads_tasktop()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env["TASKTOP_DIR"] = str(tmp_path / "nobody")
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd="/")


@pytest.mark.parametrize("version", [tuple(sys.version_info[:2]), (3, 14)], ids=lambda v: f"{v[0]}.{v[1]}")
def test_attach_refuses_a_process_that_is_not_dumpable(version, nobody_target, tmp_path):
    """Its own user may not trace it: one line naming the cause, and root as the remedy; the
    kernel itself refuses every way in, and the explanation after the fact says the same."""
    exe = need(version)
    proc = nobody_target(exe, 0)
    done = as_nobody(AS_NOBODY, str(proc.pid), tmp_path=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.strip() == (
        f"tasktop: error: process {proc.pid} is not dumpable (it called prctl(PR_SET_DUMPABLE, 0), or changed "
        f"its user or capabilities), so only root may trace it: sudo tasktop attach {proc.pid}, or start it "
        f"with TASKTOP=1")
    tried = as_nobody(TRY_AS_NOBODY, str(proc.pid), exe, "remote" if version >= (3, 14) else "",
                      tmp_path=tmp_path)
    assert tried.returncode == 0, tried.stderr
    lines = tried.stdout.splitlines()
    assert lines[:-1] == ["ptrace refused"] + (["remote_exec refused"] if version >= (3, 14) else [])
    assert lines[-1].startswith(f"process {proc.pid} is not dumpable")
    assert proc.poll() is None


@pytest.mark.skipif(not shutil.which("setpriv"), reason="no setpriv (util-linux) to drop CAP_SYS_PTRACE")
def test_root_without_cap_sys_ptrace_is_refused_another_users_process(nobody_target, sockdir):
    """As root with CAP_SYS_PTRACE dropped from its bounding set (as in a container)."""
    proc = nobody_target(sys.executable, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env["TASKTOP_DIR"] = sockdir
    done = subprocess.run(["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace", "--",
                           *tasktop_cmd(), "attach", str(proc.pid)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.strip() == (
        f"tasktop: error: tasktop runs as root but without the CAP_SYS_PTRACE capability, which tracing process "
        f"{proc.pid} of user nobody needs (a container, or capabilities dropped): give it CAP_SYS_PTRACE "
        f"(docker run --cap-add SYS_PTRACE, or setcap cap_sys_ptrace+ep on tasktop's Python), or run tasktop "
        f"as user nobody")
    assert not os.path.exists(paths.socket_path(proc.pid, sockdir))


OTHER_PROBE = r'''
import os, socket, struct, sys, msgpack
path = os.path.join(sys.argv[1], "%d.sock" % os.getpid())
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(1)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    conn.recv(1024)
    reply = msgpack.packb({"ok": False, "error": "protocol version 1 is not supported (probe speaks 2)"})
    conn.sendall(struct.pack(">I", len(reply)) + reply)
    conn.close()
'''


def test_attach_says_when_the_process_has_a_probe_of_another_version(sockdir, tmp_path):
    script = tmp_path / "other.py"
    script.write_text(OTHER_PROBE)
    proc = subprocess.Popen([sys.executable, str(script), sockdir], stdout=subprocess.PIPE, text=True)
    try:
        assert "ready" in proc.stdout.readline()
        line = refused(str(proc.pid), sockdir=sockdir)
    finally:
        proc.kill()
        proc.wait()
    assert "the process already has a probe of another tasktop version" in line
    assert "probe speaks 2" in line and "use the tasktop it was started with" in line


# -- safety: attach and detach 50 times to a server under steady load ------------------------------
SERVER = r'''
import asyncio, hashlib

async def serve(reader, writer):
    line = await reader.readline()
    n = int(line.split()[1])
    writer.write(b"pong %d %s\n" % (n, hashlib.sha256(b"%d" % n).hexdigest().encode()))
    await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
'''


class Load:
    """A client thread making requests one after another, each on a new connection (so the
    server makes a task for each), checking every answer; ``pause`` seconds after each."""

    def __init__(self, port: int, pause: float = 0.0) -> None:
        import threading

        self.port, self.pause, self.done, self.wrong, self.failed = port, pause, 0, [], []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import hashlib
        import socket

        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                    sock.sendall(b"ping %d\n" % n)
                    answer = sock.makefile("rb").readline()
            except OSError as exc:
                self.failed.append(f"request {n}: {exc}")
                continue
            if answer != b"pong %d %s\n" % (n, hashlib.sha256(b"%d" % n).hexdigest().encode()):
                self.wrong.append((n, answer))
            self.done += 1
            self.stopping.wait(self.pause)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(30)


# Through ptrace injection (the tool's Python, 3.14, 3.15) and through sys.remote_exec (3.14,
# 3.15).  The steady load keeps a 3.14+ server serving the request itself; with a pause of
# about WAKE_AFTER between requests its main thread is idle when tasktop looks, and a request
# may come in just as ptrace wakes it, both ways at once.
@pytest.mark.parametrize("version, pause, via", [
    (tuple(sys.version_info[:2]), 0.0, "auto"), ((3, 14), 0.0, "auto"), ((3, 15), 0.0, "auto"),
    ((3, 14), 0.0, "remote-exec"), ((3, 15), 0.0, "remote-exec"),
    ((3, 14), 0.25, "remote-exec"), ((3, 15), 0.25, "remote-exec")],
    ids=["tool-steady", "3.14-steady", "3.15-steady", "3.14-remote-exec-steady", "3.15-remote-exec-steady",
         "3.14-remote-exec-paced", "3.15-remote-exec-paced"])
def test_fifty_attaches_under_load_lose_no_request(version, pause, via, sockdir, tmp_path, monkeypatch):
    from tasktop.client import attach

    monkeypatch.setenv("TASKTOP_DIR", sockdir)
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKTOP", "PYTHON"))}
    server = subprocess.Popen([need(version), str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
    try:
        port = int(server.stdout.readline().split()[1])
        load = Load(port, pause)
        wait_until(lambda: load.done > 3, message="the load to start")
        try:
            for _ in range(50):
                before = load.done
                assert not attach.attach(server.pid, via=via).already
                assert attach.detach(server.pid)
                wait_until(lambda: load.done > before, message="a request served after this detach")
            # No sys.remote_exec request is left pending (3.14+): one served now would find its
            # script gone and print "Can't open debugger script" on the server's stderr.
            os.unlink(os.path.join(sockdir, "attach.py"))
            before = load.done
            wait_until(lambda: load.done > before + 3, message="requests served after the last detach")
        finally:
            load.stop()
        assert load.failed == [] and load.wrong == []
        assert load.done > 50
        assert server.poll() is None
    finally:
        server.kill()
        _out, err = server.communicate(timeout=10)
    assert (_without_namedtuple_refusals(err) if via == "remote-exec" else err) == ""


def _without_namedtuple_refusals(err: str) -> str:
    """``err`` without CPython's own report of a sys.remote_exec request it served inside a
    namedtuple's ``__new__``, whose globals have empty builtins, so that opening the script
    could not import (README): why ``auto`` injects by ptrace on 3.14+ too."""
    report = ("Can't open debugger script {path}:\nTraceback (most recent call last):\n"
              '  File "<string>", line 1, in <lambda>\nKeyError: \'__import__\'\n')
    return re.sub(re.escape(report).replace(re.escape("{path}"), r"\S+"), "", err)


def _drop_to_nobody() -> None:
    os.setgid(NOBODY)
    os.setgroups([])
    os.setuid(NOBODY)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")
def test_root_attaches_to_another_users_process(sockdir, tmp_path, monkeypatch):
    """The probe's socket goes to that user's directory, with a link in root's.  Where the
    temporary directory is closed to that user (``/tmp`` of mode 700), attaching says so in one
    line, and works with ``TMPDIR`` set to one they can reach."""
    from tasktop.client.attach import _readable_by

    exe = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else python((3, 11))
    if exe is None or not _readable_by(exe, NOBODY, {NOBODY}):
        pytest.skip("no Python that user nobody can run")
    skip_unless_nobody_reads_tasktop()
    import tempfile

    where = tempfile.mkdtemp(prefix="tt-nobody-", dir=SHARED_TMP)  # pytest's tmp_path is root's alone
    os.chmod(where, 0o755)
    script = os.path.join(where, "idle.py")
    with open(script, "w") as fh:
        fh.write(IDLE)
    os.chmod(script, 0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKTOP", "PYTHON"))}
    proc = subprocess.Popen([exe, script], preexec_fn=_drop_to_nobody, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/", env=env)
    try:
        assert "ready" in proc.stdout.readline()
        closed = tempfile.mkdtemp(prefix="tt-closed-", dir=where)  # mode 700
        monkeypatch.setenv("TMPDIR", closed)
        done = tasktop("attach", str(proc.pid), sockdir=sockdir)
        assert done.returncode == 1 and re.fullmatch(
            rf"tasktop: error: process {proc.pid} runs as user nobody, who cannot reach "
            rf"{re.escape(closed)}/tasktop-lib-0-[0-9a-f]{{12}}/lib \(tasktop's files for it, in {re.escape(closed)}\): "
            rf"set TMPDIR to a directory every user can reach, such as /var/tmp, and try again\n", done.stderr), done.stderr
        monkeypatch.setenv("TMPDIR", SHARED_TMP)
        done = tasktop("attach", str(proc.pid), sockdir=sockdir)
        assert done.returncode == 0, done.stderr
        link = paths.socket_path(proc.pid, sockdir)
        assert os.path.islink(link) and os.stat(os.path.realpath(link)).st_uid == NOBODY
        assert sum(g["count"] for g in task_groups(link)) == 4
        assert tasktop("detach", str(proc.pid), sockdir=sockdir).returncode == 0
        assert not os.path.lexists(link)
    finally:
        proc.kill()
        _out, err = proc.communicate(timeout=10)
        shutil.rmtree(where, ignore_errors=True)
    assert err == ""


def test_dump_inject_attaches_first(plain, sockdir):
    proc = plain(IDLE)
    done = tasktop("dump", str(proc.pid), "--inject", "--no-verdicts", sockdir=sockdir)
    assert done.returncode == 0, done.stderr
    assert "3 tasks: Event.wait" in done.stdout and "created before the probe started  ×3" in done.stdout
    assert os.path.exists(paths.socket_path(proc.pid, sockdir))  # the probe stays, as after attach
    assert tasktop("detach", str(proc.pid), sockdir=sockdir).returncode == 0
