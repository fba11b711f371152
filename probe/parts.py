"""A long list of a pass (a group's members, the rows of every task) kept as lists of about
``PART`` items, never as one.

A list grown by appends is copied whole into a new block each time it outgrows its own, in
one C call.  At a million tasks that is megabytes written into pages the kernel has not handed
out yet, each zero-filled on its first write: the copy of a 350,000-item list held the event
loop up 8-12 ms (perf on the probe thread; bench/README.md).  A part never holds much more
than ``PART``, so no copy is longer than about 1.5 ms.

The appends stay C calls: a pass appends to ``part().append`` and asks for the part again
every few hundred items and whenever it switches lists, so a part may pass ``PART`` by that
much (a soft cap).
"""
from __future__ import annotations

import bisect
import itertools
from typing import Any, Callable, Iterator

#: Items a part holds before the next is started: 512 KiB of references, whose copy into
#: fresh pages takes about 1.5 ms here.
PART = 65_536


class Parts:
    """A list in parts: appended to through ``part()``, read by index, in slices or whole.
    Read only once the pass that filled it is done (indexes are found from the parts' sizes
    then)."""

    __slots__ = ("lists", "_take", "_name", "_starts")

    def __init__(self, first: list | None = None, take: Callable[[Any], list] | None = None,
                 name: Any = None) -> None:
        #: The parts; ``take((name, n))`` gives the list for the n-th (the pass's recycled
        #: lists), else a new one is made.
        self.lists: list = [[] if first is None else first]
        self._take, self._name = take, name
        self._starts: list | None = None  # the index each part starts at, once read

    def part(self) -> list:
        """The list the next items go to: the last part, or a new one once that holds PART."""
        last = self.lists[-1]
        if len(last) < PART:
            return last
        last = self._take((self._name, len(self.lists))) if self._take is not None else []
        self.lists.append(last)
        self._starts = None
        return last

    def append(self, item: Any) -> None:
        """One item (where items are few: a pass appends through ``part()``)."""
        self.part().append(item)

    def __len__(self) -> int:
        return sum(map(len, self.lists))

    def __iter__(self) -> Iterator:
        return itertools.chain.from_iterable(self.lists)

    def __getitem__(self, index: int) -> Any:
        starts = self._starts
        if starts is None:
            starts = self._starts = [0, *itertools.accumulate(map(len, self.lists[:-1]))]
        if index < 0:
            index += len(self)
            if index < 0:
                raise IndexError("Parts index out of range")
        n = bisect.bisect_right(starts, index) - 1
        return self.lists[n][index - starts[n]]

    def slices(self, size: int) -> Iterator[list]:
        """The items as lists of at most ``size`` (copies of parts of the parts)."""
        for part in self.lists:
            for start in range(0, len(part), size):
                yield part[start:start + size]
