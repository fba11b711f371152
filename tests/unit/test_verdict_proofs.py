"""Leak proofs in this process: a proof counts every reference to what the waiters wait on, and
one out of time proves nothing.  (Verdicts on real targets are in integration/test_verdicts.py.)"""
from __future__ import annotations

import asyncio
import gc

from tasktop.probe.verdicts import Proof


async def _parked(n: int) -> list:
    q = asyncio.Queue()
    tasks = [asyncio.ensure_future(q.get()) for _ in range(n)]
    await asyncio.sleep(0)
    return tasks


def test_a_proof_out_of_time_proves_nothing_and_says_so():
    """The budget stops the count: waiters not counted are not settled (never proven)."""

    async def scenario():
        tasks = await _parked(10)
        gc.collect()
        proof = Proof(lambda: None, 0.0, lambda n: tasks[n])
        for n, task in enumerate(tasks):
            assert proof.task(0, "Queue.get", task, n) is not None
        result = proof.run()
        proof.close()
        for task in tasks:
            task.cancel()
        return result, proof.out_of_time

    result, out_of_time = asyncio.run(scenario())
    assert out_of_time and result == [None] * 10


def test_a_proof_counts_every_reference():
    """In process: ten tasks on a queue only they hold are proven; one more reference to the
    queue from anywhere (here a list) and none is."""

    async def scenario(extra: list) -> list:
        q = asyncio.Queue()
        extra.append(q) if extra is not None else None
        tasks = [asyncio.ensure_future(q.get()) for _ in range(10)]
        del q
        await asyncio.sleep(0)
        proof = Proof(lambda: None, 5.0, lambda n: tasks[n])
        for n, task in enumerate(tasks):
            proof.task(0, "Queue.get", task, n)
        result = proof.run()
        proof.close()
        for task in tasks:
            task.cancel()
        return result

    assert asyncio.run(scenario(None)) == [True] * 10
    assert asyncio.run(scenario([])) == [False] * 10


def test_tasks_added_in_bulk_are_the_waiters_added_one_at_a_time():
    """``Proof.tasks`` (a group's slice at once, its targets known) makes the same waiters as
    ``Proof.task`` one at a time, and the same verdicts: an orphaned queue's waiters proven,
    a shared one's not."""

    async def scenario(bulk: bool) -> tuple:
        shared, orphaned = asyncio.Queue(), asyncio.Queue()
        tasks = ([asyncio.ensure_future(shared.get()) for _ in range(4)]
                 + [asyncio.ensure_future(orphaned.get()) for _ in range(3)])
        targets = [shared] * 4 + [orphaned] * 3
        del orphaned
        await asyncio.sleep(0)
        proof = Proof(lambda: None, 5.0, lambda n: tasks[n - 100], 2)  # sized too small: grown
        if bulk:
            assert proof.tasks(7, "Queue.get", 100, targets) == 0
        else:
            for n, (task, target) in enumerate(zip(tasks, targets)):
                assert proof.task(7, "Queue.get", task, 100 + n, target) == n
            del task, target  # (the loop's names would hold the last ones from outside)
        del targets
        arrays = [list(a[:proof.n]) for a in (proof.group_of, proof.owner_of, proof.state_of, proof.source)]
        result = proof.run()
        proof.close()
        for task in tasks:
            task.cancel()
        return arrays, result

    one_at_a_time, in_bulk = asyncio.run(scenario(False)), asyncio.run(scenario(True))
    assert in_bulk == one_at_a_time
    assert in_bulk[0] == [[7] * 7, [0] * 4 + [1] * 3, [0] * 7, list(range(100, 107))]
    assert in_bulk[1] == [False] * 4 + [True] * 3

