"""A group's ``created by`` rows name, per creation stack, the first three tasks that made its
members: found in one scan of the members for every stack (``Group._parents``), with slices made
by one task taken whole, and slices made by several looked at member by member."""
from __future__ import annotations

from tasktop.probe import groups
from tasktop.probe.groups import Group


class _Site:
    def __init__(self, name: str) -> None:
        self.stack = (name,)  # what ``tally`` shows a site by


class _Member:
    __slots__ = ("since", "site", "parent")

    def __init__(self, site: _Site, parent: int | None) -> None:
        self.since, self.site, self.parent = 1.0, site, parent


def _created(members: list) -> dict:
    group = Group(None, members)
    group.tally(2.0, lambda info: info.site, lambda: None)
    return {stack[0]: (count, parents) for stack, count, parents in group.created}


def test_each_site_gets_the_first_three_tasks_that_made_its_members(monkeypatch):
    monkeypatch.setattr(groups, "CHUNK", 4)  # slices of four members: several slices, mixed and not
    a, b, c = _Site("a"), _Site("b"), _Site("c")
    members = ([_Member(a, 1)] * 6  # two slices made by task 1 alone
               + [_Member(b, None), _Member(b, 2), _Member(a, 3), _Member(c, 4)]  # one mixed slice
               + [_Member(b, 5), _Member(b, 6), _Member(b, 7), _Member(a, 8)]
               + [_Member(c, 9)] * 4)
    assert _created(members) == {"b": (5, [2, 5, 6]), "a": (8, [1, 3, 8]), "c": (5, [4, 9])}


def test_one_site_takes_every_member():
    a = _Site("a")
    members = [_Member(a, None)] * 3 + [_Member(a, 4), _Member(a, 4), _Member(a, 5)]
    assert _created(members) == {"a": (6, [4, 5])}
