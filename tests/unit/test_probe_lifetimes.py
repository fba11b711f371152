"""A group's live lifetimes, counted by birth time (tasks made in a burst share one), are what
the list of every lifetime gives: the same count, median and longest."""
from __future__ import annotations

import collections
import random

from tasktop.probe.end_history import lifetime_stats, lifetime_stats_of_births


def test_lifetimes_counted_by_birth_are_those_of_the_sorted_list():
    rng = random.Random(7)
    now = 1000.0
    for size in (1, 2, 3, 10, 257, 5000):
        # Bursts: many tasks share a birth time, as the creation hook's grain makes them.
        births = [round(rng.uniform(0.0, 900.0), 1) for _ in range(size)]
        expected = lifetime_stats(sorted(now - b for b in births))
        assert lifetime_stats_of_births(collections.Counter(births), now) == expected
    assert lifetime_stats_of_births(collections.Counter(), now) == lifetime_stats([])
