"""asyncio's registry copied a slice at a time (``registry._extend_sliced``): the loops get the
GIL between slices, and a set that changes meanwhile is left for one copy in C."""
from __future__ import annotations

from tasktop.probe import registry


def test_a_set_left_alone_is_copied_whole_a_slice_at_a_time(monkeypatch):
    monkeypatch.setattr(registry, "CHUNK", 3)
    items = set(range(10))
    paced = []
    refs = ["kept"]
    assert registry._extend_sliced(refs, items, lambda: paced.append(len(refs)))
    assert refs[0] == "kept" and sorted(refs[1:]) == sorted(items)
    assert paced == [4, 7, 10]  # between full slices only


def test_a_set_changed_meanwhile_leaves_nothing_behind(monkeypatch):
    """A task made (or freed) between two slices makes iterating the set fail: what was copied
    is dropped, and the caller copies the set in one call (``copy``)."""
    monkeypatch.setattr(registry, "CHUNK", 3)
    items = set(range(10))
    refs = ["kept"]
    assert not registry._extend_sliced(refs, items, lambda: items.add(len(items) + 100))
    assert refs == ["kept"]


def test_copy_falls_back_to_one_call_when_the_set_changes(monkeypatch):
    import weakref

    class Task:
        pass

    tasks = [Task() for _ in range(10)]
    weak = weakref.WeakSet(tasks)
    monkeypatch.setattr(registry, "CHUNK", 3)
    monkeypatch.setattr(registry, "_sources", lambda: ([weak.data], []))
    more = []

    def pace() -> None:  # a task made between two slices
        if not more:
            more.append(Task())
            weak.add(more[0])

    refs: list = []
    assert registry.copy(refs, (), pace) == []
    assert sorted(map(id, (r() for r in refs))) == sorted(map(id, tasks + more))
