"""``dump --full`` in constant memory: the reply's task rows left packed (``wire.Rows``) and
unpacked one at a time as the text or the JSON is printed, a piece at a time."""
from __future__ import annotations

import json

from tasktop import wire
from tasktop.render.text import json_pieces, render_text, text_pieces, to_document


def task_row(n: int) -> dict:
    return {"id": n, "name": f"receipt-{n}", "group": "65f6319b0596", "loop": 1,
            "state": "await task" if n % 7 == 0 else "Queue.get", "awaiting": n - 1 if n % 7 == 0 else None,
            "blocked_s": 1.25 * n, "stack": [{"func": "Queue.get", "file": "/srv/shop/queues.py", "line": 158},
                                             {"func": "consume", "file": "/srv/shop/app.py", "line": n % 50}],
            "created_by": [{"func": "spawn", "file": "/srv/shop/app.py", "line": 20}], "created_in": 5,
            "awaiting_all": [], "awaited_by": [n + 1] if n % 11 == 0 else []}


def full_reply(rows: int, streamed: bool) -> tuple[dict, bytes]:
    """A ``full`` reply as the probe packs it (rows as a ``wire.Stream`` when ``streamed``),
    and its payload."""
    tasks = [task_row(n) for n in range(rows)]
    data = {"schema": 1, "time": 1.0, "process": {"pid": 42, "argv": ["app.py"]},
            "totals": {"tasks": rows, "threads": 1, "loops": 1, "groups": 1},
            "groups": [{"id": "65f6319b0596", "kind": "task", "count": rows, "state": "Queue.get",
                        "blocked_min_s": 0.0, "blocked_max_s": 9.0, "stack": tasks[0]["stack"] if rows else [],
                        "created_by": []}],
            "tasks": wire.Stream(rows, iter(tasks)) if streamed else tasks,
            "threads": [{"native_id": 7, "name": "MainThread", "state": "running", "stack": [], "kernel": {}}]}
    payload = b"".join(wire.iter_blocks({"ok": True, "data": data}))
    data["tasks"] = tasks
    return data, payload


def test_rows_left_packed_are_the_rows_each_time_they_are_read():
    plain, payload = full_reply(2500, streamed=True)
    reply = wire.decode(payload, packed=("data", "tasks"))
    rows = reply["data"]["tasks"]
    assert isinstance(rows, wire.Rows) and len(rows) == 2500
    assert list(rows) == plain["tasks"] and list(rows) == plain["tasks"]  # read twice, the same
    assert {k: v for k, v in reply["data"].items() if k != "tasks"} == {k: v for k, v in plain.items() if k != "tasks"}
    assert reply["ok"] is True
    assert wire.decode(payload) == {"ok": True, "data": plain}  # unpacked whole, as before


def test_text_and_json_from_packed_rows_are_those_of_the_rows():
    for rows in (0, 1, 2500):
        plain, payload = full_reply(rows, streamed=True)
        packed = wire.decode(payload, packed=("data", "tasks"))["data"]
        assert "".join(text_pieces(packed, full=True)) == render_text(plain, full=True)
        assert json.loads("".join(json_pieces(to_document(packed)))) == to_document(plain)
    assert len(list(text_pieces(packed, full=True))) > 2  # printed a piece at a time


def test_rows_cut_short_are_a_protocol_error_when_read():
    _plain, payload = full_reply(50, streamed=True)
    rows = wire.decode(payload, packed=("data", "tasks"))["data"]["tasks"]
    _assert_undecodable(wire.Rows(rows.payload[:rows.offset + 200], rows.offset, len(rows)))


def _assert_undecodable(rows: wire.Rows) -> None:
    try:
        list(rows)
    except wire.ProtocolError as exc:
        assert "undecodable frame" in str(exc)
    else:
        raise AssertionError("rows past the end of the payload were read")


def test_a_key_not_in_the_reply_leaves_it_as_decode_does():
    plain, payload = full_reply(3, streamed=False)
    assert wire.decode(payload, packed=("data", "nothing")) == wire.decode(payload)
    assert wire.decode(payload, packed=("nothing", "tasks")) == wire.decode(payload)


def _blocks(payload: bytes, sizes: list) -> wire.Blocks:
    """``payload`` cut into blocks of ``sizes`` in turn (as a chunked reply may come)."""
    blocks, at, n = [], 0, 0
    while at < len(payload):
        blocks.append(payload[at:at + sizes[n % len(sizes)]])
        at += len(blocks[-1])
        n += 1
    return wire.Blocks(blocks)


