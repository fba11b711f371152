"""The recording file: summaries over time, append-only, readable with msgpack alone.

Written by ``tasktop record``, by the live view's record key and by the probe's flight
recorder (``TASKTOP_RECORD``); read by ``tasktop replay``, ``dump --at`` and ``diff FILE@T``.
Standard library and msgpack only: the probe writes it inside the target.

A file is a sequence of msgpack arrays, one per record, nothing between them::

    [kind: str, time: float, payload: bin, crc32(payload): int]

``payload`` is one msgpack map.  The first record is ``head`` (``magic``, ``version``, the
process, the writer); then ``stacks`` records define stacks, ``key`` records carry a whole
summary and ``delta`` records what changed since the previous sample.  A writer killed in the
middle of a record leaves a torn last array: readers stop at the last whole record whose
checksum holds.  The full specification is in README ("The recording format").

Why this shape: a day at one sample a second is 86,400 samples, and a summary of 200 groups
with their stacks is ~400 KB.  Stacks are written once (``stacks``) and referred to by number,
unchanged groups are not written at all, and a ``blocked_*_s`` that merely grew with the clock
is not a change; a whole ``key`` summary every ``KEY_EVERY`` samples bounds how many deltas a
reader applies to reach any moment.
"""
from __future__ import annotations

import bisect
import os
import threading
import zlib
from typing import Any, Callable, Iterator

import msgpack

MAGIC = "tasktop-recording"
#: Bumped on any change a reader of the previous version would misread.
VERSION = 1
#: A whole summary every this many samples (and at the start of every file or segment).
KEY_EVERY = 300
#: A reader keeps the rebuilt summary of every this many samples it went through (at most
#: ``CHECKPOINTS`` of them), so a step back replays at most this many deltas.
CHECKPOINT_EVERY = 10
CHECKPOINTS = 100
#: Checkpoints are kept only in this many samples before the moment a reader went to (where a
#: step back goes next): each is a state kept alive, and the garbage collector walks them all.
CHECKPOINT_SPAN = 120
#: A reader keeps what ``history`` gave of this many samples, the last ones read (three
#: replay jumps' worth at one sample a second; a few objects each).
HISTORY_KEPT = 360
#: A ``blocked_*_s`` within this many seconds of "the old value plus the time since" is
#: unchanged: a group blocked for an hour does not change every second.
CLOCK_SLACK = 0.5
#: Lists of maps with an ``id`` (``groups``, ``loops``) are diffed item by item.
_SORTED_LISTS = {"groups": lambda g: (-(g.get("count") or 0), g.get("kind") or "", g.get("id") or "")}


class RecordingError(Exception):
    """Not a recording, a version this reader does not know, or no sample in it."""


def is_clock_field(name: str) -> bool:
    """A duration that grows with the clock while nothing changes (see ``CLOCK_SLACK``)."""
    return name.startswith("blocked") and name.endswith("_s")


_CLOCK_FIELDS: dict = {}  # name -> is_clock_field(name): a summary has few names, asked thousands of times


def _is_clock_field(name: str) -> bool:
    known = _CLOCK_FIELDS.get(name)
    if known is None:
        known = is_clock_field(name)
        if len(_CLOCK_FIELDS) < 10_000:
            _CLOCK_FIELDS[name] = known
    return known


#: Payloads at least this long are zlib-compressed when that makes them shorter (``compress``).
COMPRESS_FROM = 128
#: A compressed payload starts with zlib's header byte; a msgpack map never does (0x78 is the
#: positive integer 120 in msgpack).
ZLIB_FIRST = 0x78


def pack_record(kind: str, t: float, payload: dict, compress: bool = False) -> bytes:
    """One record's bytes (its payload zlib-compressed when ``compress`` and worth it)."""
    body = msgpack.packb(payload, use_bin_type=True, default=_fallback)
    if compress and len(body) >= COMPRESS_FROM:
        packed = zlib.compress(body, 6)
        if len(packed) < len(body):
            body = packed
    return msgpack.packb([kind, float(t), body, zlib.crc32(body)], use_bin_type=True)


def unpack_payload(body: bytes) -> Any:
    """A record's payload: msgpack, after zlib when it starts with zlib's header byte."""
    if body[:1] == bytes((ZLIB_FIRST,)):
        body = zlib.decompress(body)
    return msgpack.unpackb(body, raw=False, strict_map_key=False)


