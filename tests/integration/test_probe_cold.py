"""Summaries of tasks no pass has walked yet (a cold probe): quick, exact in their counts, and
filled in by the next passes; complete when asked to be.

Walking a task's await chain costs microseconds, so a summary walks the chains not cached yet
for a limited time only (``task_pass.walk_budget``) and counts the other tasks in pseudo-groups
whose stack is one frame ``(await chain not walked yet)``.  The targets here make that time
one millisecond (``PASS_WITHIN = 0``, ``WALK_AT_LEAST = 0.001``): thousands of tasks are then
cold for several passes, as a million are with the real budget.
"""
from __future__ import annotations

import json
import os
import signal

from tasktop.wire.stacks import UNWALKED_FUNC, is_unwalked

from conftest import task_counts, tasktop, wait_until

TINY_BUDGET = ("import tasktop.probe.task_pass as task_pass\n"
               "task_pass.PASS_WITHIN = 0.0\n"
               "task_pass.WALK_AT_LEAST = 0.001\n")

PARKED_TARGET = r'''
import asyncio

async def park_a():
    await asyncio.Event().wait()

async def park_b():
    await asyncio.Event().wait()

async def main():
    kept = [asyncio.create_task(park_a()) for _ in range(6000)]
    kept += [asyncio.create_task(park_b()) for _ in range(4000)]
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def _unwalked(data: dict) -> list[dict]:
    return [g for g in data["groups"] if g["kind"] == "task" and is_unwalked(g["stack"])]


def _exact(data: dict) -> None:
    tasks = [g for g in data["groups"] if g["kind"] == "task"]
    assert data["totals"]["tasks"] == sum(g["count"] for g in tasks) == 10001


def test_a_cold_summary_counts_unwalked_tasks_apart_and_the_next_ones_fill_in(spawn):
    """The first summary has no time to walk 10,000 chains: the tasks left are counted by state
    in the pseudo-group, the totals exact; the next summaries walk on until every task is in
    its own group."""
    target = spawn(TINY_BUDGET + PARKED_TARGET, TASKTOP_INTERVAL="600")
    first = target.summary()
    _exact(first)
    [pseudo] = _unwalked(first)  # every parked task waits: one state
    assert pseudo["state"] == "waiting" and pseudo["count"] > 0, pseudo
    assert pseudo["created_by"] == []  # a stage, not a group: where they were made is not tallied
    counts = task_counts(first)
    assert counts.get("park_a", 0) + counts.get("park_b", 0) + pseudo["count"] >= 10000

    def filled() -> dict | None:
        data = target.summary()
        _exact(data)
        return data if not _unwalked(data) else None

    data = wait_until(filled, timeout=60, message="every chain walked by later summaries")
    assert (task_counts(data)["park_a"], task_counts(data)["park_b"]) == (6000, 4000)


def test_a_complete_summary_and_a_dump_walk_every_chain(spawn, sockdir):
    """``summary`` with ``complete``, and ``tasktop dump`` (text and JSON), of a cold probe:
    every task in its own group, none unwalked."""
    target = spawn(TINY_BUDGET + PARKED_TARGET, TASKTOP_INTERVAL="600")
    data = target.request("summary", complete=True)
    _exact(data)
    assert not _unwalked(data)
    assert (task_counts(data)["park_a"], task_counts(data)["park_b"]) == (6000, 4000)

    other = spawn(TINY_BUDGET + PARKED_TARGET, TASKTOP_INTERVAL="600")
    dumped = json.loads(tasktop("dump", str(other.pid), "--json", sockdir=sockdir).stdout)
    assert not _unwalked(dumped)
    assert (task_counts(dumped)["park_a"], task_counts(dumped)["park_b"]) == (6000, 4000)
    third = spawn(TINY_BUDGET + PARKED_TARGET, TASKTOP_INTERVAL="600")
    text = tasktop("dump", str(third.pid), sockdir=sockdir).stdout
    assert "park_a" in text and UNWALKED_FUNC not in text


MOVING_TARGET = r'''
import asyncio
import signal

events = []

async def moving(i):
    while True:  # a new future to wait on each time the test signals: walked again
        events[i] = asyncio.Event()
        await events[i].wait()

async def parked():
    await asyncio.Event().wait()

def move():
    for event in events:
        event.set()
    asyncio.get_running_loop().call_later(0.02, lambda: print("moved", flush=True))

async def main():
    events.extend([None] * 3000)
    kept = [asyncio.create_task(moving(i)) for i in range(3000)]  # first in creation order
    kept += [asyncio.create_task(parked()) for _ in range(5000)]
    await asyncio.sleep(0.05)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, move)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def test_walking_goes_on_where_the_last_pass_stopped(spawn):
    """3,000 tasks made first move before every summary, so each pass must walk them again,
    which takes longer than its time for walking: the 5,000 parked tasks made after them are
    walked all the same, each pass starting where the last one stopped."""
    target = spawn(TINY_BUDGET + MOVING_TARGET, TASKTOP_INTERVAL="600")

    def parked_walked() -> bool:
        os.kill(target.pid, signal.SIGUSR1)
        assert "moved" in target.proc.stdout.readline()
        data = target.summary()
        assert data["totals"]["tasks"] == sum(g["count"] for g in data["groups"] if g["kind"] == "task") == 8001
        return task_counts(data).get("parked", 0) == 5000

    wait_until(parked_walked, timeout=60, message="the parked tasks walked despite the moving ones")


