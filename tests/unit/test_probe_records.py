"""A task's record is found among the task's own weak references, and kept alive by the lists of
``record_lists``: no dict of every record.  Two threads can make a record for one task at the
same moment (the creation hook, and the probe thread for a task it met in asyncio's registry
first): the oldest counts, and only it is kept."""
from __future__ import annotations

import asyncio
import gc
import itertools

from tasktop.probe import endings, hooks, record_lists


async def _parked() -> None:
    await asyncio.sleep(3600)


def _kept_for(task: asyncio.Task) -> list:
    """The records the lists keep for ``task``."""
    return [info for info in itertools.chain(*record_lists.kept, record_lists.made) if info() is task]


def _run(scenario) -> object:
    hooks.install()
    try:
        return asyncio.run(scenario())
    finally:
        hooks.uninstall()


def test_a_record_made_meanwhile_by_the_probe_thread_is_the_one_kept_with_the_creation_site():
    """The probe thread records the task between its making and the hook's record of it (here
    from inside the application's factory, where a switch of threads could put it): the hook
    sees that, and gives its creation site to that older record instead of keeping a second."""
    met = []

    def factory(loop, coro, **kwargs):
        task = asyncio.Task(coro, loop=loop, **kwargs)
        met.append(hooks.info_for(task))  # what the probe thread does to a task it met first
        return task

    async def scenario() -> tuple:
        asyncio.get_running_loop().set_task_factory(factory)
        task = asyncio.get_running_loop().create_task(_parked())  # this line is the site
        found = hooks.record_of(task), _kept_for(task)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return found

    record, kept = _run(scenario)
    assert record is met[0]
    assert kept == [record]
    assert record.site is not None and record.born is not None


def test_of_two_records_of_a_task_the_first_made_is_found():
    async def scenario() -> tuple:
        task = asyncio.ensure_future(_parked())
        first = hooks.record_of(task)
        second = hooks.adopt(task)  # another thread's, made a moment later: it finds the first
        extra = hooks.TaskInfo(task)  # one made and not yet settled
        found = hooks.record_of(task)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        del extra
        return first, second, found, _kept_for(task)

    first, second, found, kept = _run(scenario)
    assert first is not None and second is first and found is first
    assert kept == [first]


def test_the_live_records_are_counted_without_a_walk():
    async def scenario() -> tuple:
        before = record_lists.count()
        tasks = [asyncio.ensure_future(_parked()) for _ in range(100)]
        made = record_lists.count() - before
        for task in tasks[:60]:
            task.cancel()
        task = None
        for _ in range(2):  # their last steps
            await asyncio.sleep(0)
        del tasks[:60]
        gc.collect()
        left = record_lists.count() - before
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return made, left

    made, left = _run(scenario)
    assert (made, left) == (100, 40)


async def _boxed(box: list) -> list:
    return box


def test_the_record_of_a_task_the_collector_frees_is_not_taken_for_alive():
    """CPython clears a weak reference's callback when reference counting frees its object, but
    not when the collector does (an object in a cycle): a record must not be judged alive by
    it, or the records of tasks in cycles would be listed, fingerprinted and kept for ever."""
    async def scenario() -> tuple:
        tasks = [asyncio.ensure_future(_boxed([])) for _ in range(50)]
        for _ in range(2):  # their one step
            await asyncio.sleep(0)
        for task in tasks:
            task.result().append(task)  # task -> its result -> task: only the collector frees it
        records = [hooks.record_of(task) for task in tasks]
        task = None
        del tasks[:]
        gc.collect()
        live: list = []
        record_lists.copy_live(live)
        record_lists.take_made(lambda: None)
        record_lists.prune(lambda: None)
        kept = set(map(id, itertools.chain(*record_lists.kept)))
        return records, live, kept

    records, live, kept = _run(scenario)
    assert all(record() is None for record in records)  # the collector freed every task
    ids = set(map(id, records))
    assert not ids & set(map(id, live))
    assert not ids & kept  # left out of the lists: they were more than an eighth


def test_a_record_another_thread_is_still_making_is_neither_used_nor_doubled(monkeypatch):
    """A record is found among the task's weak references from the moment it exists, before
    its maker (a loop's thread, in the creation hook) has set what it holds: until then a look
    from the probe thread finds no record, and making one of its own would double it."""
    monkeypatch.setattr(hooks, "WAIT_COMPLETE", 3)

    async def scenario() -> tuple:
        task = asyncio.Task(_parked())  # no factory: no record
        making = hooks.TaskInfo(task)  # what the hook has made so far: nothing set
        looked = hooks.record_of(task), hooks.info_for(task)
        kept = _kept_for(task)
        making.number = 0  # the maker's last step
        found = hooks.record_of(task)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return looked, kept, found is making

    looked, kept, found = _run(scenario)
    assert looked == (None, None)
    assert kept == []  # the probe thread's own record was dropped: the older one counts
    assert found