def _fallback(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


# -- writing ------------------------------------------------------------------------------------
class Writer:
    """Turns summaries (and other replies) into records, given to ``write(bytes)``.

    Holds what the reader will have rebuilt (``state``), so every delta is against exactly
    that, and the stacks defined so far.  ``restart()`` begins a self-contained part (a new
    file, or a flight-recorder segment): header, stacks and a key summary again."""

    def __init__(self, write: Callable[[bytes], Any], head: dict, key_every: int = KEY_EVERY,
                 compress: bool = True, pace: Callable[[], Any] | None = None) -> None:
        self.write = write
        self.compress = compress
        #: Called every few dozen items while a summary is walked (the probe gives the GIL away).
        self.pace = pace
        self.head = dict(head)
        self.key_every = max(1, key_every)
        self.bytes = 0
        self.samples = 0
        self.restart()

    def restart(self) -> None:
        self.stacks: dict[bytes, int] = {}
        self.state: dict | None = None
        self.since_key = 0
        # The head is never compressed: its first bytes say what the file is.
        data = pack_record("head", self.head.get("started") or 0.0, {"magic": MAGIC, "version": VERSION, **self.head})
        self.write(data)
        self.bytes += len(data)

    def _emit(self, kind: str, t: float, payload: dict) -> None:
        data = pack_record(kind, t, payload, self.compress)
        self.write(data)
        self.bytes += len(data)

    def _intern(self, value: Any, fresh: list) -> Any:
        """``value`` with every ``stack`` replaced by its number (new ones go to ``fresh``)."""
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k == "stack" and isinstance(v, list):
                    body = msgpack.packb(v, use_bin_type=True, default=_fallback)
                    number = self.stacks.get(body)
                    if number is None:
                        number = self.stacks[body] = len(self.stacks)
                        fresh.append(v)
                    out[k] = number
                else:
                    out[k] = self._intern(v, fresh)
            return out
        if isinstance(value, list):
            pace = self.pace
            if pace is None or len(value) < 32:
                return [self._intern(v, fresh) for v in value]
            out_list = []
            for n, v in enumerate(value):
                if not n & 31:
                    pace()
                out_list.append(self._intern(v, fresh))
            return out_list
        return value

    def _interned(self, t: float, value: Any) -> Any:
        fresh: list = []
        first = len(self.stacks)
        out = self._intern(value, fresh)
        if fresh:
            self._emit("stacks", t, {"first": first, "stacks": fresh})
        return out

    def sample(self, summary: dict) -> None:
        """One summary: a ``key`` record or a ``delta`` against the last one."""
        t = float(summary.get("time") or 0.0)
        new = self._interned(t, summary)
        if self.state is None or self.since_key >= self.key_every:
            self._emit("key", t, new)
            self.state = keyed(new)
            self.since_key = 0
        else:
            delta = make_delta(self.state, new)
            self._emit("delta", t, delta)
            self.state = apply_delta(self.state, delta)
            self.since_key += 1
        self.samples += 1

    def extra(self, kind: str, t: float, data: Any) -> None:
        """Another reply kept as it is (``verdicts``, ``page``, ``memory``), stacks interned."""
        self._emit(kind, t, {"data": self._interned(t, data)})

    def end(self, t: float, reason: str) -> None:
        self._emit("end", t, {"reason": reason})


#: Kept in a rebuilt summary, never written: when an item of a list was last written (its
#: clock fields hold their value as of then), and when the last key summary was.
STAMP = "~t"
BASE = "~t0"
ORDER = "~order:"  # a reader's state: ORDER + list name -> (that list, its items' sort keys)


def make_delta(old: dict, new: dict) -> dict:
    """What turns ``old`` (a rebuilt summary) into ``new`` (an interned one); see ``apply_delta``."""
    delta: dict = {"time": new.get("time")}
    sets, merge, lists = {}, {}, {}
    base = old.get(BASE, old.get("time") or 0.0)
    for key, value in new.items():
        if key == "time":
            continue
        before = old.get(key)
        if key in old and before == value:
            continue
        if _is_id_list(value) and _is_id_list(before):
            change = _list_delta(before, value, base, new.get("time") or 0.0)
            if change:
                lists[key] = change
        elif isinstance(value, dict) and isinstance(before, dict) and set(before) <= set(value):
            merge[key] = {k: v for k, v in value.items() if k not in before or before[k] != v}
        else:
            sets[key] = value
    drop = [key for key in old if key not in new and not key.startswith("~")]
    for name, part in (("set", sets), ("merge", merge), ("lists", lists), ("drop", drop)):
        if part:
            delta[name] = part
    return delta


def _is_id_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) and "id" in item for item in value)


