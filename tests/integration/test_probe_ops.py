"""One table of requests (``wire.OPS``) drives the probe's dispatch: every request it lists has a
reply, the arguments are converted and bounded as the table says, and anything it does not list
gets an error reply on a connection that lives on."""
from __future__ import annotations

import math
import socket

import pytest

from tasktop import wire
from tasktop.probe.replies import Replies

IDLE = r'''
import asyncio
EVENT = None
async def main():
    global EVENT
    EVENT = asyncio.Event()  # referenced, so its waiters are not garbage
    for _ in range(3):
        asyncio.create_task(EVENT.wait())
    print("ready", flush=True)
    await asyncio.sleep(1000)
asyncio.run(main())
'''


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


def _ask(sock: socket.socket, request: dict) -> dict:
    wire.write_frame(sock, request, 10)
    return wire.read_frame(sock, 10)


def test_the_probe_answers_as_the_table_says(spawn):
    target = spawn(IDLE)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(target.path)
    try:
        assert _ask(sock, {"op": "hello", "version": wire.VERSION})["ok"]
        groups = [g for g in _ask(sock, {"op": "summary"})["data"]["groups"] if g["state"] == "Event.wait"]
        assert groups and groups[0]["count"] == 3
        page = _ask(sock, {"op": "group", "id": groups[0]["id"], "offset": -5, "limit": 2})["data"]
        assert page["offset"] == 0 and len(page["items"]) == 2 and page["total"] == 3
        # Not in the table, even where the op cannot be looked up or a chunked reply is asked.
        for request in ({"op": "explode"}, {"op": [1], "chunked": True}, {"op": None}, {"chunked": True}):
            reply = _ask(sock, request)
            assert reply["ok"] is False and reply["error"].startswith("unknown request"), (request, reply)
        bad = _ask(sock, {"op": "verdicts", "budget_s": "soon"})
        assert bad["ok"] is False and "soon" in bad["error"]
        assert _ask(sock, {"op": "summary"})["data"]["totals"]["tasks"] == 4  # still served
    finally:
        sock.close()
