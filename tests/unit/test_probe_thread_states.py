"""A thread's state from its Python stack and what the kernel says it waits in.

While the probe looks, it holds the GIL: a thread that wants to run Python then waits for it in
a futex, as a thread blocked on a lock does.  In the event loop's own code (which never blocks on
a lock) that futex is the GIL, and the thread is running; in the application's code it may be a
lock, and stays one."""
from __future__ import annotations

import asyncio.base_events
import selectors
import threading

from conftest import wait_until
from tasktop.probe import threads
from tasktop.probe.handoff import Handoff

SLEEPING_IN_FUTEX = {"state": "S", "syscall": "futex"}
RUN_ONCE = asyncio.base_events.BaseEventLoop._run_once.__code__
RUN_FOREVER = asyncio.base_events.BaseEventLoop.run_forever.__code__


def application_code():
    pass


def test_the_loops_own_code_in_a_futex_waits_for_the_gil():
    stack = ((RUN_ONCE, 1), (RUN_FOREVER, 1))
    assert threads.classify(stack, SLEEPING_IN_FUTEX) == "running"


def test_the_applications_code_in_a_futex_is_on_a_lock():
    stack = ((application_code.__code__, 1), (RUN_ONCE, 1), (RUN_FOREVER, 1))
    assert threads.classify(stack, SLEEPING_IN_FUTEX) == "Lock.acquire"


def test_a_named_primitive_is_named_whatever_the_kernel_says():
    stack = ((threading.Event.wait.__code__, 1), (application_code.__code__, 1))
    assert threads.classify(stack, SLEEPING_IN_FUTEX) == "Event.wait"


def test_a_loop_in_its_selector_is_idle():
    select = selectors.DefaultSelector.select.__code__
    stack = ((select, 1), (RUN_ONCE, 1), (RUN_FOREVER, 1))
    assert threads.classify(stack, {"state": "S", "syscall": "epoll_wait"}) == "idle loop"


def test_the_handoffs_frames_are_left_out():
    """A loop thread seen in the probe's hand-off timer, down to the ``select`` it lets go of the
    GIL in: the stack shown is the host's, from the loop's ``Handle._run`` out."""
    handle_run = asyncio.events.Handle._run.__code__
    host = ((handle_run, 1), (RUN_ONCE, 1), (RUN_FOREVER, 1))
    ours = ((Handoff.wanted.__code__, 1), (Handoff.check.__code__, 1), (Handoff._tick.__code__, 1))
    assert threads.without_handoff(ours + host) == host
    assert threads.without_handoff(ours[2:] + host) == host
    assert threads.without_handoff(host) is host
    assert threads.without_handoff(()) == ()


def test_a_thread_asking_its_own_probe_is_running_not_parked_on_a_lock():
    """The in-process instrumentor's reader waits for its own probe's answer: caught in a futex
    (waiting for the GIL the answering probe holds, or any lock), it is busy with us, not parked."""
    lock = threading.Lock()
    lock.acquire()
    waiting = threading.Thread(target=lock.acquire, name="asker", daemon=True)
    waiting.start()
    watch = threads.ThreadWatch()

    def state() -> str:
        (row,) = [r for r in watch.rows() if r["ident"] == waiting.ident]
        return row["state"]

    try:
        wait_until(lambda: state() == "Lock.acquire", message="the thread parked on the lock")
        threads.ASKING.add(waiting.ident)
        assert state() == "running"
    finally:
        threads.ASKING.discard(waiting.ident)
        lock.release()
        waiting.join(5)
