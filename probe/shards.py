"""Dicts and sets keyed by task seqs, split into ``SHARDS`` by the key's low bits.

A dict or set grows by copying itself whole into a table twice or four times its size, in one C
call: in a target of a million tasks, the proof's map of 100,000 seqs took 17 ms for one insert
in a first dump (1 ms in the next, its memory used before), the event loop waiting.  Split in 64,
no part holds more than a sixty-fourth of the keys, so no insert copies more than that; seqs are
consecutive numbers, so their low bits spread them evenly.  A shard is found with ``key & MASK``
(inline in the hot loops: a function call per key would cost more than the lookup).
"""
from __future__ import annotations

import itertools
import operator
from typing import Callable, Iterable, Iterator

SHARDS = 64
MASK = SHARDS - 1


def dicts() -> list[dict]:
    """An empty sharded dict: ``shards[key & MASK][key]``."""
    return [{} for _ in range(SHARDS)]


def sets() -> list[set]:
    """An empty sharded set: ``key in shards[key & MASK]``."""
    return [set() for _ in range(SHARDS)]


def contains(shards: list, keys: Iterable[int]) -> Iterator[bool]:
    """Whether each of ``keys`` (iterable twice, such as a slice) is in ``shards``, in C: no
    Python call per key."""
    found_in = map(shards.__getitem__, map(operator.and_, keys, itertools.repeat(MASK)))
    return map(operator.contains, found_in, keys)


def size(shards: list) -> int:
    """How many keys the shards hold in all."""
    return sum(map(len, shards))


def clear(shards: list, pace: Callable[[], None]) -> None:
    """Empty every shard, ``pace`` called after each (freeing 100,000 entries at once is one C
    call too)."""
    for shard in shards:
        shard.clear()
        pace()