def _list_delta(old: list, new: list, base: float, t_new: float) -> dict:
    before = {item["id"]: item for item in old}
    changed = []
    for item in new:
        prev = before.pop(item["id"], None)
        if prev is None:
            changed.append(item)
            continue
        elapsed = t_new - prev.get(STAMP, base)
        part = {}
        for k, v in item.items():
            p = prev.get(k)
            if k in prev and p == v:
                continue
            if is_clock_field(k) and isinstance(v, (int, float)) and isinstance(p, (int, float)) \
                    and abs(v - (p + elapsed)) <= CLOCK_SLACK:
                continue
            part[k] = v
        if any(k not in item for k in prev if not k.startswith("~")):
            part = dict(item)  # a field went away: the whole item
        if part:
            part["id"] = item["id"]
            changed.append(part)
    out: dict = {}
    if changed:
        out["set"] = changed
    if before:
        out["gone"] = list(before)
    return out


def apply_delta(old: dict, delta: dict) -> dict:
    """The summary after ``delta``: new maps where something changed, the old ones shared.

    Items a delta does not name are not touched: their clock fields stay as of their ``STAMP``
    (``view`` adds the time since), so a sample costs what changed, not what is there."""
    new = dict(old)
    t_new = delta.get("time") or 0.0
    base = old.get(BASE, old.get("time") or 0.0)
    _set_and_merge(new, delta)
    for key, change in (delta.get("lists") or {}).items():
        before = old.get(key) or []
        order = _SORTED_LISTS.get(key)
        keys = None
        if order is not None:  # the sort keys of the list, kept beside it (see _apply_list)
            known = old.get(ORDER + key)
            keys = known[1] if known is not None and known[0] is before else None
        new[key], keys = _apply_list(before, change, t_new, base, order, keys)
        if order is not None:
            new[ORDER + key] = (new[key], keys)
    for key in delta.get("drop") or ():
        new.pop(key, None)
    return new


class Forward:
    """A rebuilt summary carried through many deltas in a row (a reader reaching a moment far
    from any state it knows): the same summary ``apply_delta`` gives, at a cost of what each
    delta changed.

    ``apply_delta`` makes a new state per delta (a new list of 200 groups each time: the price
    of states that share what did not change); on the way to a moment nobody looks at those
    states, so here the lists a delta changes are held as maps by id and changed in place, and
    put back in order once (``state``).  A delta of an unusual shape (a whole list set or
    dropped) is applied by ``apply_delta`` itself."""

    def __init__(self, state: dict) -> None:
        self._state = dict(state)
        self._open: dict[str, dict] = {}  # list name -> its items by id, while deltas go through

    def apply(self, delta: dict) -> None:
        state, opened = self._state, self._open
        lists = delta.get("lists") or {}
        if any(key in opened for key in delta.get("set") or ()) or any(key in opened for key in delta.get("drop") or ()) \
                or not all(key in opened or self._opened(key) for key in lists):
            self._state = apply_delta(self.state(), delta)
            return
        t_new = delta.get("time") or 0.0
        base = state.get(BASE, state.get("time") or 0.0)
        _set_and_merge(state, delta)
        for key, change in lists.items():  # as _apply_list does, item for item
            items = opened[key]
            for gid in change.get("gone") or ():
                items.pop(gid, None)
            for gid, part in {item["id"]: item for item in change.get("set") or ()}.items():
                item = items.get(gid)
                if item is None:
                    items[gid] = dict(part, **{STAMP: t_new})
                    continue
                item = _aged(item, t_new - item.get(STAMP, base))
                item.update(part)
                item[STAMP] = t_new
                items[gid] = item
        for key in delta.get("drop") or ():
            state.pop(key, None)

    def _opened(self, key: str) -> bool:
        """Hold list ``key`` by id; False when it is not a list of distinct ids."""
        value = self._state.get(key) or []
        if not isinstance(value, list) or not _is_id_list(value):
            return False
        items = {item["id"]: item for item in value}
        if len(items) != len(value):
            return False
        self._open[key] = items
        return True

    def items(self, key: str) -> list:
        """List ``key`` as it is now: its items in order but for the sorted lists (``groups``),
        whose order ``state`` makes (a history needs the counts, not the order)."""
        items = self._open.get(key)
        return list(items.values()) if items is not None else list(self._state.get(key) or ())

    def state(self) -> dict:
        """The rebuilt summary, as ``apply_delta`` would have made it (the lists in order)."""
        state = self._state
        for key, items in self._open.items():
            value = list(items.values())
            order = _SORTED_LISTS.get(key)
            if order is not None:  # every delta put the list back in order: so does one sort
                value.sort(key=order)
                state[ORDER + key] = (value, [order(item) for item in value])
            state[key] = value
        self._open.clear()
        self._state = dict(state)  # the one given out is never changed again
        return state

    def get(self, key: str) -> Any:
        return self._state.get(key)


