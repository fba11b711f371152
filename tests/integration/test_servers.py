"""The probe inside real servers, started with ``TASKTOP=1`` and nothing else.

Each server runs an application whose handler leaks one task per ``/leak`` request.  Every
server is run twice, without the probe and with it, and must behave the same: the same
responses, the same exit code after the same signals, no new complaint on stderr.  With the
probe, every process of the server has its own socket; the dump of each worker holds exactly
the tasks leaked by the requests that worker served (the ``x-worker`` response header says
which one), created on the handler's line; and no socket is left behind once the server has
stopped.  Only 127.0.0.1 is used, on a port the kernel picked.
"""
from __future__ import annotations

import collections
import http.client
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pytest

from conftest import target_env, wait_until
from tasktop.wire import paths
from tasktop.client.probe_client import ProbeClient

psutil = pytest.importorskip("psutil")

REQUESTS = 20  # per batch: enough to reach both workers, cheap on 2 cores

ASGI_APP = '''\
import asyncio, os

LEAKED = []


async def handle_request(scope, receive, send):
    if scope["path"] == "/leak":
        LEAKED.append(asyncio.create_task(asyncio.Event().wait()))  # LEAK
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"x-worker", str(os.getpid()).encode())]})
    await send({"type": "http.response.body", "body": ("hello " + scope["path"]).encode()})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        await handle_request(scope, receive, send)
'''

AIOHTTP_APP = '''\
import asyncio, os, sys
import uvloop
from aiohttp import web

LEAKED = []


async def handle_request(request):
    if request.path == "/leak":
        LEAKED.append(asyncio.create_task(asyncio.Event().wait()))  # LEAK
    return web.Response(text="hello " + request.path, headers={"x-worker": str(os.getpid())})


app = web.Application()
app.router.add_get("/{tail:.*}", handle_request)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), loop=uvloop.new_event_loop(),
            print=None)
'''

# A line of stderr that would mean trouble: the probe speaking, or anything failing.
SUSPICIOUS = re.compile(r"tasktop|traceback|warning|error|exception", re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str) -> tuple[int, str, int]:
    """(status, body, worker pid) of one request on its own connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode(), int(response.getheader("x-worker", "0"))
    finally:
        conn.close()


def leak_line(source: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if line.endswith("# LEAK"))


@dataclass
class Run:
    """One run of a server, with or without the probe."""

    proc: subprocess.Popen
    port: int
    sockdir: str
    probe: bool
    responses: list = field(default_factory=list)
    served: collections.Counter = field(default_factory=collections.Counter)

    def tree(self) -> set[int]:
        """The server's processes that are alive (zombies excluded)."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            return set()
        alive = set()
        for proc in procs:
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.add(proc.pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    def workers(self) -> set[int]:
        """Processes that serve requests: the children that are not multiprocessing helpers,
        or the server itself when it has no children."""
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return set()
        found = set()
        for child in children:
            try:
                if "resource_tracker" not in " ".join(child.cmdline()):
                    found.add(child.pid)
            except psutil.NoSuchProcess:
                pass
        return found or {self.proc.pid}

    def sockets(self) -> set[int]:
        return {pid for pid, _path in paths.list_sockets(self.sockdir)}

    def wait_up(self, workers: int) -> set[int]:
        """Wait until ``workers`` workers serve and (with the probe) every process has a socket."""
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.communicate()[1]}")
            found = self.workers()
            if len(found) != workers or get(self.port, "/ready")[0] != 200:
                return None
            if self.probe and not (self.tree() <= self.sockets() and all(map(self.serving, found))):
                return None
            return found
        return wait_until(up, timeout=30, message=f"{workers} workers up")

    def serving(self, pid: int) -> bool:
        """Whether the worker runs its event loop (so the server's own signal handlers are set):
        one still starting when SIGTERM comes dies of it and cannot remove its probe socket."""
        try:
            with ProbeClient(paths.socket_path(pid, self.sockdir), timeout=5) as client:
                return client.request("summary")["totals"]["loops"] >= 1
        except Exception:
            return False

    def batch(self, count: int) -> None:
        for _ in range(count):
            status, body, pid = get(self.port, "/leak")
            self.responses.append((status, body))
            self.served[pid] += 1

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
            raise AssertionError(f"server did not stop on {sig!r}: {err}")
        return self.proc.returncode, err


