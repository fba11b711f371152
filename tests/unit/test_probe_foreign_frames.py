"""``foreign_frames.paused``: the collector's automatic runs paused while another thread's
frames are read (CPython 3.11), and never left paused."""
from __future__ import annotations

import gc
import os
import select
import threading
import warnings

import pytest

from tasktop.probe import foreign_frames
from tasktop.probe.foreign_frames import paused


@pytest.fixture
def needed(monkeypatch):
    """The pause as on 3.11, whatever Python runs the test; the collector as it was after."""
    was = gc.isenabled()
    monkeypatch.setattr(foreign_frames, "NEEDED", True)
    yield
    (gc.enable if was else gc.disable)()


def test_the_last_one_out_turns_the_collector_back_on_only_if_it_was_on(needed):
    gc.enable()
    with paused:
        with paused:
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    with paused:
        pass
    assert not gc.isenabled()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
def test_a_fork_while_another_thread_is_paused_leaves_the_child_unpaused(needed):
    """The child of a fork has only the forking thread: a pause another thread was in at the
    fork would keep the child's collector off for good, its lock maybe held."""
    gc.enable()
    inside, leave = threading.Event(), threading.Event()

    def reader():
        with paused:
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert inside.wait(10) and not gc.isenabled()
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
            pid = os.fork()
        if pid == 0:  # the child: report, never return into pytest
            try:
                ok = gc.isenabled()
                with paused:  # the lock is free, and the pause works again
                    ok = ok and not gc.isenabled()
                ok = ok and gc.isenabled()
                os.write(w, b"ok" if ok else b"paused")
            finally:
                os._exit(0)
        os.close(w)
        ready, _, _ = select.select([r], [], [], 30)
        said = os.read(r, 16) if ready else b"no answer (hung on the lock?)"
        os.close(r)
        os.waitpid(pid, 0)
        assert said == b"ok"
    finally:
        leave.set()
        thread.join(10)
    assert gc.isenabled()


def test_a_pause_left_entered_is_ended_by_the_heartbeat(needed):
    """A signal's exception between two bytecodes of ``__enter__`` leaves a pause entered that
    nobody will leave: the probe's heartbeat ends it once no use has moved for ``STUCK_S``."""
    gc.enable()
    paused.__enter__()  # entered, and its ``with`` gone: never left
    assert not gc.isenabled()
    assert not paused.unstick(100.0)  # first seen
    with paused:  # other uses come and go: the count moves
        pass
    assert not paused.unstick(100.0 + foreign_frames.STUCK_S)
    assert not gc.isenabled()
    assert not paused.unstick(100.0 + 2 * foreign_frames.STUCK_S - 0.1)  # not STUCK_S since it moved
    assert paused.unstick(100.0 + 2 * foreign_frames.STUCK_S)
    assert gc.isenabled()
    paused.__exit__(None, None, None)  # the lost use, left after all: no harm done
    with paused:
        assert not gc.isenabled()
    assert gc.isenabled()
