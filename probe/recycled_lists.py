"""The long lists of a pass (its copy of the records, each group's members), kept from one pass
to the next and refilled rather than made anew.

A list the collector has seen survive is in its oldest generation and is not walked by young
collections; a new list of 100,000 records is, on every young collection while the pass lasts,
and reading 100,000 records' GC headers held the event loop up each time.  A new list of
records is therefore not tracked by the collector at all (``untracked``): records are weak
references, and nothing a record refers to refers back to a list of them, so no reference
cycle runs through one, and reference counting frees it.  (A first pass makes its lists anew: a
young collection with a new list of a million records in it took 23-28 ms.)  A pass's
lists are only used until the next pass starts (the probe thread answers one request at a
time).
"""
from __future__ import annotations

from typing import Any

from .handoff import Pacer
from .registry import CHUNK
from .untracked import untrack


MAX_KEPT = 4096  # empty lists kept for names no pass took lately


class RecycledLists:
    """Lists by name (or group key), handed out empty to each pass."""

    def __init__(self) -> None:
        self._kept: dict = {}  # name or group key -> list
        self._used: dict = {}

    def take(self, name: Any, records: bool = True) -> list:
        """An empty list for ``name`` in this pass: the one it had in the last pass, if any.
        One for ``records`` only (the default) is made untracked; another (tasks, which the
        leak proofs count references to) is left to the collector."""
        found = self._kept.pop(name, None)
        if found is None:
            found = []
            if records:
                untrack(found)
        self._used[name] = found
        return found

    def recycle(self, pace: Pacer) -> None:
        """A pass starts: the last pass's lists are emptied and kept, and so are the empty
        ones it did not take, up to MAX_KEPT lists (a pass that does not group takes no
        group's list, and the next one that does would make them all anew)."""
        for items in self._used.values():
            empty(items, pace)
        kept, self._kept, self._used = self._kept, self._used, {}
        for name, items in kept.items():
            if len(self._kept) >= MAX_KEPT:
                break
            self._kept.setdefault(name, items)

    def release(self, name: Any, pace: Pacer) -> None:
        """Empty this pass's list for ``name`` now, not when the next pass starts (a pass that
        gave way holding tasks asyncio's registry listed would keep them alive until then)."""
        items = self._used.get(name)
        if items is not None:
            empty(items, pace)


def empty(items: list, pace: Pacer) -> None:
    """``items.clear()`` a slice at a time: dropping 100,000 references touches 100,000
    objects in one C call, which held the event loop up."""
    while items:
        del items[-CHUNK:]
        pace()
