"""The tasktop wire protocol: defined here once, imported by the probe and by every client.

A connection carries *frames*: a 4-byte big-endian unsigned length followed by that many
bytes of msgpack.  Every frame is a map.  The client speaks first::

    client: {"op": "hello", "version": VERSION}
    probe:  {"ok": True, "version": VERSION, "pid": ..., "probe": PROBE_VERSION}

then any number of request/reply pairs, strictly one at a time::

    client: {"op": "summary"}
    probe:  {"ok": True, "data": {...}}      or  {"ok": False, "error": "one line"}

Requests (``op``) and their arguments (``OPS`` is the same list as a table, read by both sides):

``summary``  ``complete`` (false)
    process, time, totals, loops, memory, groups.  Its size depends on the number of
    distinct stacks (capped at ``MAX_GROUPS``), never on the number of tasks.  Quick: tasks
    whose await chain the probe had no time to walk yet (a million, just after attaching) are
    counted, by state, in groups whose stack is the one frame ``(await chain not walked yet)``
    (file ``<tasktop>``), filled in by the next passes; with ``complete`` every chain is walked.
``group``  ``id``, ``offset`` (0), ``limit`` (100, at most ``MAX_PAGE``)
    one group of the latest snapshot, with source lines, and one page of its members.
``task``  ``id``
    one task: full stack with source lines, creation stack, awaiter chain both ways.
``thread``  ``ident``
    one thread, with its kernel state and CPU time.
``threads``
    every thread.
``memory``  ``top`` (20)
    RSS, gc, and tracemalloc's top allocation sites when tracemalloc is on.
``stalls``
    every event-loop stall still in the ring.
``full``  ``chunked`` (false)
    ``summary`` plus every task and every thread, all from one snapshot (``dump --full``).
    Each distinct stack comes once, in ``stacks`` (after the rows); a task row's ``stack``
    and ``created_by`` are numbers there (``with_stacks`` puts them back).  With
    ``chunked``, the reply comes as it is packed: a header of length ``CHUNKED``, then
    chunks (``HEADER`` + bytes) ending with one of length 0, whose bytes together are the
    payload, with no size limit but ``MAX_STREAM``: the host never holds it whole.
``detach``
    stop the probe: it answers ``{"detached": True}``, then its thread ends, its socket is
    removed and its hooks are put back as they were (``tasktop detach``).
``verdicts``  ``budget_s`` (2.0, 0 to 60)
    leak verdicts per group: ``unreachable`` (proven: nothing but the waiters references what
    they wait on), ``growing`` (from the probe's 10-minute history), ``stuck`` (blocked > 60 s);
    ``unsettled``: what the proof could not judge within the budget, and why (or null).
``ends``  ``group`` ("": every group), ``task`` (0: none)
    how tasks ended: per group (the group the probe last saw the task in, else its creation
    site), counts of returned / raised / cancelled, lifetimes (median, longest) and the most
    recent endings with who cancelled; with ``task``, that task's ending (``ended``, or null).
``waits``
    every queue, lock, semaphore, event or condition a task or thread waits on, most waiters
    first: its numbers (size, maxsize, getters, putters; value, locked, set, waiters) and how
    they moved since the probe's previous ``waits`` reply.

Any request may carry ``same_pass`` (false): answer it from the pass this connection's last
``summary`` with ``complete``, ``full``, ``group``, ``task``, ``verdicts`` or ``waits`` made, if
no other pass has run since and it ended less than ``SAME_PASS_S`` ago; else a pass is made as
usual.  ``tasktop dump`` asks its summary, waits and verdicts so: one pass, one moment, instead
of three passes over every task.  A probe that predates it ignores the key.

A frame of a stack is ``{"func": str, "file": str, "line": int}`` (plus ``"source"``
in ``group``/``task``/``thread`` replies); stacks are lists of frames, innermost first.

Limits: a request frame may be at most ``MAX_REQUEST`` bytes and a reply at most
``MAX_REPLY``; a peer announcing more is cut off.  The probe closes a connection that
sends garbage, stays silent for ``IDLE_TIMEOUT`` seconds, or takes more than
``FRAME_TIMEOUT`` seconds to finish a frame.  At most ``MAX_CLIENTS`` at a time.
"""
from __future__ import annotations

import bisect
import io
import socket
import struct
import time
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import msgpack

