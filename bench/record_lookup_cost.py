"""What finding a task's record costs, with the probe's old dict of records and without it.

Until 2026-12-02 the probe kept every task's record (a weak reference to the task with eight
slots) in ``hooks.records``, a dict keyed by the records themselves: the creation hook put each
new one in with ``setdefault``, and the look-ups from a task were
``records.get(weakref.ref(task))``.  Now a record is found among the task's own weak references
(``weakref.getweakrefs``); ``weakref.getweakrefcount`` only counts them.  This times each of
the four over N parked tasks (the best of five rounds, nanoseconds an operation, the loop
around it included), in one process, no probe:

    python bench/record_lookup_cost.py --n 200000
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import weakref


class Record(weakref.ref):
    __slots__ = ("number", "parent", "site", "waiter", "since", "cache", "birth", "target")


def _forget(_record: Record) -> None:
    pass


async def _parked() -> None:
    await asyncio.get_running_loop().create_future()


def _best(run, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        best = min(best, run())
    return best


async def _main(n: int) -> None:
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(_parked()) for _ in range(n)]
    await asyncio.sleep(0)
    records = [Record(task, _forget) for task in tasks]
    ref, getweakrefs, getweakrefcount = weakref.ref, weakref.getweakrefs, weakref.getweakrefcount

    def put() -> float:  # the creation hook's ``records.setdefault(info, info)``, the dict growing
        found: dict = {}
        setdefault = found.setdefault
        start = time.perf_counter()
        for record in records:
            setdefault(record, record)
        return time.perf_counter() - start

    by_record = {record: record for record in records}

    def get() -> float:  # ``hooks.record_of``: ``records.get(weakref.ref(task))``
        lookup = by_record.get
        start = time.perf_counter()
        for task in tasks:
            lookup(ref(task))
        return time.perf_counter() - start

    def among_refs() -> float:  # the task's weak references, listed
        start = time.perf_counter()
        for task in tasks:
            getweakrefs(task)
        return time.perf_counter() - start

    def counted() -> float:  # the task's weak references, counted
        start = time.perf_counter()
        for task in tasks:
            getweakrefcount(task)
        return time.perf_counter() - start

    print(f"{n:,} tasks, Python {sys.version.split()[0]}, ns an operation (best of 5)")
    for label, run in (("records.setdefault(record, record)", put), ("records.get(weakref.ref(task))", get),
                       ("weakref.getweakrefs(task)", among_refs), ("weakref.getweakrefcount(task)", counted)):
        print(f"| {label} | {_best(run) / n * 1e9:.0f} |")
    for task in tasks:
        task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    asyncio.run(_main(parser.parse_args().n))


if __name__ == "__main__":
    main()
