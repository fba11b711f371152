"""Shared fixtures: real target processes started with ``TASKTOP=1``, and waiting without sleeps."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any, Callable

import pytest

from tasktop.wire import paths
from tasktop.client.probe_client import ProbeClient, ProbeError, ProbeUnavailable


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (ProbeUnavailable, ProbeError, OSError, KeyError, IndexError) as exc:
            last_exc, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}" + (f" (last error: {last_exc})" if last_exc else ""))


def task_counts(data: dict) -> dict[str, int]:
    """Tasks per function of their group's outermost frame, in a summary."""
    out: dict[str, int] = {}
    for g in data["groups"]:
        if g["kind"] == "task":
            func = g["stack"][-1]["func"].split(".")[-1]
            out[func] = out.get(func, 0) + g["count"]
    return out


class Target:
    """A real Python process with the probe enabled by the environment variable."""

    def __init__(self, proc: subprocess.Popen, directory: str, script: str) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.directory = directory
        self.script = script
        self.path = paths.socket_path(proc.pid, directory)

    def client(self) -> ProbeClient:
        return ProbeClient(self.path, timeout=15.0)

    def request(self, op: str, **args: Any) -> Any:
        with self.client() as c:
            return c.request(op, **args)

    def full(self) -> dict:
        with self.client() as c:
            return c.full()

    def summary(self) -> dict:
        return self.request("summary")

    def wait_ready(self, timeout: float = 20.0) -> "Target":
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        self.ready_line = line
        if "ready" not in line:
            out, err = self.proc.communicate(timeout=5) if self.proc.poll() is not None else ("", "")
            raise AssertionError(f"target did not start: {line!r} {out!r} {err!r}")
        wait_until(lambda: os.path.exists(self.path), timeout, message=f"probe socket {self.path}")
        return self

    def groups(self, data: dict | None = None, kind: str = "task") -> list[dict]:
        data = data or self.summary()
        return [g for g in data["groups"] if g["kind"] == kind]

    def task_counts(self, data: dict | None = None) -> dict[str, int]:
        return task_counts(data or self.summary())

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            # Killed, or a grandchild still holds the pipes open: don't wait for their EOF.
            self.proc.kill()
            self.proc.wait()
            out, err = "", ""
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
        return out or "", err or ""


def _shared_tmp() -> str:
    """A directory for sockets that other users can reach (a test connects as ``nobody``):
    ``/tmp``, unless it is closed to them (mode 700 on some machines)."""
    for base in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(base) and all(os.stat(part).st_mode & 0o001 for part in ("/", base)):
            return base
    return "/tmp"


#: Short, for Unix socket paths (~107 bytes at most).
SHARED_TMP = _shared_tmp()


@pytest.fixture
def sockdir():
    # Unix socket paths are limited to ~107 bytes: keep the directory short.
    directory = tempfile.mkdtemp(prefix="tt-", dir=SHARED_TMP)
    os.chmod(directory, 0o700)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def target_env(sockdir: str, **extra: str) -> dict:
    env = dict(os.environ)
    env.update({"TASKTOP": "1", "TASKTOP_DIR": sockdir, "TASKTOP_INTERVAL": "0.2",
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@pytest.fixture
def spawn(sockdir, tmp_path):
    """``spawn(source, **env)``: run ``source`` as a script with the probe on; it must print
    a line containing ``ready`` when the state under test is set up."""
    started: list[Target] = []

    def _spawn(source: str, python: str = sys.executable, args: tuple = (), wait: bool = True,
               **env: str) -> Target:
        script = tmp_path / f"target{len(started)}.py"
        script.write_text(textwrap.dedent(source))
        proc = subprocess.Popen([python, str(script), *args], env=target_env(sockdir, **env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=str(tmp_path))
        target = Target(proc, sockdir, str(script))
        started.append(target)
        return target.wait_ready() if wait else target

    yield _spawn
    for target in started:
        target.stop()


def tasktop_cmd() -> list[str]:
    """The installed ``tasktop`` command of this interpreter's environment."""
    exe = shutil.which("tasktop", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "tasktop.tui"]


def tasktop(*args: str, sockdir: str | None = None, text: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run the ``tasktop`` command as a user would, without any TASKTOP_* variable of ours
    (but ``TASKTOP_DIR=sockdir`` when given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    if sockdir:
        env["TASKTOP_DIR"] = sockdir
    return subprocess.run([*tasktop_cmd(), *args], capture_output=True, text=text, env=env,
                          timeout=60, **kw)
