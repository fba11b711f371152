"""The probe thread's short sleeps (the pacer's hand-offs of the GIL) end on time: its timer
slack is lowered, and only its own, never the host's threads'."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading

import pytest

from tasktop.probe import handoff

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_TIMERSLACK is Linux's")

PR_GET_TIMERSLACK = 30


def _slack() -> int:
    """The calling thread's timer slack, in ns."""
    return ctypes.CDLL(None).prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)


def test_exact_sleeps_changes_the_calling_thread_only():
    before = _slack()
    seen: list = []

    def probe_thread() -> None:
        seen.append(_slack())
        handoff.exact_sleeps()
        seen.append(_slack())

    thread = threading.Thread(target=probe_thread)
    thread.start()
    thread.join()
    assert seen == [before, handoff.TIMER_SLACK_NS]
    assert before != handoff.TIMER_SLACK_NS
    assert _slack() == before  # this thread's is untouched


STARTED = r'''
import asyncio, sys, threading
sys.path[:0] = PATHS
import ctypes
import tasktop.probe
from tasktop.probe import server

slack = lambda: ctypes.CDLL(None).prctl(30, 0, 0, 0, 0)
seen = []
done = threading.Event()
real = server.exact_sleeps

def recording():
    real()
    seen.append((threading.current_thread().name, slack()))
    done.set()

server.exact_sleeps = recording

async def main():
    assert tasktop.probe.start(directory=DIR)
    assert done.wait(60)
    print(seen[0][0], seen[0][1], slack(), flush=True)

asyncio.run(main())
'''


def test_the_probe_thread_sleeps_exactly_and_the_host_does_not(tmp_path):
    script = tmp_path / "started.py"
    directory = tmp_path / "sock"
    script.write_text(STARTED.replace("PATHS", repr(sys.path)).replace("DIR", repr(str(directory))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    thread, probe_slack, host_slack = out.stdout.split()
    assert thread == "tasktop-probe"
    assert int(probe_slack) == handoff.TIMER_SLACK_NS
    assert int(host_slack) == _slack() != handoff.TIMER_SLACK_NS