def test_rows_read_from_the_blocks_they_came_in_are_those_of_the_joined_payload():
    plain, payload = full_reply(2500, streamed=True)
    for sizes in ([7], [1, 300, 4096], [len(payload)], [256 * 1024]):
        blocks = _blocks(payload, sizes)
        assert len(blocks) == len(payload)
        reply = wire.decode(blocks, packed=("data", "tasks"))
        rows = reply["data"]["tasks"]
        assert rows.payload is blocks  # not joined
        assert list(rows) == plain["tasks"] and list(rows) == plain["tasks"]
        assert {k: v for k, v in reply["data"].items() if k != "tasks"} == {k: v for k, v in plain.items() if k != "tasks"}
        assert wire.decode(blocks) == {"ok": True, "data": plain}
        assert b"".join(iter(blocks.reader(1000).read, b"")) == payload[1000:]


def test_rows_cut_short_in_blocks_are_a_protocol_error_when_read():
    _plain, payload = full_reply(50, streamed=True)
    rows = wire.decode(_blocks(payload, [100]), packed=("data", "tasks"))["data"]["tasks"]
    _assert_undecodable(wire.Rows(_blocks(payload[:rows.offset + 200], [100]), rows.offset, len(rows)))


def named_reply(rows: int, named: int | None = None) -> tuple[dict, bytes]:
    """``full_reply`` as the probe packs it now: each distinct stack once in ``stacks`` (a
    ``StackTable`` holding at most ``named``), after the rows that name them."""
    from tasktop.probe.replies import StackTable

    plain, _payload = full_reply(rows, streamed=False)
    table = StackTable() if named is None else StackTable(named)
    shared: dict = {}  # the probe names a key's one cached list: equal stacks are one object

    def named_row(row: dict) -> dict:
        out = dict(row)
        for field in ("stack", "created_by"):
            out[field] = table.name(shared.setdefault(repr(row[field]), row[field]))
        return out

    data = {**plain, "tasks": wire.Stream(rows, map(named_row, plain["tasks"]))}
    data["stacks"] = table.stacks
    return plain, b"".join(wire.iter_blocks({"ok": True, "data": data}))


def test_stacks_sent_once_are_put_back_in_every_row_packed_or_not():
    plain, payload = named_reply(2500)
    raw = wire.decode(payload)["data"]
    assert len(raw["stacks"]) == 51  # 50 lines of consume, and one creation stack
    assert all(type(row["stack"]) is int for row in raw["tasks"])
    assert wire.with_stacks(raw) == plain
    packed = wire.with_stacks(wire.decode(payload, packed=("data", "tasks"))["data"])
    assert list(packed["tasks"]) == plain["tasks"] and list(packed["tasks"]) == plain["tasks"]
    assert "".join(text_pieces(packed, full=True)) == render_text(plain, full=True)
    assert len(payload) < 0.6 * len(full_reply(2500, streamed=True)[1])  # short stacks, even so


def test_stacks_past_a_full_table_stay_in_their_rows():
    plain, payload = named_reply(2500, named=10)
    raw = wire.decode(payload)["data"]
    assert len(raw["stacks"]) == 10
    assert {type(row["stack"]) for row in raw["tasks"]} == {int, list}
    assert wire.with_stacks(raw) == plain


def test_a_reply_without_a_table_is_left_as_it_came():
    plain, payload = full_reply(30, streamed=True)  # as a probe before the table sends it
    assert wire.with_stacks(wire.decode(payload)["data"]) == plain


def test_a_row_naming_a_stack_the_reply_lacks_is_a_protocol_error_when_read():
    _plain, payload = named_reply(50)
    data = wire.decode(payload, packed=("data", "tasks"))["data"]
    data["stacks"] = data["stacks"][:1]
    _assert_undecodable(wire.with_stacks(data)["tasks"])


def test_rows_json_with_their_stacks_made_once_is_the_json_of_each_row():
    """Shared stacks, rows' own stacks, empty and missing ones, and a name holding what a
    mark might look like: the same text as ``json.dumps`` of each row."""
    plain, payload = named_reply(300)
    rows = list(wire.with_stacks(wire.decode(payload, packed=("data", "tasks"))["data"])["tasks"])
    rows[1] = dict(rows[1], stack=[], created_by=None, name="\x00stack\x00")
    rows[2] = json.loads(json.dumps(rows[2]))  # stacks of its own
    rows[3] = dict(rows[3], stack=rows[4]["created_by"], created_by=rows[4]["created_by"])
    del rows[5]["created_by"]
    before = json.dumps(rows)
    text = "".join(json_pieces({"schema": 1, "tasks": rows}))
    lines = [line.strip().rstrip(",") for line in text.splitlines() if line.startswith("    {")]
    assert lines == [json.dumps(row) for row in rows]
    assert json.dumps(rows) == before  # the rows themselves left as they were
