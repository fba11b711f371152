"""A loop's heartbeat is its hand-off timer: how the probe reads what the timer wrote."""
from __future__ import annotations

import asyncio
import threading
import time

from tasktop.probe import hooks
from tasktop.probe.config import Options
from tasktop.probe.handoff import IDLE_PERIOD, Beat, Handoff
from tasktop.probe.loops import REFRESH_EVERY, LoopWatch, LoopWatches


class Loop:
    def __init__(self, running: bool = True) -> None:
        self.running = running

    def is_running(self) -> bool:
        return self.running

    def is_closed(self) -> bool:
        return False


def run(beat: Beat, at: float, next_due: float, stall_s: float = 0.1) -> None:
    """What ``Handoff._tick`` writes when the timer runs at ``at``."""
    late = at - beat.due
    beat.last = (at, late, threading.get_ident())
    if late > stall_s:
        beat.stalls.append((at, late))
    beat.due = next_due


def watching(beat: Beat, loop: Loop | None = None) -> LoopWatch:
    watch = LoopWatch(loop or Loop(), threading.get_ident())
    watch.follow(beat)
    return watch


def test_a_stall_the_timer_noted_is_taken_though_runs_on_time_came_before_the_look():
    beat = Beat(due=10.0)
    watch = watching(beat)
    run(beat, 10.3, 10.35)  # 300 ms late: the loop was blocked
    run(beat, 10.35, 10.40)  # on time again before the probe looked (it looks less often)
    assert watch.look(10.38, 100.0)
    assert watch.stall_count == 1 and round(watch.stalls[0].duration_ms) == 300
    assert watch.lag_ms is not None and watch.lag_ms < 1.0  # the lag is the last run's


def test_a_late_run_from_before_the_watch_is_not_its_stall():
    beat = Beat(due=10.0)
    run(beat, 15.0, 15.05)  # a loop stopped for 5 s runs again, its timer late by all of it
    watch = watching(beat)
    assert watch.look(15.01, 100.0)
    assert watch.stall_count == 0


def test_the_stack_is_taken_while_the_timer_is_overdue_and_goes_with_its_stall():
    beat = Beat(due=10.0)
    watch = watching(beat)
    assert watch.look(10.05, 100.0) and watch.stall_stack is None  # 50 ms overdue: not yet
    assert watch.look(10.15, 100.0) and watch.stall_stack  # 150 ms: this thread's stack
    run(beat, 10.4, 10.45)
    assert watch.look(10.41, 100.0)
    assert watch.stall_count == 1 and watch.stalls[0].stack and watch.stall_stack is None
    run(beat, 10.7, 10.75)  # a second stall the probe did not look at during
    assert watch.look(10.71, 100.0)
    assert watch.stall_count == 2 and watch.stalls[1].stack == ()


def test_a_stopped_loop_is_let_go_not_called_stalled():
    beat = Beat(due=10.0)
    watch = watching(beat, Loop(running=False))
    assert not watch.look(10.5, 100.0)
    assert watch.stall_count == 0 and watch.stall_stack is None


def test_the_probe_looks_when_a_timer_not_run_by_then_would_be_a_stall():
    loop, handoff = Loop(), Handoff()
    watches = LoopWatches(Options(), handoff)
    beat = Beat(due=10.04)
    watch = watches.watches[id(loop)] = watching(beat, loop)
    assert watches.next_look(10.0, 0.25) == 10.04 + 0.1
    assert watches.next_look(10.0, 1.0, overdue_only=True) == 11.0  # starved: not due yet
    assert watches.next_look(10.1, 1.0, overdue_only=True) == 10.04 + 0.1  # overdue: look again
    watch.ident = None  # a stall whose stack cannot be taken: looked at again, no busy wait
    assert watches.next_look(10.2, 0.25) == 10.2 + 0.05
    watch.stall_stack = ()  # taken: nothing to look for until the timer runs
    assert watches.next_look(10.2, 0.25) == 10.45


def test_a_loop_started_again_is_not_late_by_the_time_it_was_stopped():
    """A loop run now and then (``run_until_complete`` again and again) keeps its timer while
    stopped: without ``Handoff.started`` its first run after a start is late by all that time."""
    results = {}
    for told in (False, True):
        loop, handoff = asyncio.new_event_loop(), Handoff(stall_s=0.1)
        handoff.active = True
        try:
            handoff.attach(loop)
            beat = handoff.beat(loop)
            beat.due -= 5.0  # as if the loop had stopped five seconds ago, its timer due
            if told:
                handoff.started(loop)  # what hooks.start_listeners does as it runs again
            loop.run_until_complete(asyncio.sleep(IDLE_PERIOD * 2))
            assert beat.last is not None  # the timer ran
            results[told] = [round(late) for _at, late in beat.stalls]
        finally:
            loop.close()
    assert results == {False: [5], True: []}


def test_a_loop_whose_timer_stopped_is_looked_for_at_the_next_heartbeat():
    """A tick while the probe was stopped (for a fork) drops the loop's timer; the next
    heartbeat looks for loops (which starts it again), not one ``REFRESH_EVERY`` later; and
    only once, not at every heartbeat while the loop cannot start it (stuck in a long call)."""
    loop, handoff = asyncio.new_event_loop(), Handoff()
    handoff.active = True
    watches = LoopWatches(Options(), handoff)
    try:
        handoff.attach(loop)
        watch = watches.watches[id(loop)] = LoopWatch(loop, threading.get_ident())
        now = time.monotonic()
        watches._refreshed, watches._starts = now, hooks.loop_starts  # just looked
        watches.heartbeat(now)
        assert watches._refreshed == now and watch.beat is handoff.beat(loop)  # its timer: followed
        handoff._beats.pop(loop)  # what a tick does while the probe is stopped
        watches.heartbeat(now)
        assert watches._refreshed == -REFRESH_EVERY and watch.beat is None  # look again at once
        watches._refreshed = now  # that look did not start it (the loop is stuck)
        watches.heartbeat(now)
        assert watches._refreshed == now  # not again and again
    finally:
        loop.close()
