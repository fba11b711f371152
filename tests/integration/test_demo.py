"""The built-in demo target shows every classic leak, each named with the state the probe gives
it, grows steadily, stays deterministic, and leaves quietly on SIGINT/SIGTERM."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from conftest import Target, target_env, wait_until

DEMO = ("-m", "tasktop.demo")


def start_demo(directory: str, *args: str) -> Target:
    """``python -m tasktop.demo --ready ARGS`` with the probe on, as ``tasktop demo`` runs it."""
    proc = subprocess.Popen([sys.executable, *DEMO, "--ready", *args], env=target_env(directory),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = Target(proc, directory, "tasktop.demo")
    try:
        target.wait_ready()
        # The probe watches a loop from its first heartbeat on: until then it reports no tasks.
        wait_until(lambda: target.summary()["totals"]["loops"] == 2, message="both event loops")
        return target
    except BaseException:
        target.stop()
        raise


@pytest.fixture
def demo(sockdir):
    started: list[Target] = []

    def _start(*args: str) -> Target:
        target = start_demo(sockdir, *args)
        started.append(target)
        return target

    yield _start
    for target in started:
        target.stop()


@pytest.fixture(scope="module")
def running():
    """One demo shared by the read-only tests: requests and stalls sped up."""
    directory = tempfile.mkdtemp(prefix="tt-", dir="/tmp")
    os.chmod(directory, 0o700)
    target = start_demo(directory, "--rate", "20", "--stall-every", "1")
    yield target
    target.stop()
    shutil.rmtree(directory, ignore_errors=True)


def names(stack: list[dict]) -> list[str]:
    # 3.11+ reports qualified names (``Mailer.deliver``); older versions the bare name.
    return [frame["func"].rsplit(".", 1)[-1] for frame in stack]


def find_group(data: dict, state: str, func: str, kind: str = "task") -> dict | None:
    for group in data["groups"]:
        if group["kind"] == kind and group["state"] == state and func in names(group["stack"]):
            return group
    return None


def tasks_named(data: dict, prefix: str) -> list[dict]:
    return [t for t in data["tasks"] if (t["name"] or "").startswith(prefix)]


def leaked(data: dict) -> int:
    group = find_group(data, "future", "send_receipt")
    return group["count"] if group else 0


@pytest.mark.parametrize("state, func, count", [
    ("Queue.get", "consume_orders", 8),
    ("Queue.put", "publish_events", 3),
    ("sleep", "refresh_prices", 4),
    ("Event.wait", "wait_for_shutdown", 3),
    ("future", "rebuild_index", 1),
    ("Lock.acquire", "update_inventory", 5),
    ("Condition.wait", "wait_for_settlement", 2),
    ("Event.wait", "fetch_thumbnail", 2),
    ("Semaphore.acquire", "fetch_thumbnail", 2),
    ("gather", "sync_warehouses", 1),
    ("Event.wait", "sync_region", 3),
    ("await task", "generate_invoices", 1),
    ("stream read", "export_ledger", 1),
    ("socket read", "listen_for_invalidations", 1),
    ("sleep", "build_daily_report", 1),
    ("sleep", "serve_requests", 1),
    ("sleep", "flush_metrics", 1),
    ("Queue.get", "collect_gauges", 2),
])
def test_each_leak_is_a_group_with_its_state(running, state, func, count):
    # Tickers are briefly "running" when they wake: wait for a snapshot where all are parked.
    def matches():
        group = find_group(running.summary(), state, func)
        return group is not None and group["count"] == count
    wait_until(matches, message=f"{count} task(s) in {func} with state {state}")


def test_threads_are_stuck_where_the_demo_put_them(running):
    expected = {"ledger-writer-1": "Lock.acquire", "ledger-writer-2": "Lock.acquire",
                "audit-worker": "Queue.get", "replica-reader": "socket read",
                "leader-election": "Event.wait", "metrics-loop": "idle loop",
                **{f"thumbnail_{i}": "executor idle" for i in range(4)}}

    def states():
        found = {t["name"]: t["state"] for t in running.full()["threads"]}
        return {name: found.get(name) for name in expected}
    wait_until(lambda: states() == expected, message=f"thread states {expected}")
    group = find_group(running.summary(), "Lock.acquire", "write_ledger", kind="thread")
    assert group is not None and group["count"] == 2


def test_awaiter_graph_has_edges(running):
    data = running.full()
    (parent,) = tasks_named(data, "sync-warehouses")
    children = [t for t in data["tasks"] if t["id"] in parent["awaiting_all"]]
    assert len(children) == 3
    assert all(names(t["stack"])[-1] == "sync_region" for t in children)
    assert all(t["awaited_by"] == [parent["id"]] and t["created_in"] == parent["id"] for t in children)

    (invoices,) = tasks_named(data, "generate-invoices")
    (export,) = tasks_named(data, "export-ledger")
    assert invoices["awaiting"] == export["id"]
    assert export["awaited_by"] == [invoices["id"]]
    assert export["state"] == "stream read"


def test_two_event_loops(running):
    data = running.full()
    assert data["totals"]["loops"] == 2
    by_thread = {loop["thread_name"]: loop for loop in data["loops"]}
    assert set(by_thread) == {"MainThread", "metrics-loop"}
    metrics = by_thread["metrics-loop"]
    assert metrics["tasks"] == 4
    on_metrics = {names(t["stack"])[-1] for t in data["tasks"] if t["loop"] == metrics["id"]}
    assert on_metrics == {"run_metrics", "flush_metrics", "collect_gauges"}


def test_stall_is_named_by_the_blocking_code(running):
    def stall():
        for loop in running.summary()["loops"]:
            for item in loop["stalls"]:
                if "compress_report" in names(item["stack"]):
                    return loop
        return None
    loop = wait_until(stall, message="a stall in compress_report")
    assert loop["thread_name"] == "MainThread"


def test_requests_leak_one_task_each(running):
    first = wait_until(lambda: leaked(running.summary()), message="leaked receipts")
    wait_until(lambda: leaked(running.summary()) > first, message=f"more than {first} leaked receipts")
    data = running.full()
    (server,) = tasks_named(data, "http-server")
    receipts = tasks_named(data, "receipt-")
    assert receipts and all(t["created_in"] == server["id"] for t in receipts)
    # A receipt made while the dump's pass ran may not have taken its first step yet.
    fresh = [t for t in receipts if t["state"] == "ready"]
    assert all(names(t["stack"]) == ["send_receipt"] for t in fresh)
    parked = [t for t in receipts if t["state"] != "ready"]
    assert len(parked) > len(fresh)
    assert all(t["state"] == "future" and names(t["stack"]) == ["deliver", "send_receipt"] for t in parked)


def test_leaked_receipts_name_their_creation_site(running):
    group = wait_until(lambda: find_group(running.summary(), "future", "send_receipt"))
    assert "handle_request" in names(group["created_by"][0]["stack"])


def test_max_leak_caps_the_growth(demo):
    target = demo("--rate", "50", "--max-leak", "10", "--stall-every", "1")
    wait_until(lambda: leaked(target.summary()) == 10, message="10 leaked receipts")
    # Two more stalls take over a second, in which 50 requests a second would leak dozens.
    stalls = sum(loop["stall_count"] for loop in target.summary()["loops"])
    wait_until(lambda: sum(loop["stall_count"] for loop in target.summary()["loops"]) >= stalls + 2,
               message="two more stalls")
    assert leaked(target.summary()) == 10


def test_same_tasks_and_threads_on_every_run(demo):
    def shape(target: Target) -> tuple:
        data = target.full()
        return (sorted((t["id"], t["name"], names(t["stack"])[-1]) for t in data["tasks"]),
                sorted(t["name"] for t in data["threads"]))
    first, second = demo("--rate", "0"), demo("--rate", "0")
    assert shape(first) == shape(second)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_cleanly(demo, signum):
    target = demo("--rate", "50")
    wait_until(lambda: leaked(target.summary()) > 5, message="some leaked receipts")
    target.proc.send_signal(signum)
    out, err = target.proc.communicate(timeout=30)
    assert (target.proc.returncode, err) == (0, "")
    assert out == ""  # nothing after the ready line
    assert not os.path.exists(target.path)


def test_runs_from_the_standard_library_alone(tmp_path):
    # -S: no site-packages, so neither tasktop nor msgpack is importable; -X dev shows any
    # unclosed socket or transport and any un-awaited coroutine.
    from tasktop.demo import target as module

    proc = subprocess.run([sys.executable, "-S", "-X", "dev", module.__file__, "--ready",
                           "--duration", "1", "--stall-every", "0", "--rate", "50"],
                          capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    # Debug mode also names each step that took over 100 ms: a loaded machine's, not the demo's.
    slow_steps = re.compile(r"^Executing <.*> took \d+\.\d+ seconds\n", re.MULTILINE)
    assert (proc.returncode, slow_steps.sub("", proc.stderr)) == (0, "")
    assert re.fullmatch(r"ready \d+\n", proc.stdout)
