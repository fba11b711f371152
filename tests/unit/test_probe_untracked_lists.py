"""The probe's long lists of task records are kept out of the garbage collector's way: a young
list of a million records was walked by every young collection (any thread's, the host's
included) until it grew old, each walk reading every record's header: 10-13 ms at a time.
Lists that hold the host's tasks stay tracked: the leak proofs count references to tasks."""
from __future__ import annotations

import asyncio
import gc

from tasktop.probe import hooks, record_lists
from tasktop.probe.handoff import Pacer
from tasktop.probe.recycled_lists import RecycledLists


def test_a_passs_lists_of_records_are_untracked_and_its_list_of_tasks_is_not():
    lists = RecycledLists()
    records, members, refs = lists.take("records"), lists.take(object()), lists.take("refs", records=False)
    assert not gc.is_tracked(records) and not gc.is_tracked(members)
    assert gc.is_tracked(refs)
    lists.recycle(Pacer())
    assert lists.take("records") is records  # the same list, the next pass: still untracked
    assert not gc.is_tracked(records)


def test_the_lists_that_keep_the_records_are_untracked():
    async def parked() -> None:
        await asyncio.sleep(3600)

    async def scenario() -> list:
        tasks = [asyncio.ensure_future(parked()) for _ in range(10)]
        record_lists.take_made(Pacer())
        kept = list(record_lists.kept)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return kept

    hooks.install()
    try:
        kept = asyncio.run(scenario())
    finally:
        hooks.uninstall()
    assert kept and not any(map(gc.is_tracked, kept))