_CLOCK_NAMES: dict = {}  # an item's field names -> its clock fields: items share a few shapes


def _set_and_merge(state: dict, delta: dict) -> None:
    """The time and the ``set`` and ``merge`` parts of ``delta``, into ``state`` (new maps for
    what a merge changes: the old ones may be shared)."""
    state["time"] = delta.get("time") or 0.0
    for key, value in (delta.get("set") or {}).items():
        state[key] = value
    for key, part in (delta.get("merge") or {}).items():  # a delta names a key in one part only
        merged = dict(state.get(key) or {})
        merged.update(part)
        state[key] = merged


def _aged(item: dict, elapsed: float) -> dict:
    """``item`` with its clock fields ``elapsed`` seconds older, and without its stamp."""
    names = tuple(item)
    clock = _CLOCK_NAMES.get(names)
    if clock is None:
        clock = tuple(k for k in names if k != STAMP and _is_clock_field(k))
        if len(_CLOCK_NAMES) < 10_000:
            _CLOCK_NAMES[names] = clock
    out = dict(item)
    out.pop(STAMP, None)
    for k in clock:
        v = out[k]
        if isinstance(v, (int, float)):
            out[k] = round(v + elapsed, 3)
    return out


def _apply_list(old: list, change: dict, t_new: float, base: float, order: Callable | None,
                keys: list | None) -> tuple[list, list | None]:
    """``old`` after ``change``, and the sort keys of its items when it is kept in ``order``.
    With ``old``'s keys (``old`` is then in order), only the items whose key changed are put
    back in their place; without them the list is sorted (sorting 200 groups by a Python key at
    every delta was a third of a replay's jump)."""
    gone = set(change.get("gone") or ())
    updates = {item["id"]: item for item in change.get("set") or ()}
    out, out_keys, moving = [], [], []
    for number, item in enumerate(old):
        if item["id"] in gone:
            continue
        part = updates.pop(item["id"], None)
        key = keys[number] if keys is not None else None
        if part is not None:
            item = _aged(item, t_new - item.get(STAMP, base))
            item.update(part)
            item[STAMP] = t_new
            if keys is not None:
                new_key = order(item)
                if new_key != key:
                    moving.append((new_key, item))
                    continue
        out.append(item)
        out_keys.append(key)
    for item in updates.values():
        item = dict(item, **{STAMP: t_new})
        if keys is not None:
            moving.append((order(item), item))
        else:
            out.append(item)
    if order is None:
        return out, None
    if keys is None:
        out.sort(key=order)
        return out, [order(item) for item in out]
    for key, item in moving:  # into a list still in order, each where it belongs
        place = bisect.bisect_left(out_keys, key)
        out_keys.insert(place, key)
        out.insert(place, item)
    return out, out_keys


def keyed(summary: dict) -> dict:
    """A key summary as a rebuilt one: its time is the base of its items' clock fields."""
    state = dict(summary)
    state[BASE] = summary.get("time") or 0.0
    for key, order in _SORTED_LISTS.items():  # in order from the start: a delta sorts only what moved
        if isinstance(state.get(key), list):
            state[key] = sorted(state[key], key=order)
    return state


def view(state: dict) -> dict:
    """A rebuilt summary as the probe sent it: clock fields at its time, no stamps."""
    t = state.get("time") or 0.0
    base = state.get(BASE, t)
    out = {}
    for key, value in state.items():
        if key.startswith("~"):
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict) and "id" in value[0]:
            value = [_aged(item, t - item.get(STAMP, base)) for item in value]
        out[key] = value
    return out


