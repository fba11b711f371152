"""Tasks that end unseen: lost ones (destroyed while pending: nothing referenced them) and
exceptions nobody retrieved, counted by the probe by creation site, and shown in the summary,
the dump's verdicts, ``tasktop check --max-lost`` and the exporter."""
from __future__ import annotations

import os
import signal
import sys

import pytest

from conftest import tasktop, wait_until

try:
    import uvloop
except ImportError:  # pragma: no cover - in the test extra
    uvloop = None

# Thirty "requests", each of whose handlers starts a consumer of its own queue; only two are kept.
# On SIGUSR1 the server lets go of the rest (as a handler that keeps no reference does) and the
# collector destroys them, still pending; one task raises and nobody ever asks for its result.
TARGET = r'''
import asyncio, gc, signal, sys

async def read_replies(q):
    await q.get()

async def boom():
    raise ValueError("nobody looks")

held = []
kept = []

async def handle(n):
    task = asyncio.create_task(read_replies(asyncio.Queue()))  # CREATED
    (kept if n < 2 else held).append(task)

def let_go():
    held.clear()
    asyncio.get_running_loop().create_task(boom())  # RAISES

    def collect():
        gc.collect()
        print("collected", flush=True)
    asyncio.get_running_loop().call_later(0.2, collect)

async def main():
    for n in range(30):
        await handle(n)
    await asyncio.sleep(0)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, let_go)
    print("ready", flush=True)
    await asyncio.sleep(1000)

if sys.argv[1:] == ["uvloop"]:
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
'''


def _line(script: str, marker: str) -> int:
    with open(script) as fh:
        return next(n for n, text in enumerate(fh, 1) if marker in text)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_lost_tasks_and_unretrieved_exceptions_are_counted_by_site(spawn, sockdir, loop):
    if loop == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    target = spawn(TARGET, args=(loop,))
    created = _line(target.script, "# CREATED")
    # The probe looks at every task once (a summary describes them): it will know where each
    # lost one was last waiting.
    before = target.summary()
    assert before["endings"]["lost_total"] == 0
    assert sum(g["count"] for g in target.groups(before) if g["stack"][-1]["func"] == "read_replies") == 30
    os.kill(target.pid, signal.SIGUSR1)
    assert target.proc.stdout.readline().strip() == "collected"
    after = wait_until(lambda: (lambda s: s if s["endings"]["lost_total"] == 28 else None)(target.summary()),
                       message="28 lost tasks")
    endings = after["endings"]
    (lost,) = endings["lost"]
    assert lost["count"] == 28
    assert (os.path.basename(lost["site"][0]["file"]), lost["site"][0]["func"], lost["site"][0]["line"]) == \
        (os.path.basename(target.script), "handle", created)
    assert lost["last_state"] == "Queue.get"
    assert lost["last_stack"][-1]["func"] == "read_replies"
    # Every task that never finished is live or lost, none missing: 2 kept + 28 lost = 30.
    live = sum(g["count"] for g in target.groups(after) if g["stack"][-1]["func"] == "read_replies")
    assert live + lost["count"] == 30 and live == 2
    by_type = {u["type"]: u for u in endings["unretrieved"]}
    unretrieved = by_type.pop("ValueError")
    assert unretrieved["count"] == 1 and unretrieved["site"][0]["func"] == "let_go"
    assert "nobody looks" in unretrieved["traceback"] and "boom" in unretrieved["traceback"]
    # On uvloop a lost task can come back (the coroutine the collector closed cancelled its
    # future, which put its wake-up on the loop: see the test below), run its closed coroutine
    # and end in a RuntimeError nobody retrieves, which asyncio reports too (1 CI run in ~10).
    revived = by_type.pop("RuntimeError", None)
    assert not by_type, by_type
    if revived is not None:
        assert loop == "uvloop" and "cannot reuse already awaited coroutine" in revived["traceback"]
        assert (revived["site"][0]["func"], revived["site"][0]["line"]) == ("handle", created)
    assert endings["unretrieved_total"] == 1 + (revived["count"] if revived else 0)

    dump = tasktop("dump", str(target.pid), sockdir=sockdir)
    assert dump.returncode == 0, dump.stderr
    assert (f"28 tasks created by handle ({os.path.basename(target.script)}:{created}) were destroyed "
            f"while pending; last at read_replies ({os.path.basename(target.script)}:") in dump.stdout
    assert "on Queue.get" in dump.stdout and "LOST" in dump.stdout

    failed = tasktop("check", str(target.pid), "--max-lost", "27", sockdir=sockdir)
    assert failed.returncode == 1 and failed.stdout.startswith("FAIL lost: 28 tasks destroyed while pending > 27")
    assert f"28 created by handle ({os.path.basename(target.script)}:{created})" in failed.stdout
    passed = tasktop("check", str(target.pid), "--max-lost", "28", sockdir=sockdir)
    assert passed.returncode == 0 and passed.stdout.startswith("OK lost: 28")

    # What the user saw without the probe is still shown: asyncio's own messages on stderr.
    _out, err = target.stop()
    assert err.count("Task was destroyed but it is pending!") == 28
    assert "Task exception was never retrieved" in err


