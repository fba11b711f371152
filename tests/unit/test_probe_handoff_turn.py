"""The pacer's yield lasts until each loop has run what it had ready, not a fixed sleep.

A loop thread that woke later than the probe's 100 µs sleep lost the GIL to the probe again,
once for each time its iteration takes the GIL (twice); the turn is answered from the loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time

import pytest
from conftest import wait_until

from tasktop.probe import handoff as handoff_module
from tasktop.probe.handoff import Handoff, Pacer


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


@contextlib.contextmanager
def _running(loop: asyncio.AbstractEventLoop):
    """``loop`` run forever in a thread of its own, stopped and closed afterwards."""
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        wait_until(loop.is_running, timeout=10, interval=0.001, message="the loop to run")
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def running_loop(request):
    with _running(_new_loop(request.param)) as loop:
        yield loop


def _attached(loop: asyncio.AbstractEventLoop) -> Handoff:
    handoff = Handoff()
    handoff.active = True
    loop.call_soon_threadsafe(handoff.attach, loop)
    wait_until(lambda: handoff.attached(loop), timeout=10, interval=0.001, message="the hand-off timer")
    return handoff


def test_yield_waits_until_the_loop_has_run_what_it_had_ready(running_loop, monkeypatch):
    monkeypatch.setattr(handoff_module, "TURN_WAIT", 30.0)  # the mechanism, not the machine's speed
    handoff = _attached(running_loop)
    done = []

    def step(n: int) -> None:
        time.sleep(0.002)  # the GIL let go meanwhile: a fixed sleep's probe took it here
        if n:
            running_loop.call_soon(step, n - 1)
        else:
            done.append(True)

    # three callbacks, each made ready by the last (as many as uvloop's blind turn runs)
    running_loop.call_soon_threadsafe(step, 2)
    Pacer(handoff).now()
    assert done == [True]


def test_a_blocked_loop_is_waited_for_a_while_then_not_until_it_answers(running_loop, monkeypatch):
    monkeypatch.setattr(handoff_module, "TURN_WAIT", 0.05)
    monkeypatch.setattr(handoff_module, "TURN_PATIENCE", 1.0)
    handoff = _attached(running_loop)
    release = threading.Event()
    running_loop.call_soon_threadsafe(release.wait)  # the loop blocked in a synchronous call
    assert handoff.give_turn() is True  # asked, and waited for up to TURN_WAIT
    assert handoff.give_turn() is True  # not answered: waited for again (a late virtual CPU)
    wait_until(lambda: not handoff.give_turn(), timeout=10, interval=0.0,  # until the turn is TURN_PATIENCE old
               message="a blocked loop no longer waited for")
    assert handoff.give_turn() is False  # blocked: neither asked again nor waited for
    release.set()
    wait_until(handoff.give_turn, timeout=10, interval=0.01, message="the loop to answer its turn")


def test_a_pass_on_a_loops_own_thread_does_not_wait_for_that_loop(running_loop, monkeypatch):
    monkeypatch.setattr(handoff_module, "TURN_WAIT", 30.0)  # waiting for itself would show
    handoff = _attached(running_loop)
    answer = concurrent.futures.Future()
    running_loop.call_soon_threadsafe(lambda: answer.set_result(handoff.give_turn()))
    assert answer.result(timeout=10) is False


def test_no_loop_means_no_turn():
    handoff = Handoff()
    handoff.active = True
    assert handoff.give_turn() is False
    handoff.active = False
    assert handoff.give_turn() is False


class _CountingLoop(asyncio.SelectorEventLoop):
    """asyncio's own loop, counting the bytes other threads send down its self-pipe."""

    writes = 0

    def _write_to_self(self) -> None:
        type(self).writes += 1
        super()._write_to_self()


def test_a_loop_whose_timer_is_due_gets_its_turn_without_a_wake_up(monkeypatch):
    """A pass's yield finds the loop with a timer due nearly every time (the host's own, due
    within the pass's 2 ms of work): its wait for I/O is over, so the turn is put on its ready
    queue with no byte down the self-pipe; an idle loop is still woken."""
    monkeypatch.setattr(handoff_module, "TURN_WAIT", 30.0)  # the mechanism, not the machine's speed
    with _running(_CountingLoop()) as loop:
        handoff = _attached(loop)

        def answered() -> bool:
            turn = handoff._turns.get(loop)
            return turn is not None and not turn[0].locked()

        # Idle: no timer due (the hand-off timer is 100 ms away) -> woken through the self-pipe.
        before = _CountingLoop.writes
        assert handoff.give_turn() is True and answered()
        assert _CountingLoop.writes == before + 1

        ticking = []

        async def tick() -> None:  # the host's 1 ms timer, like the benchmark's ticker
            while True:
                await asyncio.sleep(0.001)
                ticking.append(1)

        asyncio.run_coroutine_threadsafe(tick(), loop)
        wait_until(lambda: ticking, timeout=10, interval=0.001, message="the ticker to run")

        def turn_without_a_write() -> bool:
            end = time.perf_counter() + 0.003  # a pass's work, the GIL held: the ticker falls due
            while time.perf_counter() < end:
                pass
            before = _CountingLoop.writes
            return handoff.give_turn() and answered() and _CountingLoop.writes == before

        wait_until(turn_without_a_write, timeout=10, interval=0.0, message="a turn posted without a wake-up")
