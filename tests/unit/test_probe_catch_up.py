"""The background's walk of chains a pass left unwalked (``TaskPasses.catch_up``): one lap in
creation order from where the last pass stopped, round past the newest record it had to the
first, a step of a few milliseconds at a time; a chain it walks is cached as a pass would
cache it, and records no pass has seen, of tasks done or freed, are passed over."""
from __future__ import annotations

import asyncio
import gc
import types
import weakref

from support.parked import unseen

from tasktop.probe import hooks, record_lists


def _walked(info, task) -> bool:
    return (info.cache is not None and type(info.waiter) is weakref.ReferenceType
            and info.waiter() is task._fut_waiter)


def _laps(start_at: int, step_s: float, later: int = 0) -> tuple[list, int, bool, list]:
    """300 parked tasks no pass has walked, a lap begun at the record ``start_at`` by a pass
    that had them all (``later`` more tasks made after it, records no pass has seen), walked
    in steps of ``step_s``: whether each of the 300 was walked, the steps taken, whether
    anything is left pending, and whether each later one was walked."""
    async def scenario() -> tuple[list, int, bool, list]:
        ev = asyncio.Event()
        tasks = [asyncio.ensure_future(ev.wait()) for _ in range(300)]
        await asyncio.sleep(0.01)
        records, passes = unseen(tasks)
        passes.loops = types.SimpleNamespace(watches={id(asyncio.get_running_loop()): None})
        record_lists.take_made(lambda: None)  # where passes find them
        passes._lap = (records[start_at].seq, records[-1].seq)  # as such a pass leaves it
        passes._resume = records[start_at].seq
        newer = [asyncio.ensure_future(ev.wait()) for _ in range(later)]
        await asyncio.sleep(0.01)
        newer_records = [hooks.info_for(task) for task in newer]
        record_lists.take_made(lambda: None)
        steps = 0
        while passes.catching_up and steps < 10_000:
            passes.catch_up(step_s)
            steps += 1
            if passes.catching_up and not passes._wrapped:  # a step out of time, in the first half:
                # it walked on from where the last one stopped, up to where it says the next goes on
                walked = [info.seq for info, task in zip(records, tasks) if _walked(info, task)]
                assert walked == [info.seq for info in records[start_at:] if info.seq < passes._resume]
        found = [_walked(info, task) for info, task in zip(records, tasks)]
        newer_found = [getattr(info, "cache", None) is not None for info in newer_records]
        for task in tasks + newer:
            task.cancel()
        await asyncio.gather(*tasks, *newer, return_exceptions=True)
        return found, steps, passes.catching_up, newer_found

    found = asyncio.run(scenario())
    gc.collect()
    return found


def test_a_lap_begun_midway_walks_the_records_before_it_too():
    found, steps, pending, _ = _laps(200, 60.0)
    assert found == [True] * 300 and steps == 1 and not pending


def test_steps_out_of_time_go_on_where_the_last_one_stopped():
    # No time at all: a step walks the 64 chains between two looks at the clock.
    found, steps, pending, _ = _laps(100, 0.0)
    assert found == [True] * 300 and not pending
    assert steps >= 300 // 64


def test_a_lap_ends_at_the_newest_record_its_pass_had():
    # Tasks made after the pass are the next pass's: a lap ends however fast they come.
    found, _, pending, newer_found = _laps(0, 60.0, later=50)
    assert found == [True] * 300 and not pending
    assert newer_found == [False] * 50


def test_records_no_pass_has_seen_of_tasks_done_or_freed_are_passed_over():
    """Records straight from ``made`` (no ``cache`` yet): a task still waiting is walked, one
    done (and still referenced) and one freed are passed over, and the lap ends."""
    async def scenario() -> tuple:
        ev = asyncio.Event()
        done = asyncio.ensure_future(asyncio.sleep(0))
        freed = asyncio.ensure_future(asyncio.sleep(0))
        waiting = asyncio.ensure_future(ev.wait())
        await asyncio.sleep(0.01)
        # No pass has seen them; the waiting one last, so that a step that failed on the
        # others (and ended the lap) would leave it unwalked.
        infos = [hooks.info_for(task) for task in (done, freed, waiting)]
        del freed
        gc.collect()
        passes = unseen([])[1]
        passes.loops = types.SimpleNamespace(watches={id(asyncio.get_running_loop()): None})
        record_lists.take_made(lambda: None)
        passes._lap, passes._resume = (infos[0].seq, infos[-1].seq), infos[0].seq
        passes.catch_up(60.0)
        result = (_walked(infos[2], waiting), getattr(infos[0], "cache", None), infos[1](),
                  passes.catching_up)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        return result

    walked, done_cache, freed_task, pending = asyncio.run(scenario())
    assert walked and done_cache is None and freed_task is None and not pending


def test_a_step_a_client_asked_during_gives_way_and_the_lap_goes_on():
    """A client asking stops a step as a pass gives way (``Preempted``, so that the sample after
    it runs to its end), and the next step walks on from there."""
    from tasktop.probe.task_pass import Preempted

    async def scenario() -> tuple:
        ev = asyncio.Event()
        tasks = [asyncio.ensure_future(ev.wait()) for _ in range(5000)]  # more than a hand-off's worth
        await asyncio.sleep(0.01)
        records, passes = unseen(tasks)
        passes.loops = types.SimpleNamespace(watches={id(asyncio.get_running_loop()): None})
        record_lists.take_made(lambda: None)
        passes._lap, passes._resume = (records[0].seq, records[-1].seq), records[0].seq
        passes.asking = lambda: True
        try:
            passes.catch_up(60.0)
            gave_way = False
        except Preempted:
            gave_way = True
        walked_then = sum(_walked(info, task) for info, task in zip(records, tasks))
        pending = passes.catching_up
        passes.asking = None
        passes.catch_up(60.0)
        found = [_walked(info, task) for info, task in zip(records, tasks)]
        ev.set()
        await asyncio.gather(*tasks)
        return gave_way, walked_then, pending, found, passes.catching_up

    gave_way, walked_then, pending, found, still = asyncio.run(scenario())
    gc.collect()
    assert gave_way and pending and 0 < walked_then < 5000
    assert found == [True] * 5000 and not still