#: Bumped on any incompatible change of requests or replies.
VERSION = 1
#: Seconds after its end that a pass may still answer a request with ``same_pass``.
SAME_PASS_S = 30.0
#: The version of the ``--json`` document of ``tasktop dump`` (see README).
SCHEMA = 1

HEADER = struct.Struct(">I")
MAX_REQUEST = 64 * 1024
MAX_REPLY = 256 * 1024 * 1024
#: A reply header with this length announces a chunked reply (asked for with ``chunked``):
#: chunks of ``HEADER`` + bytes, the last of length 0, whose bytes together are the payload.
CHUNKED = 0xFFFFFFFF
MAX_STREAM = 16 * 1024 * 1024 * 1024  # bytes a client takes in one chunked reply
MAX_CLIENTS = 16
IDLE_TIMEOUT = 60.0
FRAME_TIMEOUT = 10.0
MAX_GROUPS = 500
MAX_PAGE = 1000


class Arg(NamedTuple):
    """One argument of a request: the value given (or ``default``) is converted with ``kind``
    and, for numbers, brought within ``low`` and ``high``; a value ``kind`` refuses is an error
    reply (``TypeError``/``ValueError``)."""

    name: str
    kind: Callable[[Any], Any]
    default: Any = None  # None: required (``kind(None)`` refuses it; ``str`` names no group)
    low: Any = None
    high: Any = None

    def value(self, request: dict) -> Any:
        value = self.kind(request.get(self.name, self.default))
        if self.low is not None:
            value = max(self.low, value)
        if self.high is not None:
            value = min(self.high, value)
        return value


class Op(NamedTuple):
    """One request: its arguments, in the order the probe's handler takes them, and whether
    it may be answered in chunks (asked for with ``chunked``)."""

    args: tuple = ()
    chunkable: bool = False

    def arguments(self, request: dict) -> list:
        """The request's arguments, converted and bounded (see ``Arg``)."""
        return [arg.value(request) for arg in self.args]


#: Every request, by ``op``: what the probe answers and the client asks (see the list above).
OPS: dict[str, Op] = {
    "hello": Op(),  # ``version`` is checked when the connection opens, not here
    "summary": Op((Arg("complete", bool, False),)),
    "group": Op((Arg("id", str), Arg("offset", int, 0, low=0), Arg("limit", int, 100, 1, MAX_PAGE))),
    "task": Op((Arg("id", int),)),
    "thread": Op((Arg("ident", int),)),
    "threads": Op(),
    "memory": Op((Arg("top", int, 20, 1, 200),)),
    "stalls": Op(),
    "full": Op(chunkable=True),
    "verdicts": Op((Arg("budget_s", float, 2.0, 0.0, 60.0),)),
    "ends": Op((Arg("group", str, ""), Arg("task", int, 0, low=0))),
    "waits": Op(),
    "detach": Op(),  # last: a client asking every request in turn still gets every answer
}


class ProtocolError(Exception):
    """The peer broke the protocol: bad frame, bad length, wrong version or an error reply."""


def encode(obj: Any) -> bytes:
    """One complete frame (header and payload) for ``obj``."""
    payload = msgpack.packb(obj, use_bin_type=True, default=_fallback)
    return HEADER.pack(len(payload)) + payload


class Stream:
    """A long array in a reply, made one item at a time while the reply is packed.

    ``full`` at 100,000 tasks is 100,000 row maps: built all at once they outlive the pass
    and make the host's garbage collector run full collections, and one ``packb`` of the
    whole reply holds the GIL for hundreds of milliseconds.  Streamed, each row is packed
    and dropped at once, and the GIL can change hands between rows.  ``items`` must yield
    exactly ``length`` items."""

    __slots__ = ("length", "items")

    def __init__(self, length: int, items: Iterable) -> None:
        self.length, self.items = length, items


BLOCK = 256 * 1024  # bytes: what encode_blocks() coalesces packed pieces into


def encode_blocks(obj: Any) -> list[bytes]:
    """One complete frame for ``obj`` as a list of blocks of about ``BLOCK`` bytes (see
    ``iter_blocks``).  Same bytes as ``encode``."""
    blocks = list(iter_blocks(obj))
    blocks.insert(0, HEADER.pack(sum(map(len, blocks))))
    return blocks