# Lost tasks that come back: the collector clears a lost task's weak references (the probe's
# record is one) before the finalizers run, and one of them makes the task reachable again (here
# on purpose; on uvloop a coroutine the collector closed cancelled the future it awaited, which
# put the task's wake-up on the loop). 3.14+ keeps such a task in its list of tasks.
REVIVED = r'''
import asyncio, gc, sys

revived = []


class Revives:
    def __del__(self):
        revived.append(self.task)


async def wait_for_nothing(fut, keep):
    await fut


async def handle():
    keep = Revives()
    keep.task = asyncio.create_task(wait_for_nothing(asyncio.get_running_loop().create_future(), keep))  # CREATED


async def main():
    for _ in range(3):
        await handle()
    await asyncio.sleep(0.01)
    gc.collect()
    print("ready", len(revived), flush=True)
    await asyncio.sleep(1000)

if sys.argv[1:] == ["uvloop"]:
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
'''


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_lost_task_made_reachable_again_keeps_its_creation_site(spawn, loop):
    if loop == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    target = spawn(REVIVED, args=(loop,))
    assert target.ready_line.split() == ["ready", "3"]  # the three came back
    created = _line(target.script, "# CREATED")
    summary = wait_until(lambda: (lambda s: s if s["endings"]["lost_total"] == 3 else None)(target.summary()),
                         message="3 lost tasks")
    (lost,) = summary["endings"]["lost"]
    assert (lost["count"], lost["site"][0]["func"], lost["site"][0]["line"]) == (3, "handle", created)
    back = [g for g in target.groups(summary) if g["state"] == "future"]
    if sys.version_info >= (3, 14):  # still in the interpreter's list of tasks: a pass meets it again
        (group,) = back
        assert group["count"] == 3
        (made,) = group["created_by"]
        assert (made["stack"][0]["func"], made["stack"][0]["line"]) == ("handle", created)
    else:  # asyncio's registry of tasks is weak: the task is gone from it with its weak references
        assert back == []


def test_the_exporter_counts_lost_tasks_by_site(spawn, sockdir):
    from tasktop.exporter.collector import FleetCollector

    target = spawn(TARGET, args=("asyncio",))
    target.summary()
    os.kill(target.pid, signal.SIGUSR1)
    assert target.proc.stdout.readline().strip() == "collected"
    wait_until(lambda: target.summary()["endings"]["lost_total"] == 28, message="28 lost tasks")
    families = {m.name: m for m in FleetCollector([sockdir]).collect()}
    (sample,) = [s for s in families["tasktop_tasks_lost"].samples if s.name == "tasktop_tasks_lost_total"]
    assert sample.value == 28 and sample.labels["site"].startswith("handle (target0.py:")
    (exc,) = [s for s in families["tasktop_tasks_unretrieved_exceptions"].samples
              if s.name.endswith("_total")]
    assert exc.value == 1 and exc.labels["exception"] == "ValueError"


def test_the_application_s_exception_handler_still_gets_every_report(spawn):
    source = TARGET.replace("async def main():\n", "async def main():\n"
                            "    asyncio.get_running_loop().set_exception_handler(\n"
                            "        lambda loop, ctx: print('APP', ctx['message'], flush=True))\n")
    target = spawn(source, args=("asyncio",))
    target.summary()
    os.kill(target.pid, signal.SIGUSR1)
    lines = []
    wait_until(lambda: lines.append(target.proc.stdout.readline().strip()) or "collected" in lines,
               message="the collection")
    wait_until(lambda: target.summary()["endings"]["lost_total"] == 28, message="28 lost tasks")
    out, _err = target.stop()
    reports = lines + out.splitlines()
    assert reports.count("APP Task was destroyed but it is pending!") == 28
