"""The recording format (wire.recording) and the TIME forms, without any process: what is
written reads back, a torn or corrupt tail reads up to the last whole record, bad files and
other versions are one-line errors, and a reader needs nothing but msgpack."""
from __future__ import annotations

import datetime
import zlib

import msgpack
import pytest

from tasktop.client.recorded import moment
from tasktop.wire import recording
from tasktop.wire.recording import Recording, RecordingError, Writer


def summary(t: float, groups: int = 200, grow: int = 0, **extra) -> dict:
    """A summary like the probe's: ``groups`` groups blocked since t=0, the first growing."""
    out = {
        "schema": 1, "time": t,
        "process": {"pid": 42, "argv": ["app.py"], "started_at": 0.0},
        "probe": {"version": "x", "interval_s": 1.0},
        "totals": {"tasks": groups * 3 + grow, "threads": 1, "loops": 1, "groups": groups},
        "memory": {"rss_bytes": 1000 + grow, "gc_counts": [1, 2, 3]},
        "loops": [{"id": 1, "lag_ms": 0.1, "stalls": [{"at": 5.0, "duration_ms": 120.0,
                                                      "stack": [{"func": "slow", "file": "/srv/a.py", "line": 9}]}]}],
        "groups": [{"id": f"{i:012x}", "kind": "task", "count": 3 + (grow if i == 0 else 0),
                    "state": "Event.wait", "blocked_min_s": round(t - 1.0, 3), "blocked_max_s": round(t, 3),
                    "stack": [{"func": f"handler{i}", "file": "/srv/shop.py", "line": i}],
                    "created_by": [{"count": 3, "stack": [{"func": "spawn", "file": "/srv/shop.py", "line": 1}],
                                    "in_tasks": [1]}]}
                   for i in range(groups)],
    }
    out.update(extra)
    return out


def write(path, summaries, key_every=recording.KEY_EVERY, compress=True) -> Writer:
    with open(path, "wb") as fh:
        writer = Writer(fh.write, {"process": summaries[0]["process"], "started": summaries[0]["time"]}, key_every,
                        compress=compress)
        for s in summaries:
            writer.sample(s)
        writer.extra("verdicts", summaries[-1]["time"], {"verdicts": [{"group": "000000000000"}]})
    return writer


def same(got: dict, expected: dict) -> None:
    by_id = {g["id"]: g for g in got["groups"]}
    assert set(by_id) == {g["id"] for g in expected["groups"]}
    for group in expected["groups"]:
        mine = by_id[group["id"]]
        for key, value in group.items():
            if recording.is_clock_field(key):
                assert abs(mine[key] - value) <= recording.CLOCK_SLACK
            else:
                assert mine[key] == value, key
    assert [g["id"] for g in got["groups"]] == [g["id"] for g in sorted(
        expected["groups"], key=lambda g: (-g["count"], g["kind"], g["id"]))]
    for key in expected:
        if key != "groups":
            assert got[key] == expected[key], key