def iter_blocks(obj: Any) -> Iterator[bytes]:
    """The payload of ``obj`` in blocks of about ``BLOCK`` bytes, packed piece by piece (the
    top levels of maps and lists, and every ``Stream`` item) so that no single call holds the
    GIL for long, and made as they are taken: a chunked reply of a million tasks (700 MB) is
    never whole in the host's memory.

    Pieces are joined into blocks as they come: a list of 200,000 small pieces, freed in one
    C call at the end, held the event loop up for 5 ms."""
    packer = msgpack.Packer(use_bin_type=True, default=_fallback, autoreset=True)
    run: list = []
    size = 0

    def walk(value: Any, depth: int) -> Iterator[list]:
        # Yields the run of pieces each time it reaches BLOCK bytes.
        if isinstance(value, Stream):
            pieces = [packer.pack_array_header(value.length)]
            count = 0
            for item in value.items:
                pieces.append(packer.pack(item))
                count += 1
                if len(pieces) >= 64:
                    yield from emit(pieces)
                    pieces = []
            yield from emit(pieces)
            if count != value.length:
                raise ValueError(f"stream gave {count} items, not {value.length}")
        elif depth < 3 and type(value) is dict:
            yield from emit([packer.pack_map_header(len(value))])
            for key, item in value.items():
                yield from emit([packer.pack(key)])
                yield from walk(item, depth + 1)
        elif depth < 3 and type(value) is list and len(value) > 64:
            yield from emit([packer.pack_array_header(len(value))])
            for item in value:
                yield from walk(item, depth + 1)
        else:
            yield from emit([packer.pack(value)])

    def emit(pieces: list) -> Iterator[bytes]:
        nonlocal run, size
        run.extend(pieces)
        size += sum(map(len, pieces))
        if size >= BLOCK:
            block = b"".join(run)
            run, size = [], 0
            yield block

    yield from walk(obj, 0)
    if run:
        yield b"".join(run)


def decode(payload: bytes | Blocks, packed: tuple = ()) -> dict:
    """The map inside one frame's payload; anything else is a ``ProtocolError``.  ``packed``:
    the keys of nested maps that lead to an array to leave packed (``Rows``), read from
    ``payload`` where it is (a chunked reply's ``Blocks`` are not joined for it)."""
    if not packed and isinstance(payload, Blocks):
        payload = b"".join(payload.blocks)
    try:
        obj = _unpack_leaving(_unpacker(payload), payload, packed) if packed else msgpack.unpackb(payload, **_UNPACK)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise _undecodable(exc) from None
    if not isinstance(obj, dict):
        raise ProtocolError("frame is not a map")
    return obj


class Blocks:
    """A chunked reply's payload as the blocks it came in, read as one stream without joining
    them: joined, the reply of ``dump --full`` at a million tasks was twice in the command's
    memory (1.3 GB at its peak, beside the service it looks at)."""

    __slots__ = ("blocks", "starts")

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = blocks
        self.starts = [0]  # where each block starts in the payload, and its end
        for block in blocks:
            self.starts.append(self.starts[-1] + len(block))

    def __len__(self) -> int:
        return self.starts[-1]

    def reader(self, offset: int = 0) -> "_BlockReader":
        return _BlockReader(self, offset)


class _BlockReader:
    """``read(n)`` over ``Blocks`` from ``offset`` on: the file ``msgpack.Unpacker`` reads.
    A read returns at most the rest of one block: the whole block, uncopied, when it can."""

    __slots__ = ("blocks", "index", "inner")

    def __init__(self, blocks: Blocks, offset: int) -> None:
        self.blocks = blocks.blocks
        self.index = max(0, bisect.bisect_right(blocks.starts, offset) - 1)
        self.inner = offset - blocks.starts[self.index]

    def read(self, n: int = -1) -> bytes:
        while self.index < len(self.blocks):
            block, inner = self.blocks[self.index], self.inner
            if inner < len(block):
                end = len(block) if n < 0 else min(len(block), inner + n)
                piece = block if not inner and end == len(block) else block[inner:end]
                self.inner = end
                return piece
            self.index, self.inner = self.index + 1, 0
        return b""


