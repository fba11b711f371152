"""Where a suspended coroutine stands is read without a frame object (3.11+): for a code with
several suspension points, from its instruction pointer, and remembered by that pointer.  The
line must be the one its frame would say, at each of its awaits, read once or again."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from tasktop.probe import positions

#: Up to 3.10 every frame is an object, and the pass reads it (``cr_suspended`` is 3.11's).
pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="frames are objects up to 3.10")


class _Step:
    def __await__(self):
        yield


async def _three_awaits(marks: list) -> None:
    marks.append("first")
    await _Step()
    marks.append("second")
    await _Step()
    marks.append("third")
    await _Step()


def test_a_coroutine_is_read_at_each_of_its_awaits_as_its_frame_would_say():
    marks: list = []
    coro = _three_awaits(marks)
    seen = []
    for _ in range(3):
        coro.send(None)
        reads = []
        for _again in range(2):  # the second read finds the first one's line by its pointer
            objs: list = []
            ids: list = []
            positions.suspended_run(coro, objs, ids)
            reads.append(ids)
        seen.append((reads, coro.cr_frame.f_lineno))  # its frame, made only now
    coro.close()
    code_id = id(_three_awaits.__code__)
    lines = [line for _reads, line in seen]
    assert len(set(lines)) == 3  # three different awaits
    for reads, line in seen:
        assert reads == [[code_id, line], [code_id, line]]
    assert marks == ["first", "second", "third"]


def test_the_line_of_a_coroutine_parked_in_a_task_is_its_frames():
    async def scenario() -> tuple:
        task = asyncio.ensure_future(_three_awaits([]))
        for _ in range(2):
            await asyncio.sleep(0)
        ids: list = []
        positions.suspended_run(task.get_coro(), [], ids)
        line = task.get_coro().cr_frame.f_lineno
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return ids, line

    ids, line = asyncio.run(scenario())
    assert ids[:2] == [id(_three_awaits.__code__), line]


AUDITED = '''
import sys
sys.path[:0] = PATHS
events = []
sys.addaudithook(lambda event, args: event.startswith("ctypes") and events.append(event))
from tasktop.probe import positions  # its calibration may read memory through ctypes once
from test_probe_positions import _three_awaits

at_import = len(events)
coroutines = [_three_awaits([]) for _ in range(100)]
for coroutine in coroutines:
    coroutine.send(None)
    coroutine.send(None)  # at its second await: read from its instruction pointer
lines = set()
for coroutine in coroutines:
    ids = []
    positions.suspended_run(coroutine, [], ids)
    lines.add(ids[1])
print(len(lines), len(events) - at_import)
'''


def test_reading_where_coroutines_stand_raises_no_audit_events(tmp_path):
    """A host's audit hooks (security tooling) are called for every ctypes event: a pass that
    raised one per coroutine read would call them a million times."""
    script = tmp_path / "audited.py"
    paths = [os.path.dirname(__file__), *sys.path]
    script.write_text(AUDITED.replace("PATHS", repr(paths)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines, events = out.stdout.split()
    assert (int(lines), int(events)) == (1, 0)