NO_WALKING = ("import tasktop.probe.task_pass as task_pass\n"
              "task_pass.PASS_WITHIN = task_pass.WALK_AT_LEAST = 0.0\n"
              "import tasktop.probe.state as state\n"
              "state.CATCH_UP_S = 0.002\n")


def test_the_background_walks_the_chains_a_burst_left_while_no_client_asks(spawn):
    """Summaries with no time at all for walking (and so the background's own grouping pass):
    the chains are walked all the same, by the background's steps between passes, a few
    milliseconds of CPU each (``TaskPasses.catch_up``); the groups are then exact."""
    target = spawn(NO_WALKING + PARKED_TARGET.replace("6000", "3000").replace("4000", "2000"),
                   TASKTOP_INTERVAL="0.05")

    def walked() -> dict | None:
        data = target.summary()
        return data if not _unwalked(data) else None

    # Asked every 2 s: several steps in between, each going on where the last one stopped.
    data = wait_until(walked, timeout=60, interval=2.0, message="every chain walked by the background")
    assert data["totals"]["tasks"] == 5001
    assert (task_counts(data)["park_a"], task_counts(data)["park_b"]) == (3000, 2000)


GROWTH_TARGET = "import tasktop.probe.state as state; state.HISTORY_STEP = 0.2\n" + \
    "import tasktop.probe.verdicts as verdicts; verdicts.growth.__defaults__ = (1.0,)\n" + TINY_BUDGET + r'''
import asyncio

async def park_a():
    await asyncio.Event().wait()

async def main():
    kept = [asyncio.create_task(park_a()) for _ in range(20000)]
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def test_groups_filling_in_are_no_growth(spawn):
    """While passes walk the chains a few at a time, the real group rises and the pseudo-group
    falls pass after pass: neither is growth (a partial pass leaves no point in the history the
    growth verdicts read), and the verdicts' own pass is complete."""
    # Background passes every 0.2 s, a history point each once complete; no background walking.
    target = spawn(GROWTH_TARGET.replace("state.HISTORY_STEP = 0.2", "state.HISTORY_STEP = 0.2; state.CATCH_UP_S = 0"))
    seen: list = []

    def risen() -> bool:
        data = target.summary()
        seen.append(task_counts(data).get("park_a", 0))
        return len(set(seen)) >= 8 and _unwalked(data)

    wait_until(risen, timeout=60, message="the group filling in over passes, still partial")
    judged = target.request("verdicts", budget_s=0.5)["verdicts"]
    assert not [v for v in judged if v["verdict"] == "growing"], judged
    assert not [v for v in judged if v["frame"] and v["frame"]["func"] == UNWALKED_FUNC], judged
    data = target.summary()
    assert not _unwalked(data) and task_counts(data)["park_a"] == 20000  # the verdicts walked them


def _parked_reporting(prelude: str, tasks: int) -> str:
    """A target of ``tasks`` parked tasks that runs ``report()`` (defined in ``prelude``) on SIGUSR1."""
    return prelude + f"""
async def main():
    kept = [asyncio.create_task(asyncio.Event().wait()) for _ in range({tasks})]
    await asyncio.sleep(0.05)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, report)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _reported(target, word: str) -> list[int]:
    """The numbers the target's ``report()`` prints after ``word``, asked for with SIGUSR1."""
    os.kill(target.pid, signal.SIGUSR1)
    line = target.proc.stdout.readline()
    assert line.startswith(word), line
    return [int(number) for number in line.split()[1:]]


REFERENCES_TARGET = _parked_reporting(r"""
import asyncio, itertools, signal, weakref
from tasktop.probe import record_lists

def report():
    # A live reference: the stand-in a pass keeps when it made none is not one.
    held = sum(1 for info in [*itertools.chain.from_iterable(record_lists.kept), *record_lists.made]
               if info() is not None and isinstance(info.waiter, weakref.ReferenceType) and info.waiter() is not None)
    print("references", held, flush=True)
""", 10000)


def test_a_pass_keeps_no_reference_to_the_waiters_of_tasks_it_had_no_time_to_walk(spawn):
    """A weak reference to each waiter was most of what a cold pass cost besides walking (a
    million of them, 0.6 s): the tasks left unwalked get one only from the pass that walks them,
    and a complete pass gives one to every task."""
    target = spawn(TINY_BUDGET + REFERENCES_TARGET, TASKTOP_INTERVAL="600")
    first = target.summary()
    [pseudo] = _unwalked(first)
    walked = sum(g["count"] for g in first["groups"] if g["kind"] == "task") - pseudo["count"]
    assert _reported(target, "references")[0] <= walked < 10000
    target.request("summary", complete=True)
    assert _reported(target, "references")[0] >= 10000


LOOK_UP_TARGET = _parked_reporting(r"""
import asyncio, signal, sys
import tasktop.probe.task_pass as task_pass
from tasktop.probe import registry

# The many-task way of passes from 1,000 tasks on, the 30-second look-up always due, and (3.14+)
# C's task lists never read: only the rule under test makes a look-up due.
task_pass.SPLIT_COPIES, task_pass.RECHECK = 1000, 0.0
task_pass.LINKED_EVERY_PASS = task_pass.LINKED_MOST = 0
callers = []
unrecorded = registry.unrecorded

def counted(*args, **kwargs):
    frame, names = sys._getframe(1), set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    callers.append("background" if "sample" in names else "request")
    return unrecorded(*args, **kwargs)

registry.unrecorded = counted

def report():
    print("look-ups", callers.count("background"), callers.count("request"), flush=True)
""", 3000)


def test_above_a_quarter_million_tasks_only_the_background_makes_the_30_second_look_up(spawn):
    """The full look-up of asyncio's registry against the records, due every 30 s, took 0.9 s
    at a million tasks: a client's summary that came when it was due waited for it.  Summaries
    now leave it to the probe's own passes (here: every pass, and at most a second apart)."""
    target = spawn(LOOK_UP_TARGET, TASKTOP_INTERVAL="0.2")
    target.summary()  # the first pass looks up: no difference of the sizes is known yet
    before = _reported(target, "look-ups")
    for _ in range(5):
        target.summary()

    def two_more_from_the_background() -> list[int] | None:
        now = _reported(target, "look-ups")
        return now if now[0] >= before[0] + 2 else None
    after = wait_until(two_more_from_the_background, timeout=60, message="the background passes' look-ups")
    assert after[1] == before[1]  # none from the five summaries


PASSES_TARGET = _parked_reporting(r"""
import asyncio, signal
import tasktop.probe.task_pass as task_pass

asked = []  # one entry per pass a client's request made
run = task_pass.TaskPasses.run

def counted(self, grouping, rows=False, budget=None, background=False):
    if not background:
        asked.append(rows)
    return run(self, grouping, rows, budget, background)

task_pass.TaskPasses.run = counted

def report():
    print("passes", len(asked), flush=True)
""", 3000)


def test_a_dumps_summary_waits_and_verdicts_come_from_one_pass(spawn, sockdir):
    """A default dump asks for a complete summary, the waits and the leak verdicts: each walked
    every task in a pass of its own, half a dump's time at 100,000 tasks.  Now the waits and
    the verdicts ask for the summary's pass (``same_pass``); the next dump (a new connection)
    makes a pass of its own, and so does a request that does not ask (the TUI's)."""
    target = spawn(PASSES_TARGET, TASKTOP_INTERVAL="600")  # no background pass in between
    before = _reported(target, "passes")[0]
    for n in (1, 2):
        text = tasktop("dump", str(target.pid), sockdir=sockdir).stdout
        assert "Leak verdicts" in text and "Event.wait" in text, text
        assert _reported(target, "passes")[0] == before + n
    with target.client() as client:
        client.request("summary", complete=True)
        client.request("waits")
        assert _reported(target, "passes")[0] == before + 4
        client.request("waits", same_pass=True)
        client.request("verdicts", same_pass=True)
        assert _reported(target, "passes")[0] == before + 4


READY_TARGET = r'''
import asyncio, os, signal, time