def leaked(sockdir: str, pid: int, source_path: str, line: int) -> int:
    """Tasks of ``pid`` created on the leak line, from its own dump."""
    with ProbeClient(paths.socket_path(pid, sockdir), timeout=15) as client:
        data = client.full()
    assert data["process"]["pid"] == pid, "a worker's socket must serve that worker"
    count = 0
    for task in data["tasks"]:
        created = task["created_by"] or []
        if any(f["func"] == "handle_request" and f["file"] == source_path and f["line"] == line
               for f in created):
            assert created[0]["func"] == "handle_request"
            count += 1
    return count


def check_leaks(run: Run, source_path: str, line: int) -> None:
    """Every process's dump holds exactly the tasks its requests leaked: summed over all of
    them, exactly one per request of the batch."""
    def counts() -> dict:
        found = {pid: leaked(run.sockdir, pid, source_path, line) for pid in run.tree()}
        return {pid: n for pid, n in found.items() if n}
    served = dict(run.served)
    try:
        wait_until(lambda: counts() == served, timeout=15, message="leaked tasks in the dumps")
    except AssertionError:
        raise AssertionError(f"leaked tasks per process {counts()}, requests served {served}")
    assert sum(counts().values()) == sum(run.served.values())


def suspicious(stderr: str) -> set[str]:
    return {re.sub(r"\d+", "N", line) for line in stderr.splitlines() if SUSPICIOUS.search(line)}