def test_a_copy_of_the_records_is_told_apart_as_it_was_when_taken():
    """A pass copies the records with those of freed tasks not yet left out (telling them apart
    touches every task: too long to do while the loops wait), and asyncio's registry at the
    same moment.  Told apart later, the records of tasks freed after the copy count as alive
    at the copy (as the registry's copy holds them) and those freed before do not."""
    from tasktop.probe import registry
    from tasktop.probe.task_pass import TaskPasses

    async def finish(tasks: list) -> None:
        for task in tasks:
            task.cancel()
        for _ in range(2):
            await asyncio.sleep(0)
        del tasks[:]
        gc.collect()

    async def scenario() -> tuple:
        await asyncio.sleep(0)  # asyncio.run's own tasks settled
        tasks = [asyncio.ensure_future(_parked()) for _ in range(100)]
        await asyncio.sleep(0)
        await finish(tasks[:10])  # freed before the copy
        del tasks[:10]
        records, refs = [], []
        record_lists.copy(records)
        dropped = record_lists.dropped()
        eager = registry.copy(refs, [asyncio.get_running_loop()] if registry.LINKED else ())  # 3.14+: C's lists
        await finish(tasks[:10])  # freed after it
        del tasks[:10]
        difference = TaskPasses._difference_of(records, dropped, refs, eager, lambda: None)
        await finish(tasks)
        return difference, len(records) - len(refs)

    difference, more = _run(scenario)
    assert more >= 10  # the copy holds the records of the ten freed before it
    assert difference == (0, 0, 0)


def test_a_task_the_collector_destroys_is_lost_with_its_site_though_the_probe_met_it_meanwhile():
    """The collector clears the records of all it found unreachable, then runs finalizers, which
    may hand the GIL to the probe thread (on 3.14 a pass meets such a task in asyncio's task
    lists).  A record the probe made for it then would have no creation site, and asyncio's
    report of the lost task a moment later would find that one: the probe makes none while the
    collector is at work, and the report finds the task's own, freed a moment before.  Here the
    probe thread's look is made from a finalizer in the same garbage, run before the task's."""
    met = []

    class Spy:  # made before the task: finalized before it (the collector keeps their order)
        task = None

        def __del__(self):
            met.append(hooks.info_for(self.task))

    async def parked(future, spy):
        await future

    def lost_here() -> dict:
        return {key: row[0] for key, row in endings.lost.items()}

    async def scenario() -> tuple:
        loop = asyncio.get_running_loop()
        spy, future = Spy(), loop.create_future()
        spy.task = loop.create_task(parked(future, spy))  # the site: a cycle through the future
        await asyncio.sleep(0)
        site = hooks.record_of(spy.task).site
        before = lost_here()
        del spy, future
        gc.collect()
        return site, before, lost_here()

    site, before, after = _run(scenario)
    assert site is not None
    assert met == [None]
    assert after.get(site, 0) == before.get(site, 0) + 1
    assert after.get(None, 0) == before.get(None, 0)


def test_records_made_while_they_are_taken_are_taken_too_in_order_and_counted_once():
    """The probe thread takes ``made`` a slice at a time, handing the GIL away between slices,
    while the creation hook goes on appending: every record ends in ``kept`` once, in creation
    order, and ``count()`` stays the number of live tasks at every hand-off."""
    first = record_lists.CHUNK + 10  # more than one slice
    counts: list = []

    async def scenario() -> tuple:
        before = record_lists.count()  # this scenario's own task among them
        tasks = [asyncio.ensure_future(_parked()) for _ in range(first)]

        def pace() -> None:  # a hand-off: the loop's thread makes tasks meanwhile
            counts.append((record_lists.count(), before + len(tasks)))
            if len(tasks) < first + 3:
                tasks.append(asyncio.ensure_future(_parked()))

        record_lists.take_made(pace)
        order = [info() for info in itertools.chain(*record_lists.kept)]
        left = len(record_lists.made)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return tasks, order, left

    tasks, order, left = _run(scenario)
    assert left == 0
    assert order[-len(tasks):] == tasks  # each once, in creation order, the late ones last
    assert len(counts) == 4 and all(live == made for live, made in counts)
