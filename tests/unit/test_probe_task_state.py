"""A task is "running" only while its step runs: the current task a pass looked up once per
loop can be stale by the time the pass reaches a task that has parked since."""
from __future__ import annotations

import asyncio

from tasktop.probe.tasks import state_of_task


def test_a_parked_task_shows_its_wait_even_where_the_pass_took_it_for_the_current_one():
    """Left "running", the state stayed for as long as the task waited: a pass keeps a parked
    task's description until what it waits on changes."""
    loop = asyncio.new_event_loop()
    fut = loop.create_future()

    async def parked() -> None:
        await fut

    task = loop.create_task(parked())
    try:
        loop.run_until_complete(asyncio.sleep(0))  # the task's first step: it parks on fut
        assert task._fut_waiter is fut
        assert state_of_task(task, task, "socket read", [])[0] == "socket read"
        assert state_of_task(task, task, None, [])[0] == "future"
        assert state_of_task(task, None, None, [])[0] == "future"
    finally:
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        loop.close()


def test_a_task_whose_step_runs_is_running():
    async def look() -> str:
        me = asyncio.current_task()
        return state_of_task(me, me, None, [])[0]

    assert asyncio.run(look()) == "running"
