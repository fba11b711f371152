"""A pass that meets a task before its first step describes it without making a frame object
for its coroutine (3.11+, where a coroutine's frame lives inside it): one made then stays tied to
the coroutine for the rest of its life, memory the host would keep for every such task."""
from __future__ import annotations

import asyncio
import gc
import sys
import types

import pytest

from tasktop.probe import hooks
from tasktop.probe.config import Options
from tasktop.probe.keys import Keys
from tasktop.probe.task_pass import TaskPasses


async def _parked():
    await asyncio.sleep(3600)


def _has_frame_object(coro) -> bool:
    return any(type(r) is types.FrameType for r in gc.get_referents(coro))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="every frame is an object up to 3.10")
def test_a_task_not_started_is_described_without_a_frame_object():
    async def scenario() -> tuple:
        task = asyncio.ensure_future(_parked())  # its first step is only scheduled
        coro = task.get_coro()
        passes = TaskPasses(None, Keys(Options()), None)
        info = hooks.info_for(task)
        info.cache = info.target = None  # as the pass's visit leaves a task first seen
        key = passes.describe(task, info, None, task._fut_waiter)
        key = key if not isinstance(key, tuple) else key[0]
        before = (key.state, _has_frame_object(coro))
        await asyncio.sleep(0)  # the first step: parked in sleep
        info.cache = info.target = None
        key = passes.describe(task, info, None, task._fut_waiter)
        key = key if not isinstance(key, tuple) else key[0]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return before, key.state

    (state, framed), parked = asyncio.run(scenario())
    assert (state, framed) == ("ready", False)
    assert parked == "sleep"  # the same pass walks it once it has started