@pytest.mark.parametrize("compress", [True, False])
def test_every_sample_reads_back_across_key_summaries(tmp_path, compress):
    summaries = [summary(100.0 + i, groups=30, grow=i // 3) for i in range(25)]
    summaries[10]["groups"].pop(5)  # a group empties...
    summaries[11]["groups"].append(dict(summaries[11]["groups"][0], id="new000000000", count=1))  # ...one appears
    write(tmp_path / "r.ttrec", summaries, key_every=7, compress=compress)
    first_bytes = {r[2][:1] for r in msgpack.Unpacker(open(tmp_path / "r.ttrec", "rb"), raw=False) if r[0] == "key"}
    assert first_bytes == ({b"\x78"} if compress else {b"\x88"})  # zlib, or a msgpack map of 8
    rec = Recording(str(tmp_path / "r.ttrec"))
    assert len(rec) == 25 and not rec.torn and rec.start == 100.0 and rec.end == 124.0
    for i in list(range(25)) + [3, 20, 0, 24, 13]:  # forwards, then jumps back and forth
        same(rec.summary(i), summaries[i])
    assert rec.extra_at("verdicts", 124.0)[1] == {"verdicts": [{"group": "000000000000"}]}
    assert rec.extra_at("verdicts", 123.0) is None


def test_stepping_back_through_checkpoints_reads_every_sample_as_written(tmp_path, monkeypatch):
    monkeypatch.setattr(recording, "CHECKPOINT_EVERY", 4)
    monkeypatch.setattr(recording, "CHECKPOINTS", 5)  # some are dropped on the way
    summaries = [summary(100.0 + i, groups=12, grow=i // 2) for i in range(40)]
    summaries[17]["groups"].pop(3)
    write(tmp_path / "r.ttrec", summaries, key_every=15)
    rec = Recording(str(tmp_path / "r.ttrec"))
    keys = [i for i, sample in enumerate(rec.samples) if sample[2] == "key"]
    assert len(keys) == 3
    firsts = {39} | {k - 1 for k in keys[1:]}
    applied = []
    real_apply = recording.apply_delta
    monkeypatch.setattr(recording, "apply_delta", lambda *a: applied.append(1) or real_apply(*a))
    for i in range(39, -1, -1):  # back, one sample at a time
        applied.clear()
        same(rec.summary(i), summaries[i])
        if i not in firsts:  # the first of each key's stretch is rebuilt from its key
            assert len(applied) < 4, i  # from the nearest checkpoint, not from the key
    for i in list(range(0, 40, 3)) + [33, 32, 31, 5, 4, 16, 15, 14]:
        same(rec.summary(i), summaries[i])
    assert 0 < len(rec._checkpoints) <= 5


def changing(n: int = 130) -> list[dict]:
    """Summaries in which groups grow, vanish, come back and appear, stalls come and go, and
    the groups are dropped once and set again (the delta shapes a reader meets)."""
    summaries = [summary(100.0 + i, groups=15, grow=i // 4) for i in range(n)]
    for i, s in enumerate(summaries):
        if 30 <= i < 70:
            s["groups"].pop(4)  # a group empties for a while
        if i >= 50:
            s["groups"].append(dict(s["groups"][1], id=f"new{i // 20:09d}", count=1 + i % 5))
        if i % 9 == 0:
            s["loops"][0]["stalls"] = s["loops"][0]["stalls"] + [{"at": 100.0 + i, "duration_ms": 80.0,
                                                                  "stack": [{"func": f"stall{i}"}]}]
    summaries[90].pop("groups")  # a summary without groups: the list dropped, then set again
    return summaries


def test_a_history_read_gives_each_sample_as_stepping_there_does(tmp_path):
    """``history`` (a jump's one pass over the samples before the new moment) gives of each
    sample what ``summary`` gives stepping there one by one, and leaves the reader able to
    give ``summary`` of the moment and its neighbours as written."""
    summaries = changing()
    write(tmp_path / "r.ttrec", summaries, key_every=25)
    rec = Recording(str(tmp_path / "r.ttrec"))
    stepped = Recording(str(tmp_path / "r.ttrec"))
    expected = [stepped.summary(i) for i in range(len(summaries))]  # one step at a time
    for first, last in [(0, 129), (3, 40), (26, 27), (48, 120), (85, 95), (100, 129), (10, 60), (49, 51), (0, 1)]:
        history = rec.history(first, last)
        assert [h["time"] for h in history] == [summaries[i]["time"] for i in range(first, last)]
        for i, h in zip(range(first, last), history):
            for key in ("totals", "memory", "loops"):
                assert h[key] == expected[i][key], (first, last, i, key)
            assert {g["id"]: g["count"] for g in h["groups"] or ()} == \
                {g["id"]: g["count"] for g in expected[i].get("groups") or ()}, (first, last, i)
        for i in (last, last - 1, max(0, last - 11), min(last + 1, 129)):
            assert rec.summary(i) == expected[i], (first, last, i)
            same(rec.summary(i), summaries[i]) if "groups" in summaries[i] else None
    assert rec.history(5, 5) == []


def test_a_history_read_again_gives_what_it_gave_without_reading_the_deltas_again(tmp_path):
    """What ``history`` gave of a sample is kept: going back to a moment seen before (the end
    after the start, a jump made again) gives the same samples, read once, and ``summary``
    of the moment as written; a read that overlaps one before reads only the samples after."""
    summaries = changing()
    write(tmp_path / "r.ttrec", summaries, key_every=25)
    rec = Recording(str(tmp_path / "r.ttrec"))
    stepped = Recording(str(tmp_path / "r.ttrec"))
    expected = [stepped.summary(i) for i in range(len(summaries))]
    end = rec.history(60, 128)
    rec.summary(0)  # elsewhere, as a replay's g does
    again = rec.history(60, 128)
    assert all(a is b for a, b in zip(again, end)) and len(again) == len(end)
    assert rec.summary(128) == expected[128] and rec.summary(127) == expected[127]
    later = rec.history(100, 129)  # overlapping: the samples before 128 as given, the last read
    assert all(a is b for a, b in zip(later, end[40:])) and later[-1]["time"] == summaries[128]["time"]
    assert {g["id"]: g["count"] for g in later[-1]["groups"] or ()} == \
        {g["id"]: g["count"] for g in expected[128].get("groups") or ()}
    assert later[-1]["totals"] == expected[128]["totals"] and later[-1]["loops"] == expected[128]["loops"]
    for i in (129 - 1, 120, 100):
        assert rec.summary(i) == expected[i], i


def test_a_state_carried_through_many_deltas_is_the_one_apply_delta_gives(tmp_path):
    """``Forward`` (lists held by id, put in order once) against ``apply_delta`` one delta at
    a time, through every delta shape: the same state, sort keys included."""
    write(tmp_path / "r.ttrec", changing(), key_every=1000)
    rec = Recording(str(tmp_path / "r.ttrec"))
    payloads = [rec._payload(p, r) for p, r, _kind, _t in rec.samples]
    state = recording.keyed(payloads[0])
    forward = recording.Forward(state)
    for number, delta in enumerate(payloads[1:], 1):
        state = recording.apply_delta(state, delta)
        forward.apply(delta)
        if number % 7 == 0 or number > 85:  # now and then, and around the dropped groups
            assert forward.state() == state, number
    assert forward.state() == state


def test_new_fields_are_carried_without_code_changes(tmp_path):
    """A field the writer has never heard of (another branch's lifecycle counters) is kept."""
    summaries = [summary(10.0 + i, groups=3, lifecycle={"ended": i, "lost": [i, i]}) for i in range(5)]
    for i, s in enumerate(summaries):
        for g in s["groups"]:
            g["ended_count"] = i
    summaries[3].pop("lifecycle")
    write(tmp_path / "r.ttrec", summaries)
    rec = Recording(str(tmp_path / "r.ttrec"))
    for i in range(5):
        same(rec.summary(i), summaries[i])
    assert "lifecycle" not in rec.summary(3) and rec.summary(4)["lifecycle"] == {"ended": 4, "lost": [4, 4]}


def test_unchanged_groups_cost_close_to_nothing(tmp_path):
    """200 groups blocked for longer and longer, one of them growing: a sample is a few
    dozen bytes, not 200 groups."""
    summaries = [summary(1000.0 + i, groups=200, grow=i) for i in range(301)]
    writer = write(tmp_path / "r.ttrec", summaries, key_every=1000, compress=False)
    records = list(msgpack.Unpacker(open(tmp_path / "r.ttrec", "rb"), raw=False))
    deltas = [len(r[2]) for r in records if r[0] == "delta"]
    assert len(deltas) == 300 and max(deltas) < 150, max(deltas)
    assert writer.bytes < 100_000


def test_readable_with_msgpack_alone(tmp_path):
    """Uncompressed (``tasktop record --no-compress``), a file needs nothing but msgpack."""
    write(tmp_path / "r.ttrec", [summary(1.0 + i, groups=2) for i in range(3)], compress=False)
    with open(tmp_path / "r.ttrec", "rb") as fh:
        records = list(msgpack.Unpacker(fh, raw=False))
    kinds = [r[0] for r in records]
    assert kinds == ["head", "stacks", "key", "delta", "delta", "verdicts"]
    for kind, t, payload, crc in records:
        assert zlib.crc32(payload) == crc and isinstance(msgpack.unpackb(payload), dict)
    head = msgpack.unpackb(records[0][2])
    assert head["magic"] == "tasktop-recording" and head["version"] == recording.VERSION
    stacks = msgpack.unpackb(records[1][2])["stacks"]
    key = msgpack.unpackb(records[2][2])
    assert stacks[key["groups"][0]["stack"]][0]["func"] in ("handler0", "handler1")


def test_a_torn_tail_reads_back_to_the_last_whole_record(tmp_path):
    """Cut the file at every byte of its last records (kill -9 mid-write): never an error,
    never a half record, always every whole sample before the cut."""
    summaries = [summary(1.0 + i, groups=5, grow=i) for i in range(12)]
    write(tmp_path / "r.ttrec", summaries, key_every=5)
    data = (tmp_path / "r.ttrec").read_bytes()
    ends = []  # byte offset where each sample record ends
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    for record in unpacker:
        if record[0] in ("key", "delta"):
            ends.append(unpacker.tell())
    cut_file = tmp_path / "cut.ttrec"
    for cut in range(ends[2], len(data)):
        cut_file.write_bytes(data[:cut])
        rec = Recording(str(cut_file))
        whole = sum(1 for end in ends if end <= cut)
        assert len(rec) == whole
        same(rec.summary(whole - 1), summaries[whole - 1])


def test_a_corrupt_record_ends_the_readable_part(tmp_path):
    summaries = [summary(1.0 + i, groups=5, grow=i) for i in range(6)]
    write(tmp_path / "r.ttrec", summaries)
    data = bytearray((tmp_path / "r.ttrec").read_bytes())
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(bytes(data))
    ends = [unpacker.tell() for record in unpacker if record[0] in ("key", "delta")]
    data[ends[3] - 10] ^= 0xFF  # inside the fourth sample
    (tmp_path / "r.ttrec").write_bytes(bytes(data))
    rec = Recording(str(tmp_path / "r.ttrec"))
    assert rec.torn and len(rec) == 3
    same(rec.summary(2), summaries[2])


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b'{"schema": 1, "groups": []}', "is not a tasktop recording"),
    (bytes(range(256)) * 4, "is not a tasktop recording"),
    (msgpack.packb(["head", 0.0, msgpack.packb({"magic": "other"}), 0]), "is not a tasktop recording"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message) as info:
        Recording(str(path))
    assert "\n" not in str(info.value)


def test_another_version_is_refused_by_name(tmp_path):
    path = tmp_path / "v9.ttrec"
    path.write_bytes(recording.pack_record("head", 0.0, {"magic": recording.MAGIC, "version": 9}))
    with pytest.raises(RecordingError, match="format version 9; this tasktop reads version 1"):
        Recording(str(path))


def test_a_recording_without_samples_is_refused(tmp_path):
    path = tmp_path / "r.ttrec"
    path.write_bytes(recording.pack_record("head", 0.0, {"magic": recording.MAGIC, "version": 1}))
    with pytest.raises(RecordingError, match="has no samples yet"):
        Recording(str(path))


def test_time_forms():
    start = datetime.datetime(2026, 3, 1, 23, 50, 0).timestamp()
    end = start + 3600  # 00:50 the next day
    assert moment("start", start, end) == start and moment("end", start, end) == end
    assert moment("-5m", start, end) == end - 300
    assert moment("+30s", start, end) == start + 30
    assert moment("+1h", start, end) == end
    assert moment("-1m30s", start, end) == end - 90
    assert moment("23:55", start, end) == start + 300
    assert moment("00:10:00", start, end) == start + 1200  # the next day, within the recording
    assert moment("2026-03-02T00:20:00", start, end) == start + 1800
    for bad, message in [("yesterday", "not a TIME"), ("-5x", "not a duration"), ("25:00", "not a time of day"),
                         ("12:00", "not within the recording"), ("-2h", "not within the recording"),
                         ("2027-01-01T00:00:00", "not within the recording")]:
        with pytest.raises(ValueError, match=message):
            moment(bad, start, end)
