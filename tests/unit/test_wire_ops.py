"""One table of requests (``wire.OPS``): every request it lists has a reply in the probe, and the
arguments are converted and bounded as the table says.  (The probe serving it over its socket is
in integration/test_probe_ops.py.)"""
from __future__ import annotations

import math

import pytest

from tasktop import wire
from tasktop.probe.replies import Replies


@pytest.mark.parametrize("op", sorted(wire.OPS))
def test_every_request_of_the_table_has_a_reply(op):
    assert callable(getattr(Replies, op, None)), f"the probe cannot answer {op!r}"


def test_arguments_are_converted_and_bounded_as_the_table_says():
    group = wire.OPS["group"]
    assert group.arguments({"id": 5}) == ["5", 0, 100]
    assert group.arguments({"id": "x", "offset": -3, "limit": 10**6}) == ["x", 0, wire.MAX_PAGE]
    assert group.arguments({"id": "x", "offset": 2.7, "limit": 0}) == ["x", 2, 1]
    verdicts = wire.OPS["verdicts"]
    assert verdicts.arguments({}) == [2.0]
    assert verdicts.arguments({"budget_s": 1e9}) == [60.0]
    assert verdicts.arguments({"budget_s": -1}) == [0.0]
    assert not math.isnan(verdicts.arguments({"budget_s": "nan"})[0])  # never an unbounded proof
    assert wire.OPS["memory"].arguments({"top": 10**6}) == [200]
    with pytest.raises(TypeError):
        wire.OPS["task"].arguments({})  # required
    with pytest.raises(ValueError):
        wire.OPS["thread"].arguments({"ident": "main"})
    assert [name for name, op in wire.OPS.items() if op.chunkable] == ["full"]