async def parked():
    await asyncio.Event().wait()

async def made_last():
    await asyncio.Event().wait()

def hold():
    # 2,000 tasks made last, then the loop held (polling for the test's file): they stay
    # ready, not started, while the test's summary looks.
    kept.extend(asyncio.get_running_loop().create_task(made_last()) for _ in range(2000))
    print("held", flush=True)
    while not os.path.exists("release"):
        time.sleep(0.005)

kept = []

async def main():
    kept.extend(asyncio.create_task(parked()) for _ in range(8000))
    await asyncio.sleep(0.05)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, hold)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def test_a_cold_pass_counts_tasks_not_started_yet_as_ready(spawn, tmp_path):
    """Tasks a pass with no time left meets not waiting on anything (made, not started yet)
    are counted in the pseudo-group of their state, ready, beside the waiting ones."""
    target = spawn(TINY_BUDGET + READY_TARGET, TASKTOP_INTERVAL="600")
    os.kill(target.pid, signal.SIGUSR1)
    assert "held" in target.proc.stdout.readline()
    try:
        data = target.summary()
    finally:
        (tmp_path / "release").touch()
    assert data["totals"]["tasks"] == sum(g["count"] for g in data["groups"] if g["kind"] == "task") == 10001
    pseudo = {g["state"]: g["count"] for g in _unwalked(data)}
    assert pseudo.get("ready") == 2000, pseudo
    assert 0 < pseudo.get("waiting", 0) <= 8000, pseudo