# -- reading ------------------------------------------------------------------------------------
class Part:
    """One self-contained stretch of records (a file, or one segment of a flight recording)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.head: dict = {}
        self.records: list[tuple[str, float, bytes]] = []  # (kind, time, payload), checked
        self.torn = False  # the file ends in a record cut short, or one whose checksum fails
        self.stacks: list = []


def read_part(path: str) -> Part:
    """Every whole record of one file; ``RecordingError`` when it is not a recording."""
    part = Part(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except IsADirectoryError:
        raise RecordingError(f"{path} is a directory") from None
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from None
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(data), 1024))
    unpacker.feed(data)
    first = True
    while True:
        try:
            record = unpacker.unpack()
        except msgpack.OutOfData:
            # A torn tail: bytes left that make no whole record.
            part.torn = unpacker.tell() < len(data)
            break
        except Exception:
            if first:
                raise RecordingError(f"{path} is not a tasktop recording") from None
            part.torn = True
            break
        ok = (isinstance(record, list) and len(record) == 4 and isinstance(record[0], str)
              and isinstance(record[2], bytes) and zlib.crc32(record[2]) == record[3])
        if first:
            if not ok or record[0] != "head":
                raise RecordingError(f"{path} is not a tasktop recording")
            head = unpack_payload(record[2])
            if not isinstance(head, dict) or head.get("magic") != MAGIC:
                raise RecordingError(f"{path} is not a tasktop recording")
            if head.get("version") != VERSION:
                raise RecordingError(f"{path} is a recording of format version {head.get('version')!r}; "
                                     f"this tasktop reads version {VERSION}")
            part.head = head
            first = False
            continue
        if not ok:
            part.torn = True
            break
        part.records.append((record[0], float(record[1]), record[2]))
    if first:
        raise RecordingError(f"{path} is not a tasktop recording" if data else f"{path} is empty")
    return part


def segment_paths(directory: str) -> list[str]:
    """The segment files of a flight recording directory, oldest first."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(SEGMENT_SUFFIX))
    except OSError as exc:
        raise RecordingError(f"cannot read {directory}: {exc.strerror or exc}") from None
    return [os.path.join(directory, n) for n in names]


SEGMENT_SUFFIX = ".ttrec"


