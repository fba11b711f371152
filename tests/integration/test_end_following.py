"""The end history's rate limit and its view of direct ``task.cancel()`` calls, in real targets:
past 1,000 tasks made in a second new tasks are not followed (and counted), a task cancelled
meanwhile is followed anyway, the next second's tasks are followed again; on 3.12+ the caller
of a direct ``cancel()`` is seen wherever the call site is, and ``detach`` gives the monitoring
id back."""
from __future__ import annotations

import re
import sys

import pytest

from conftest import tasktop, wait_until

needs_monitoring = pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")


def _line(source: str, tag: str) -> int:
    return next(i for i, text in enumerate(source.splitlines(), 1) if text.rstrip().endswith(f"# LINE {tag}"))


def _endings(ends: dict) -> list:
    return [(e, ring) for ring in ends["rings"] for e in ring["recent"]]


def _created_at(ending: dict, ring: dict) -> int | None:
    stack = ending.get("created_by") or ring.get("created_by") or []
    return stack[0]["line"] if stack else None


BURST = '''
import asyncio, sys

async def quick():
    return 1

async def forever():
    await asyncio.Event().wait()

async def main():
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(10):
        await asyncio.gather(*[asyncio.ensure_future(quick()) for _ in range(500)])  # LINE burst
    try:
        await asyncio.wait_for(asyncio.ensure_future(forever()), 0.01)  # LINE late
    except asyncio.TimeoutError:
        pass
    assert loop.time() - start < 1.0, "the burst took a second: nothing was over the limit"
    await asyncio.sleep(1.1)  # the next second
    await asyncio.gather(*[asyncio.ensure_future(quick()) for _ in range(3)])  # LINE after
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def test_past_the_rate_limit_tasks_are_counted_not_followed_and_the_next_second_s_are(spawn, sockdir):
    target = spawn(BURST)
    ends = wait_until(lambda: (lambda e: e if any(_created_at(*x) == _line(BURST, "after") for x in _endings(e))
                               else None)(target.request("ends")), message="the next second's tasks followed")
    assert ends["follow_per_s"] == 1000
    by_line: dict = {}
    for ending, ring in _endings(ends):
        by_line.setdefault(_created_at(ending, ring), []).append(ending)
    # 5,000 made in under a second: 1,000 followed (or 2,000, if the probe's first second was
    # over when the burst began; the main task took a token), the rest counted, none both (the
    # task made for wait_for is counted and then followed: it was cancelled).
    # A burst task a pass saw alive ends in the ring of the group it was seen in, the others in
    # their creation site's: the burst's endings are those of every ring it reached (with at
    # most the 3 "after" tasks, if a pass saw them in the same group).
    returned = sum(r["returned"] for r in ends["rings"]
                   if any(_created_at(e, r) == _line(BURST, "burst") for e in r["recent"]))
    assert returned in range(990, 2004)
    assert returned + ends["unfollowed"] in range(4995, 5009)
    [late] = by_line[_line(BURST, "late")]  # made past the limit, followed once cancelled
    assert (late["outcome"], late["cancelled_by"]["how"]) == ("cancelled", "wait_for")
    assert len(by_line[_line(BURST, "after")]) == 3
    dump = tasktop("dump", "--full", str(target.pid), sockdir=sockdir)
    assert dump.returncode == 0, dump.stderr
    assert re.search(r"How tasks ended \([\d,]+ since the probe started; [\d,]+ more tasks made past 1,000 a second "
                     r"were not followed\)", dump.stdout), dump.stdout


SITES = '''
import asyncio, sys

async def forever():
    await asyncio.Event().wait()

def cancel_all(things):
    for thing in things:
        thing.cancel()                                                  # LINE mixed

async def main():
    loop = asyncio.get_running_loop()
    cancel_all([loop.create_future()])  # the site's first call cancels a future, not a task
    t = asyncio.ensure_future(forever())                                # LINE mixed task
    cancel_all([loop.create_future(), t])
    u = asyncio.ensure_future(forever())                                # LINE bound task
    await asyncio.sleep(0)
    stop = u.cancel
    loop.call_soon(lambda: stop())                                      # LINE bound
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


@needs_monitoring
def test_a_direct_cancel_is_seen_at_a_site_that_cancelled_a_future_first_and_through_a_bound_method(spawn):
    target = spawn(SITES)
    found = wait_until(lambda: (lambda e: e if len(e) >= 2 else None)(
        [x for x in _endings(target.request("ends")) if x[0]["outcome"] == "cancelled"]), message="two cancelled")
    by_line = {_created_at(e, r): e for e, r in found}
    mixed = by_line[_line(SITES, "mixed task")]["cancelled_by"]
    assert mixed["how"] == "cancel()" and mixed["stack"][0]["line"] == _line(SITES, "mixed")
    bound = by_line[_line(SITES, "bound task")]["cancelled_by"]
    # From a loop callback: no task was running; the lambda's frame made the call.
    assert bound["how"] == "cancel()" and bound["task"] is None
    assert bound["stack"][0]["line"] == _line(SITES, "bound")


DETACH = '''
import asyncio, sys
from tasktop import probe

async def main():
    await asyncio.sleep(0.2)  # the probe started
    held = sys.monitoring.get_tool(4) or sys.monitoring.get_tool(3)
    probe.detach()
    print("ready", held, sys.monitoring.get_tool(4), sys.monitoring.get_tool(3), flush=True)

asyncio.run(main())
'''


@needs_monitoring
def test_detach_gives_the_monitoring_id_back(spawn):
    target = spawn(DETACH, wait=False)
    line = target.proc.stdout.readline()
    assert line.split() == ["ready", "tasktop", "None", "None"]


PROFILE_DETACH = '''
import asyncio, sys, threading
from tasktop import probe

async def main():
    await asyncio.sleep(0.2)  # the probe started
    before = sys.getprofile()
    other = threading.Thread(target=probe.detach)  # not this thread: it drops the callback itself
    other.start()
    other.join()
    await asyncio.sleep(0.01)
    print("ready", getattr(before, "__name__", None), sys.getprofile(), threading._profile_hook, flush=True)

asyncio.run(main())
'''


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ watches cancels through sys.monitoring")
def test_detach_takes_the_profile_callback_away_from_every_thread(spawn):
    target = spawn(PROFILE_DETACH, wait=False, TASKTOP_CANCELLERS="profile")
    line = target.proc.stdout.readline()
    assert line.split() == ["ready", "_on_profile", "None", "None"]