class Rows:
    """A long array of a reply left packed (``decode(payload, packed=...)``): its length, and
    its items unpacked one at a time each time it is iterated (``tasktop dump --full``: see
    ``Requests.full_rows_packed``)."""

    __slots__ = ("payload", "offset", "length", "fill")

    def __init__(self, payload: bytes | Blocks, offset: int, length: int) -> None:
        self.payload, self.offset, self.length = payload, offset, length
        self.fill: Callable[[Any], Any] | None = None  # applied to each row (``with_stacks``)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Any]:
        unpacker = _unpacker(self.payload, self.offset)
        fill = self.fill
        for _ in range(self.length):
            try:
                row = unpacker.unpack()
            except Exception as exc:  # as ``decode`` says it
                raise _undecodable(exc) from None
            yield row if fill is None else fill(row)


def with_stacks(data: dict) -> dict:
    """A ``full`` reply's task rows with their stacks in place.  The probe sends each distinct
    stack once, in ``stacks``, and a row names its stack and its creation stack by their
    numbers there (a million rows repeat a few dozen stacks); rows of a probe that sent them
    whole, or that named more stacks than its table holds, are left as they are."""
    table = data.pop("stacks", None)
    if table is None:
        return data

    def fill(row: Any) -> Any:
        try:
            for field in ("stack", "created_by"):
                if type(row.get(field)) is int:
                    row[field] = table[row[field]]
        except (AttributeError, KeyError, IndexError, TypeError):
            raise ProtocolError("undecodable frame: a task row names a stack the reply does not hold") from None
        return row

    rows = data.get("tasks")
    if isinstance(rows, Rows):
        rows.fill = fill
    elif isinstance(rows, list):
        for row in rows:
            fill(row)
    return data


_UNPACK = {"raw": False, "strict_map_key": False}  # how every frame is unpacked


def _unpacker(payload: bytes | Blocks, offset: int = 0) -> Any:
    """An unpacker reading ``payload`` from ``offset`` on, a megabyte (or a block) at a time."""
    if isinstance(payload, Blocks):
        stream: Any = payload.reader(offset)
    else:
        stream = io.BytesIO(payload)  # shares the bytes: no copy
        stream.seek(offset)
    return msgpack.Unpacker(stream, read_size=1 << 20, **_UNPACK)


def _undecodable(exc: Exception) -> ProtocolError:
    return ProtocolError(f"undecodable frame: {exc.__class__.__name__}")


def _unpack_leaving(unpacker: Any, payload: bytes | Blocks, path: tuple) -> Any:
    """The next object of ``unpacker``, with the array at ``path`` (keys of nested maps) left
    packed as ``Rows``; anything else is unpacked as ``decode`` does."""
    if not path:
        return unpacker.unpack()
    out = {}
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        if key != path[0]:
            out[key] = unpacker.unpack()
        elif len(path) > 1:
            out[key] = _unpack_leaving(unpacker, payload, path[1:])
        else:
            length = unpacker.read_array_header()
            offset = unpacker.tell()
            for _ in range(length):
                unpacker.skip()
            out[key] = Rows(payload, offset, length)
    return out


def _fallback(obj: Any) -> Any:
    # Never let an odd value (a set, a path, an enum) make a whole reply fail.
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def _recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    chunks = []
    while n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for the probe")
        sock.settimeout(remaining)
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("the probe closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket, timeout: float, limit: int = MAX_REPLY, packed: tuple = ()) -> dict:
    """Read one frame from a blocking socket (the client side).  A chunked reply may be as
    big as ``MAX_STREAM``, and ``timeout`` is then per chunk.  ``packed``: see ``decode``."""
    deadline = time.monotonic() + timeout
    (length,) = HEADER.unpack(_recv_exact(sock, HEADER.size, deadline))
    if length == CHUNKED:
        chunks, total = [], 0
        while True:
            deadline = time.monotonic() + timeout
            (length,) = HEADER.unpack(_recv_exact(sock, HEADER.size, deadline))
            if not length:
                return decode(Blocks(chunks), packed)
            total += length
            if total > MAX_STREAM:
                raise ProtocolError(f"chunked reply over the limit of {MAX_STREAM} bytes")
            chunks.append(_recv_exact(sock, length, deadline))
    if length > limit:
        raise ProtocolError(f"frame of {length} bytes is over the limit of {limit}")
    return decode(_recv_exact(sock, length, deadline), packed)


def write_frame(sock: socket.socket, obj: Any, timeout: float) -> None:
    sock.settimeout(timeout)
    sock.sendall(encode(obj))