class Recording:
    """A recording opened for reading: its samples in time order, each summary rebuilt on
    demand (from the nearest key summary before it), and the other replies by time."""

    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.isdir(path):
            files = segment_paths(path)
            parts = []
            for name in files:
                try:
                    parts.append(read_part(name))
                except RecordingError:
                    continue  # a segment begun and not yet written, or one cut at its header
            if not parts:
                raise RecordingError(f"{path} holds no tasktop recording segments")
        else:
            parts = [read_part(path)]
        self.parts = parts
        self.head = parts[-1].head
        #: (part index, record index, kind, time) of every sample, in order.
        self.samples: list[tuple[int, int, str, float]] = []
        self.extras: dict[str, list[tuple[float, int, int]]] = {}
        self.ended: dict | None = None
        for p, part in enumerate(parts):
            seen_key = False
            for r, (kind, t, _payload) in enumerate(part.records):
                if kind == "key":
                    seen_key = True
                if kind in ("key", "delta"):
                    if seen_key:
                        self.samples.append((p, r, kind, t))
                elif kind == "end":
                    self.ended = self._payload(p, r)
                elif kind != "stacks":
                    self.extras.setdefault(kind, []).append((t, p, r))
        if not self.samples:
            raise RecordingError(f"{path} has no samples yet")
        self.times = [s[3] for s in self.samples]
        self._cache: tuple[int, dict] | None = None  # (sample index, interned summary)
        self._checkpoints: dict[int, dict] = {}  # sample index -> interned summary, the oldest first
        self._points: dict[int, dict] = {}  # sample index -> what history() gave of it, the oldest first
        self._stacks_upto: dict[int, int] = {}
        self._lock = threading.RLock()
        self._pages: dict | None = None  # group id -> (times, records) of its pages  # the replay's screens read from worker threads too

    @property
    def torn(self) -> bool:
        return any(part.torn for part in self.parts)

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    def __len__(self) -> int:
        return len(self.samples)

    def _payload(self, p: int, r: int) -> dict:
        payload = unpack_payload(self.parts[p].records[r][2])
        if not isinstance(payload, dict):
            raise RecordingError(f"record {r} of {self.parts[p].path} is not a map")
        return payload

    def _load_stacks(self, p: int, upto: int) -> list:
        """The stacks of part ``p`` defined before record ``upto``."""
        part = self.parts[p]
        done = self._stacks_upto.get(p, 0)
        for r in range(done, upto):
            if part.records[r][0] == "stacks":
                payload = self._payload(p, r)
                first = int(payload.get("first") or 0)
                del part.stacks[first:]
                part.stacks.extend(payload.get("stacks") or ())
        self._stacks_upto[p] = max(done, upto)
        return part.stacks

    def _known(self, index: int) -> tuple[int, dict]:
        """The nearest rebuilt state at or before sample ``index`` that deltas lead from to it:
        the last one asked for (a step forward), a checkpoint (a step back), or the key."""
        cached = self._cache
        if cached is not None and cached[0] == index:
            return cached
        p = self.samples[index][0]
        start = index
        while self.samples[start][2] != "key":
            start -= 1
        if cached is not None and start <= cached[0] < index and self.samples[cached[0]][0] == p:
            known, state = cached
        else:
            known, state = start, None
        near = index - index % CHECKPOINT_EVERY
        while near > known:
            found = self._checkpoints.get(near)
            if found is not None and self.samples[near][0] == p:
                return near, found
            near -= CHECKPOINT_EVERY
        if state is None:
            state = keyed(self._payload(*self.samples[start][:2]))
        return known, state

    def _walk(self, known: int, state: dict, last: int, visit: Callable[[int, Forward], Any] | None = None,
              keep_from: int | None = None) -> dict:
        """The state of sample ``last`` from ``state`` of sample ``known``; ``visit(i, forward)``
        at every sample on the way (``known`` excluded).  Checkpoints are kept from ``keep_from``
        (by default the last ``CHECKPOINT_SPAN`` samples before ``last``: where a step back
        goes next)."""
        if keep_from is None:
            keep_from = last - CHECKPOINT_SPAN
        if last - known <= 2 and visit is None:  # a step: apply_delta shares what did not change
            for i in range(known + 1, last + 1):
                state = apply_delta(state, self._payload(*self.samples[i][:2]))
                self._keep(i, state)
            return state
        forward = Forward(state)
        for i in range(known + 1, last + 1):
            p, r, kind, _t = self.samples[i]
            if kind == "key":  # a new stretch (or part): the deltas after it are against it
                forward = Forward(keyed(self._payload(p, r)))
            else:
                forward.apply(self._payload(p, r))
            if visit is not None:
                visit(i, forward)
            if i % CHECKPOINT_EVERY == 0 and i >= keep_from:
                self._keep(i, forward.state())
        return forward.state()

    def _keep(self, i: int, state: dict) -> None:
        if i % CHECKPOINT_EVERY == 0:  # states share what did not change: a checkpoint is cheap
            self._checkpoints[i] = state
            if len(self._checkpoints) > CHECKPOINTS:
                del self._checkpoints[next(iter(self._checkpoints))]

    def _interned_at(self, index: int) -> dict:
        known, state = self._known(index)
        if known != index:
            state = self._walk(known, state, index)
        self._cache = (index, state)  # a key summary is not unpacked again for the next ask
        return state

    def history(self, first: int, last: int) -> list[dict]:
        """Samples ``first`` to ``last`` - 1 with what a model's history reads of each (time,
        totals, memory and loops as ``summary`` gives them; the groups in no order, with their
        counts right and their clock fields as of their last change), read in one pass;
        ``summary(last)`` is one delta away afterwards.  A replay's jump feeds a fresh model
        the 120 s before the new moment: this costs what the deltas changed, not 120 rebuilt
        summaries.  What a read gives of a sample is kept (the last ``HISTORY_KEPT``): going
        back to a moment seen before (the end, the start, a jump made again) reads no delta of
        the samples before it."""
        out: list[dict] = []
        if first >= last:
            return out
        with self._lock:
            kept = self._points
            start = first
            while start < last and start in kept:  # read before: as it was given then
                out.append(kept[start])
                start += 1
            if start == last:
                known, state = self._known(last - 1)  # a checkpoint, at most CHECKPOINT_EVERY away
                self._cache = (last - 1, self._walk(known, state, last - 1) if known != last - 1 else state)
                return out
            known, state = self._known(start)

            def visit(i: int, forward: Forward) -> None:
                if i < start:
                    return
                p, r = self.samples[i][:2]
                t, base = forward.get("time") or 0.0, forward.get(BASE)
                base = t if base is None else base
                loops = [_aged(loop, t - loop.get(STAMP, base)) if isinstance(loop, dict) else loop
                         for loop in forward.items("loops")]  # as summary() gives them (a few)
                point = {"time": t, "totals": forward.get("totals"), "memory": forward.get("memory"),
                         "groups": forward.items("groups"), "loops": expand(loops, self._load_stacks(p, r))}
                out.append(point)
                kept[i] = point  # never changed afterwards: a state's items are replaced, not changed
                if len(kept) > HISTORY_KEPT:
                    del kept[next(iter(kept))]

            if known == start:  # a state already rebuilt: its own sample first
                visit(start, Forward(state))
            # From the checkpoint before ``first``: the next jump near here starts from it.
            state = self._walk(known, state, last - 1, visit, keep_from=first - CHECKPOINT_EVERY)
            self._cache = (last - 1, state)
        return out

    def summary(self, index: int) -> dict:
        """The summary of sample ``index`` as the probe sent it (stacks written out)."""
        with self._lock:
            p, r = self.samples[index][:2]
            stacks = self._load_stacks(p, r)
            return expand(view(self._interned_at(index)), stacks)

    def index_at(self, t: float) -> int:
        """The last sample at or before time ``t`` (the first one when ``t`` is before it)."""
        return max(0, bisect.bisect_right(self.times, t) - 1)

    def extra_at(self, kind: str, t: float, match: Callable[[Any], bool] | None = None) -> tuple[float, Any] | None:
        """The last ``kind`` reply recorded at or before ``t`` (that ``match`` accepts)."""
        for when, p, r in reversed(self.extras.get(kind, ())):
            if when > t:
                continue
            with self._lock:
                stacks = self._load_stacks(p, r)
                data = expand(self._payload(p, r).get("data"), stacks)
            if match is None or match(data):
                return when, data
        return None

    def page_at(self, gid: str, t: float) -> tuple[float, Any] | None:
        """The last page of group ``gid`` recorded at or before ``t`` (pages are indexed by
        group on the first call)."""
        with self._lock:
            if self._pages is None:
                self._pages = {}
                for when, p, r in self.extras.get("page", ()):
                    data = self._payload(p, r).get("data") or {}
                    key = (data.get("group") or {}).get("id")
                    self._pages.setdefault(key, ([], []))
                    self._pages[key][0].append(when)
                    self._pages[key][1].append((p, r))
            found = self._pages.get(gid)
            if not found:
                return None
            i = bisect.bisect_right(found[0], t) - 1
            if i < 0:
                return None
            p, r = found[1][i]
            return found[0][i], expand(self._payload(p, r).get("data"), self._load_stacks(p, r))

    def iter_summaries(self, first: int = 0, last: int | None = None) -> Iterator[dict]:
        for i in range(first, len(self.samples) if last is None else last + 1):
            yield self.summary(i)


def expand(value: Any, stacks: list) -> Any:
    """``value`` with every stack number replaced by the stack it names."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "stack" and isinstance(v, int) and not isinstance(v, bool):
                out[k] = stacks[v] if 0 <= v < len(stacks) else []
            elif isinstance(v, (dict, list)):
                out[k] = expand(v, stacks)
            else:  # most values: no call for them (a summary of 200 groups has thousands)
                out[k] = v
        return out
    if isinstance(value, list):
        return [expand(v, stacks) if isinstance(v, (dict, list)) else v for v in value]
    return value


def looks_like_recording(path: str) -> bool:
    """Whether ``path`` is a recording file or a flight recording directory (by its start)."""
    if os.path.isdir(path):
        try:
            return any(n.endswith(SEGMENT_SUFFIX) for n in os.listdir(path))
        except OSError:
            return False
    try:
        with open(path, "rb") as fh:
            start = fh.read(64)
    except OSError:
        return False
    return b"head" in start[:8] and MAGIC.encode() in start
