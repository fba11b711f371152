"""``tasktop exporter`` end to end: real probed targets, the exporter as a real process on a free
loopback port, ``/metrics`` scraped over HTTP and parsed with prometheus_client's own parser, and
the numbers checked against what the targets are known to be doing.  (The options and the
command label are in unit/test_exporter_options.py.)"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import wait_until
from tasktop import wire
from support.exporter_args import exporter_args
from tasktop.exporter import collector, server

# 5 tasks on asyncio.Queue.get, 2 threads on a threading.Lock.
QUEUE_AND_LOCK = r'''
import asyncio, threading

lock = threading.Lock()
lock.acquire()

def hold():
    with lock:
        pass

async def consume(q):
    await q.get()

async def main():
    q = asyncio.Queue()
    tasks = [asyncio.create_task(consume(q)) for _ in range(5)]
    for i in range(2):
        threading.Thread(target=hold, name=f"holder-{i}", daemon=True).start()
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''

# 3 tasks on asyncio.Event.wait, 1 thread on queue.Queue.get, and one stall of the loop.
EVENT_AND_STALL = r'''
import asyncio, gc, queue, threading, time

q = queue.Queue()

async def wait_for(event):
    await event.wait()

async def fail():
    raise KeyError("unread")

async def main():
    event = asyncio.Event()
    tasks = [asyncio.create_task(wait_for(event)) for _ in range(3)]
    asyncio.create_task(wait_for(asyncio.Event()))  # kept by nothing: lost
    asyncio.create_task(fail())  # its exception is never retrieved
    threading.Thread(target=q.get, name="taker", daemon=True).start()
    await asyncio.sleep(0.3)  # the probe has seen the loop
    gc.collect()
    time.sleep(0.6)           # blocks the loop: one stall
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''


# -- helpers ------------------------------------------------------------------------------------------------
class Exporter:
    """``python -m tasktop.exporter`` on a free loopback port, reading ``sockdir``."""

    def __init__(self, sockdir: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tasktop.exporter", "--port", "0", "--directory", sockdir, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if "serving http://" not in line:
            self.stop()
            raise AssertionError(f"exporter did not start: {line!r} {self.proc.stderr.read()!r}")
        self.url = line.split("serving ", 1)[1].split()[0]

    def scrape(self) -> "Scrape":
        with urllib.request.urlopen(self.url, timeout=30) as reply:
            assert reply.status == 200
            return Scrape(reply.read().decode())

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            for pipe in (self.proc.stdout, self.proc.stderr):
                pipe.close()


class Scrape:
    """One parsed ``/metrics`` page: samples by name, selected by labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def select(self, name: str, **labels: str) -> list:
        return [s for s in self.samples
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        found = self.select(name, **labels)
        assert len(found) == 1, f"{len(found)} samples of {name} {labels}:\n{self.text}"
        return found[0].value

    def pids(self) -> set[str]:
        return {s.labels["pid"] for s in self.samples if "pid" in s.labels}


@pytest.fixture
def start_exporter(sockdir):
    started: list[Exporter] = []

    def _start(*args: str) -> Exporter:
        started.append(Exporter(sockdir, *args))
        return started[-1]

    yield _start
    for exp in started:
        if exp.proc.poll() is None:
            exp.stop()


def by_state(summary: dict, kind: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for group in summary["groups"]:
        if group["kind"] == kind:
            out[group["state"]] = out.get(group["state"], 0) + group["count"]
    return out


def queue_group(summary: dict) -> dict:
    return next(g for g in summary["groups"] if g["kind"] == "task" and g["state"] == "Queue.get")


# -- tests ----------------------------------------------------------------------------------------------------
def test_metrics_match_what_the_targets_do(spawn, start_exporter):
    a = spawn(QUEUE_AND_LOCK)
    b = spawn(EVENT_AND_STALL, TASKTOP_STALL_MS="200")
    wait_until(lambda: b.summary()["loops"][0]["stall_count"] >= 1, message="the stall of target 1")
    exp = start_exporter("--timeout", "10")

    before_a, before_b = a.summary(), b.summary()
    m = exp.scrape()
    after_a, after_b = a.summary(), b.summary()
    pa, pb = str(a.pid), str(b.pid)

    assert m.pids() == {pa, pb}
    assert m.value("tasktop_process_up", pid=pa, command="target0.py") == 1
    assert m.value("tasktop_process_up", pid=pb, command="target1.py") == 1
    assert m.value("tasktop_scrape_errors_total") == 0

    # tasks and threads by state: what the targets are doing
    assert m.value("tasktop_tasks", pid=pa, state="Queue.get") == 5
    assert m.value("tasktop_threads", pid=pa, state="Lock.acquire") == 2
    assert m.value("tasktop_tasks", pid=pb, state="Event.wait") == 3
    assert m.value("tasktop_threads", pid=pb, state="Queue.get") == 1
    for target, summary in ((pa, before_a), (pb, before_b)):
        for kind in ("task", "thread"):
            exported = sum(s.value for s in m.select(f"tasktop_{kind}s", pid=target))
            assert exported == summary["totals"][kind + "s"]
    assert not m.select("tasktop_tasks", pid=pa, state="Event.wait")

    # the largest group of target 0, labelled with its stable id and the user's frame
    group = queue_group(before_a)
    labels = dict(pid=pa, group=group["id"], kind="task", state="Queue.get")
    (members,) = m.select("tasktop_group_members", **labels)
    assert members.value == 5
    line = next(n for n, text in enumerate(open(a.script), 1) if "await q.get()" in text)
    assert members.labels["where"] == f"consume (target0.py:{line})"
    blocked = m.value("tasktop_group_blocked_max_seconds", **labels)
    assert group["blocked_max_s"] <= blocked <= queue_group(after_a)["blocked_max_s"]
    assert len(m.select("tasktop_group_members", pid=pa)) == len(before_a["groups"])  # fewer than --top

    # memory and event loops
    assert m.value("tasktop_rss_bytes", pid=pa) > 1 << 20
    assert m.value("tasktop_process_start_time_seconds", pid=pb) == pytest.approx(
        before_b["process"]["started_at"])
    for target in (pa, pb):
        assert m.value("tasktop_loop_lag_seconds", pid=target, loop="1", thread="MainThread") >= 0
    stalls = m.value("tasktop_loop_stalls_total", pid=pb, loop="1", thread="MainThread")
    assert 1 <= before_b["loops"][0]["stall_count"] <= stalls <= after_b["loops"][0]["stall_count"]
    assert m.families["tasktop_loop_stalls"].type == "counter"
    assert m.families["tasktop_tasks"].type == "gauge"

    # a target that exits is gone from the next scrape (its socket stays: SIGTERM skips clean-up)
    b.stop()
    m = exp.scrape()
    assert m.pids() == {pa}
    assert m.value("tasktop_tasks", pid=pa, state="Queue.get") == 5
    assert m.value("tasktop_scrape_errors_total") == 0

    assert exp.stop(signal.SIGTERM) == 0


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
def test_metric_names_pass_promtool(spawn, start_exporter):
    """A real scrape passes Prometheus' own linter (``promtool check metrics``): no ``_count``
    suffix on a gauge, ``_total`` on every counter, base units."""
    b = spawn(EVENT_AND_STALL, TASKTOP_STALL_MS="200")
    wait_until(lambda: b.summary()["loops"][0]["stall_count"] >= 1, message="the stall of the target")
    text = start_exporter("--timeout", "10").scrape().text
    # promtool drops families without samples unseen, so every family must have some here.
    m = Scrape(text)
    assert [name for name, family in m.families.items() if not family.samples] == []
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    said = (lint.stdout + lint.stderr).strip()
    assert lint.returncode == 0 and not said, f"promtool check metrics (exit {lint.returncode}):\n{said}\n\n{text}"


def test_unreachable_sockets_do_not_break_the_scrape(spawn, sockdir, start_exporter):
    a = spawn(QUEUE_AND_LOCK)
    # A live process whose "probe" accepts nothing and never answers: up 0, an error.
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(os.path.join(sockdir, f"{os.getpid()}.sock"))
    hung.listen(8)
    # A live pid with a socket nobody listens on (a stale socket, the pid reused): skipped.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deaf.bind(os.path.join(sockdir, f"{sleeper.pid}.sock"))
    # The socket of a process that died: skipped.  And a file that is no probe socket at all.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    open(os.path.join(sockdir, f"{dead.pid}.sock"), "w").close()
    open(os.path.join(sockdir, "notes.sock"), "w").close()
    try:
        exp = start_exporter("--timeout", "0.5")
        m = exp.scrape()
        assert m.pids() == {str(a.pid), str(os.getpid())}
        assert m.value("tasktop_process_up", pid=str(a.pid)) == 1
        assert m.value("tasktop_tasks", pid=str(a.pid), state="Queue.get") == 5
        (hung_up,) = m.select("tasktop_process_up", pid=str(os.getpid()))
        assert hung_up.value == 0 and hung_up.labels["command"]
        assert not m.select("tasktop_tasks", pid=str(os.getpid()))
        assert m.value("tasktop_scrape_errors_total") == 1
        assert exp.scrape().value("tasktop_scrape_errors_total") == 2  # a counter: it adds up
        assert exp.stop() == 0
    finally:
        hung.close()
        deaf.close()
        sleeper.kill()
        sleeper.wait()


def test_a_summary_it_cannot_read_costs_that_process_only(spawn, sockdir):
    """A probe of another tasktop version could send what this exporter does not expect."""
    a = spawn(QUEUE_AND_LOCK)
    odd = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    odd.bind(os.path.join(sockdir, f"{os.getpid()}.sock"))
    odd.listen(1)
    odd.settimeout(20)

    def answer_once() -> None:
        conn, _ = odd.accept()
        with conn:
            wire.read_frame(conn, 10)
            wire.write_frame(conn, {"ok": True, "version": wire.VERSION, "pid": os.getpid()}, 10)
            wire.read_frame(conn, 10)
            wire.write_frame(conn, {"ok": True, "data": {
                "process": {"argv": ["/srv/odd.py"]},
                "groups": [{"kind": "task", "state": "sleep", "count": "many"}]}}, 10)

    probe = threading.Thread(target=answer_once, daemon=True)
    probe.start()
    try:
        families = {f.name: f for f in collector.FleetCollector([sockdir], timeout=10).collect()}
    finally:
        probe.join(20)
        odd.close()
    up = {s.labels["pid"]: (s.labels["command"], s.value) for s in families["tasktop_process_up"].samples}
    assert up == {str(a.pid): ("target0.py", 1), str(os.getpid()): ("odd.py", 0)}
    assert {s.labels["pid"] for s in families["tasktop_tasks"].samples} == {str(a.pid)}
    assert families["tasktop_scrape_errors"].samples[0].value == 1


def test_no_targets_and_sigint(start_exporter):
    exp = start_exporter()
    m = exp.scrape()
    assert m.pids() == set()
    assert m.value("tasktop_scrape_errors_total") == 0
    assert "tasktop_process_up" in m.families  # described, with no samples
    assert not any(s.name.startswith(("process_", "python_")) for s in m.samples)  # only ours
    assert exp.stop(signal.SIGINT) == 0


def test_top_limits_group_series(spawn, sockdir):
    a = spawn(QUEUE_AND_LOCK)

    def groups(top: int) -> list:
        families = {f.name: f for f in collector.FleetCollector([sockdir], top=top).collect()}
        return families["tasktop_group_members"].samples

    (largest,) = groups(1)
    assert largest.labels["state"] == "Queue.get" and largest.value == 5
    assert groups(0) == []
    assert len(groups(100)) == len(a.summary()["groups"])


def test_port_in_use_is_a_one_line_error(sockdir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(server.ExporterError) as info:
            server.run(exporter_args(port=port, directory=[sockdir]))
    assert str(info.value) == f"cannot serve metrics on 127.0.0.1:{port}: Address already in use"


def test_bad_address_is_a_one_line_error(sockdir):
    # 192.0.2.1 (TEST-NET-1) is no address of this machine; no name look-up is involved.
    with pytest.raises(server.ExporterError) as info:
        server.run(exporter_args(port=0, address="192.0.2.1", directory=[sockdir]))
    assert str(info.value) == "cannot serve metrics on 192.0.2.1:0: Cannot assign requested address"
