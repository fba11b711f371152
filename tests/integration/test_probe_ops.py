"""One table of requests (``wire.OPS``) drives the probe's dispatch: a real probe answers as the
table says, and anything it does not list gets an error reply on a connection that lives on.
(The table itself, every op's reply and argument bounds, is in unit/test_wire_ops.py.)"""
from __future__ import annotations

import socket

from support.targets import EVENT_WAITERS
from tasktop import wire


def _ask(sock: socket.socket, request: dict) -> dict:
    wire.write_frame(sock, request, 10)
    return wire.read_frame(sock, 10)


def test_the_probe_answers_as_the_table_says(spawn):
    target = spawn(EVENT_WAITERS)
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
