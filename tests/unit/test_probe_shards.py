"""The proof's maps of task seqs are split in shards, so that no insert grows one table of
100,000 seqs in one piece (17 ms at one insert in a target of a million tasks)."""
from __future__ import annotations

import array

from tasktop.probe import shards
from tasktop.probe.shards import MASK


def test_consecutive_seqs_spread_evenly_and_are_found_where_they_were_put():
    by_seq = shards.dicts()
    for seq in range(1_000_000, 1_100_000):
        by_seq[seq & MASK][seq] = seq * 2
    assert shards.size(by_seq) == 100_000
    assert max(map(len, by_seq)) <= 100_000 // shards.SHARDS + 1
    assert by_seq[1_050_001 & MASK][1_050_001] == 2_100_002


def test_membership_is_read_from_a_slice_of_an_array_without_a_call_per_key():
    needed = shards.sets()
    for seq in (7, 64, 1 << 40):
        needed[seq & MASK].add(seq)
    seqs = memoryview(array.array("q", [7, 8, 64, 65, 1 << 40, 0]))[0::1]
    assert list(shards.contains(needed, seqs)) == [True, False, True, False, True, False]


def test_clearing_gives_the_loop_a_chance_after_each_shard():
    by_seq = shards.dicts()
    for seq in range(1000):
        by_seq[seq & MASK][seq] = None
    paced = []
    shards.clear(by_seq, lambda: paced.append(shards.size(by_seq)))
    assert len(paced) == shards.SHARDS and paced[0] > 0 and paced[-1] == 0
