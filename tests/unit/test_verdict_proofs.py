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


def test_tasks_awaiting_a_crowd_held_from_outside_are_judged_without_a_count():
    """A task that only awaits others is dead only if all it awaits are.  Awaiting a waiter of
    a crowd judged held from outside, it can never be: it is judged alive without counting
    its references (at a million tasks, 50,000 of them took 0.3 s), and so is one awaiting
    it.  One awaiting an orphan's waiter is counted, and proven."""

    async def await_one(task):
        await task

    async def scenario() -> tuple:
        shared, orphaned = asyncio.Queue(), asyncio.Queue()
        keep = [shared]
        crowd = [asyncio.ensure_future(shared.get()) for _ in range(200)]
        orphans = [asyncio.ensure_future(orphaned.get()) for _ in range(3)]
        del orphaned
        awaiting = [asyncio.ensure_future(await_one(crowd[k])) for k in range(5)]
        await asyncio.sleep(0)
        awaiting.append(asyncio.ensure_future(await_one(awaiting[0])))
        awaiting.append(asyncio.ensure_future(await_one(orphans[0])))
        await asyncio.sleep(0)
        tasks = crowd + orphans + awaiting
        proof = Proof(lambda: None, 5.0, lambda n: tasks[n], len(tasks))
        for n, task in enumerate(crowd + orphans):
            proof.task(0, "Queue.get", task, n)
        for k in range(5):  # waiters 203-207, each awaiting a waiter of the crowd
            proof.dependent(1, 203 + k, (k,))
        proof.dependent(1, 208, (203,))  # awaits the first of them
        proof.dependent(1, 209, (200,))  # awaits the first orphan
        result = proof.run()
        counted = list(proof.counted[203:210])
        proof.close()
        for task in tasks:
            task.cancel()
        keep.clear()
        return result, counted

    result, counted = asyncio.run(scenario())
    assert result == [False] * 200 + [True] * 3 + [False] * 6 + [True]
    assert counted == [0] * 6 + [1]


def test_the_small_sets_are_counted_before_the_tasks_that_only_await_others():
    """Tasks that only await others are counted last: counted first, 100,000 of them took the
    whole budget before an orphan's waiters were reached.  Seen through the pacer, which the
    count calls every 16 waiters: whenever one of them has been counted, every waiter of the
    orphaned queue has been too."""

    async def await_one(task):
        await task

    async def scenario() -> list:
        orphaned = asyncio.Queue()
        orphans = [asyncio.ensure_future(orphaned.get()) for _ in range(3)]
        del orphaned
        awaiting = [asyncio.ensure_future(await_one(orphans[0])) for _ in range(64)]
        await asyncio.sleep(0)
        tasks = orphans + awaiting
        seen: list[tuple] = []
        proof = Proof(lambda: seen.append(tuple(proof.counted)), 5.0, lambda n: tasks[n], len(tasks))
        for n, task in enumerate(awaiting):  # the dependents first: the count must reorder
            proof.dependent(1, 3 + n, (64,))  # each awaits the first orphan (waiter 64)
        for n, task in enumerate(orphans):
            proof.task(0, "Queue.get", task, n)
        result = proof.run()
        proof.close()
        for task in tasks:
            task.cancel()
        return result, seen

    result, seen = asyncio.run(scenario())
    assert result == [True] * 67  # nothing holds the queue: the waiters and the tasks awaiting one
    dependents_counted = [s for s in seen if any(s[:64])]
    assert dependents_counted, "the pacer never saw a dependent counted"
    assert all(all(s[64:67]) for s in dependents_counted)