class Harness:
    def __init__(self, tmp_path, sockdir: str) -> None:
        self.tmp_path = tmp_path
        self.sockdir = sockdir
        self.runs: list[Run] = []

    def start(self, argv: list[str], probe: bool, port: int) -> Run:
        env = target_env(self.sockdir)
        if not probe:
            env["TASKTOP"] = "0"
        proc = subprocess.Popen(argv, cwd=str(self.tmp_path), env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        run = Run(proc, port, self.sockdir, probe)
        self.runs.append(run)
        return run

    def close(self) -> None:
        for run in self.runs:
            if run.proc.poll() is None:
                for pid in run.tree() - {run.proc.pid}:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                run.proc.kill()
                run.proc.communicate()


@pytest.fixture
def harness(tmp_path, sockdir):
    h = Harness(tmp_path, sockdir)
    yield h
    h.close()


def write(harness: Harness, name: str, source: str) -> str:
    path = harness.tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def compare(plain: Run, probed: Run, plain_end: tuple, probed_end: tuple) -> None:
    """The server behaved the same with the probe, and left no socket behind."""
    (plain_code, plain_err), (code, err) = plain_end, probed_end
    assert probed.responses == plain.responses
    assert code == plain_code, f"exit code {code}, without the probe {plain_code}: {err}"
    assert suspicious(err) <= suspicious(plain_err), err
    # A worker the server killed (SIGKILL: no code of it runs) cannot remove its socket.
    killed = killed_by_server(err)
    try:
        wait_until(lambda: probed.sockets() <= killed, timeout=30, message="no socket left behind")  # workers exit slowly under load
    except AssertionError:
        left = sorted(probed.sockets() - killed)
        raise AssertionError(f"probe sockets left behind by processes that have exited: {left}")


def killed_by_server(err: str) -> set:
    """Workers the server says it killed: uvicorn's supervisor kills a worker that does not
    answer its health check within 5 s (a loaded machine), gunicorn one past its timeout."""
    found = re.findall(r"Child process \[(\d+)\] died|Worker \(pid:(\d+)\) was sent SIGKILL", err)
    return {int(a or b) for a, b in found}


def test_uvicorn_workers(harness) -> None:
    """``uvicorn --workers 2``: spawned worker processes, each with its own probe."""
    pytest.importorskip("uvicorn")
    app = write(harness, "leakapp.py", ASGI_APP)
    ends = {}
    runs = {}
    for probe in (False, True):
        port = free_port()
        run = harness.start([sys.executable, "-m", "uvicorn", "leakapp:app", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2", "--no-access-log"], probe, port)
        workers = run.wait_up(2)
        run.batch(REQUESTS)
        if probe:
            assert run.tree() == run.sockets()  # every process has its probe, and no other
            assert set(run.served) <= workers
            check_leaks(run, app, leak_line(ASGI_APP))
        ends[probe] = run.stop(signal.SIGTERM)
        runs[probe] = run
    compare(runs[False], runs[True], ends[False], ends[True])


def _uvicorn_worker_class() -> str:
    """The worker class from ``uvicorn-worker``, its maintained home, else the one that
    uvicorn still ships (deprecated since 0.30)."""
    if importlib.util.find_spec("uvicorn_worker") is not None:
        return "uvicorn_worker.UvicornWorker"
    pytest.importorskip("uvicorn.workers")
    return "uvicorn.workers.UvicornWorker"


def test_gunicorn_uvicorn_workers_and_reload(harness) -> None:
    """gunicorn forks 2 ``UvicornWorker`` workers; SIGHUP replaces them; SIGTERM stops it all."""
    pytest.importorskip("gunicorn")
    worker_class = _uvicorn_worker_class()
    app = write(harness, "leakapp.py", ASGI_APP)
    ends = {}
    runs = {}
    for probe in (False, True):
        port = free_port()
        run = harness.start([sys.executable, "-m", "gunicorn", "leakapp:app", "-w", "2",
                             "-k", worker_class, "-b", f"127.0.0.1:{port}",
                             "--graceful-timeout", "5"], probe, port)
        first = run.wait_up(2)
        master = run.proc.pid
        run.batch(REQUESTS)
        if probe:
            assert run.tree() == run.sockets() == first | {master}
            check_leaks(run, app, leak_line(ASGI_APP))
        # Graceful reload: new workers are forked from the master, the old ones leave.
        run.proc.send_signal(signal.SIGHUP)
        second = wait_until(lambda: (lambda w: w if len(w) == 2 and not w & first else None)(
            run.workers()), timeout=30, message="workers replaced after SIGHUP")
        second = run.wait_up(2)
        assert not second & first
        if probe:
            wait_until(lambda: run.sockets() == run.tree() == second | {master}, timeout=15,
                       message="old workers' sockets gone, new workers' sockets there")
            with ProbeClient(paths.socket_path(master, run.sockdir)) as client:
                assert client.request("summary")["process"]["pid"] == master
        run.served.clear()
        run.batch(REQUESTS // 2)
        if probe:
            check_leaks(run, app, leak_line(ASGI_APP))
        ends[probe] = run.stop(signal.SIGTERM)
        runs[probe] = run
    compare(runs[False], runs[True], ends[False], ends[True])


def test_aiohttp_run_app_on_uvloop(harness) -> None:
    """``aiohttp.web.run_app`` on a uvloop loop, in one process."""
    pytest.importorskip("aiohttp")
    pytest.importorskip("uvloop")
    app = write(harness, "leakserver.py", AIOHTTP_APP)
    ends = {}
    runs = {}
    for probe in (False, True):
        port = free_port()
        run = harness.start([sys.executable, app, str(port)], probe, port)
        run.wait_up(1)
        run.batch(REQUESTS)
        if probe:
            assert run.sockets() == {run.proc.pid}
            with ProbeClient(paths.socket_path(run.proc.pid, run.sockdir)) as client:
                loops = client.request("summary")["loops"]
            assert [loop["type"] for loop in loops] == ["uvloop.Loop"]
            check_leaks(run, app, leak_line(AIOHTTP_APP))
        ends[probe] = run.stop(signal.SIGTERM)
        runs[probe] = run
    compare(runs[False], runs[True], ends[False], ends[True])
