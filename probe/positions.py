"""Where a suspended coroutine stands (its code and line) without making a frame object for it.

On 3.11+ ``coro.cr_frame`` makes a frame object and ties it to the coroutine for the rest of its
life: walking a million parked tasks once made four million of them (700 MB the host kept, and a
full collection of its heap that held the event loop up for 2 s).  Instead:

* a code object with one suspension point (most coroutines: a single ``await``) is suspended
  there, so its line is known from the code alone;
* otherwise the instruction pointer of the coroutine's own frame, which lives inside the
  coroutine object, is read with ctypes at an offset found once per object type by calibrating
  against a frame object of a sample coroutine, checked at a second suspension point;
* a coroutine that is not suspended (not started, running, or a type the calibration did not
  cover) falls back to its frame, as before; up to 3.10 every frame is an object anyway.

Memory is read as one array of machine words over the whole address space (``_WORDS``): an
index is one C call, where ``ctypes.c_ssize_t.from_address`` made an object and raised an audit
event for each read.  Only words inside an object the probe holds are read.
"""
from __future__ import annotations

import dis
import gc
import sys
import types
from typing import Any

from .foreign_frames import paused
from .frames import line_of

_FRAMELESS = sys.version_info >= (3, 11)  # the frame lives inside the coroutine object
_Coroutine = types.CoroutineType
_Function = types.FunctionType
_YIELDS = {"YIELD_VALUE"}


class _Code:
    """What a code object tells once: its single suspension point's line, if it has one."""

    __slots__ = ("code", "single_line")

    def __init__(self, code: types.CodeType) -> None:
        self.code = code  # kept: its id is the key it is found by
        offsets = [i.offset for i in dis.get_instructions(code) if i.opname in _YIELDS]
        self.single_line = line_of(code, offsets[0]) if len(offsets) == 1 else None


_codes: dict[int, _Code] = {}
#: ``id(code) -> single_line`` of the codes in ``_codes`` (which keeps them, so their ids stay
#: theirs): the one lookup per coroutine of a chain walk.
_single_lines: dict[int, Any] = {}
_UNSEEN = object()


def code_info(code: types.CodeType) -> _Code:
    """The cached facts of ``code``, looked up by identity (hashing a code object is slow)."""
    found = _codes.get(id(code))
    if found is None or found.code is not code:
        if len(_codes) > 50_000:
            _codes.clear()
            _single_lines.clear()
        found = _codes[id(code)] = _Code(code)
        _single_lines[id(code)] = found.single_line
    return found


def _words() -> Any:
    """Every word of the address space as an array (3.11+; None where ctypes cannot): indexed
    by an address over 8, it reads the word there without making an object for it."""
    if not _FRAMELESS:
        return None
    try:
        import ctypes  # only where it is needed

        return (ctypes.c_ssize_t * (sys.maxsize // 8)).from_address(0)
    except Exception:
        return None


_WORDS = _words()


class _Reader:
    """Reads the instruction offset of one kind of suspended frame-owning object (coroutine,
    generator, async generator) from its memory."""

    def __init__(self, offset: int, base: int) -> None:
        self.base = base
        self.word = offset >> 3  # the offset in words (a multiple of 8: see _calibrate)
        #: An instruction pointer read -> (the code it points into, the line there): one read
        #: and one look-up per suspended coroutine, where working the line out from the offset
        #: took two calls more (0.6 µs).  Holding the code keeps its address its own.
        self.lines: dict[int, tuple] = {}

    def lasti(self, obj: Any, code: types.CodeType) -> int | None:
        return self._lasti_at(_WORDS[(id(obj) >> 3) + self.word], code)

    def _lasti_at(self, pointer: int, code: types.CodeType) -> int | None:
        """The offset in ``code`` an instruction pointer read stands for; None if it is not
        inside the code object (only then is it trusted)."""
        lasti = pointer - id(code) - self.base
        if 0 <= lasti < sys.getsizeof(code):
            return lasti
        return None

    def line(self, obj: Any, code: types.CodeType) -> int | None:
        """The line ``obj`` (suspended, running ``code``) stands at; None if its instruction
        pointer is not inside ``code``."""
        pointer = _WORDS[(id(obj) >> 3) + self.word]
        found = self.lines.get(pointer)
        if found is not None and found[0] is code:
            return found[1]
        lasti = self._lasti_at(pointer, code)
        if lasti is None:
            return None
        if len(self.lines) > 100_000:
            self.lines.clear()
        line = line_of(code, lasti)
        self.lines[pointer] = (code, line)
        return line


class _Yield:
    def __await__(self):
        yield


async def _sample_coroutine():
    await _Yield()
    await _Yield()


def _sample_generator():
    yield
    yield


def _calibrate(make: Any, code_of: str, frame_of: str, advance: Any) -> _Reader | None:
    """Find where an object's frame keeps its instruction pointer, from two suspension points
    of a sample whose frame object says what the offset is; None if anything disagrees."""
    try:
        if _WORDS is None:
            return None
        read = _word_at
        probe, twin = make(), make()
        advance(probe)
        advance(twin)
        code = getattr(probe, code_of)
        low, high = id(code), id(code) + sys.getsizeof(code)
        size = sys.getsizeof(probe)
        slots = [k for k in range(16, size - 7, 8) if low < read(id(probe) + k) < high]
        if len(slots) != 1:
            return None
        offset = slots[0]
        first = getattr(twin, frame_of).f_lasti
        base = read(id(twin) + offset) - id(code) - first
        advance(twin)
        advance(probe)
        second = getattr(twin, frame_of).f_lasti
        if second == first or read(id(twin) + offset) - id(code) - second != base:
            return None
        reader = _Reader(offset, base)
        if reader.lasti(probe, code) != second:  # the twin without a frame object, read
            return None
        for obj in (probe, twin):
            obj.close()
        return reader
    except Exception:
        return None


def _word_at(address: int) -> int:
    return _WORDS[address >> 3]


def _send(obj: Any) -> None:
    obj.send(None)


_readers: dict[type, _Reader | None] = {}
if _FRAMELESS:
    _readers[types.CoroutineType] = _calibrate(_sample_coroutine, "cr_code", "cr_frame", _send)
    _readers[types.GeneratorType] = _calibrate(_sample_generator, "gi_code", "gi_frame", _send)


class _Mark:
    """A first local the calibration looks for."""


async def _sample_method(self_: _Mark) -> None:
    await _Yield()


def _calibrate_first_local() -> int | None:
    """The word, counted from a suspended coroutine's start, that holds its first local (``self``
    of a method), found against two samples whose first locals are known; None if they
    disagree, or where a coroutine's locals are not inside it (up to 3.10).  The low bits are
    masked off where they are read: 3.14's frames tag them."""
    if _WORDS is None or not _FRAMELESS:
        return None
    try:
        slots = []
        for _ in range(2):
            mark = _Mark()
            coro = _sample_method(mark)
            coro.send(None)
            size = sys.getsizeof(coro)
            slots.append([k for k in range(16, size - 7, 8) if _word_at(id(coro) + k) & ~7 == id(mark)])
            coro.close()
        return slots[0][0] >> 3 if len(slots[0]) == 1 and slots[0] == slots[1] else None
    except Exception:
        return None


#: ``FIRST_LOCAL``: where a suspended coroutine's first local is (see ``first_local``), or None.
FIRST_LOCAL = _calibrate_first_local()


def first_local(coro: Any) -> int:
    """The address the first local of ``coro`` (a coroutine, 3.11+, with ``FIRST_LOCAL`` set)
    points at, read from its memory: a number to compare with the ids of objects the caller
    holds, never made into an object; 0 once its frame is cleared."""
    return _WORDS[(id(coro) >> 3) + FIRST_LOCAL] & ~7


def calibrated() -> bool:
    """Whether coroutines are read without frame objects here (always true up to 3.10)."""
    return not _FRAMELESS or _readers.get(types.CoroutineType) is not None


def suspended_run(obj: Any, objs: list, ids: list) -> Any:
    """Walk a run of suspended coroutines down their ``cr_await`` (3.11+), appending each to
    ``objs`` and the id of its code and its line to ``ids``; return the object the run stops
    at.  The hot loop of a task pass: most of a parked task's chain is such a run, and its
    ``ids`` are what the memo of chains is looked up by (``Keys.chain``), with no code object
    read once more (``codes_of`` reads them where the memo has no entry yet)."""
    lines, unseen, coroutine = _single_lines, _UNSEEN, _Coroutine
    while type(obj) is coroutine:
        # Only a coroutine suspended in an await has something awaited: asked first, one
        # attribute read fewer for each coroutine of a parked chain.
        awaited = obj.cr_await
        if awaited is None and not obj.cr_suspended:
            return obj
        code = obj.cr_code
        code_id = id(code)
        line = lines.get(code_id, unseen)
        if line is unseen:
            line = code_info(code).single_line
        if line is None:
            reader = _readers.get(coroutine)
            line = reader.line(obj, code) if reader is not None else None
            if line is None:
                with paused:  # 3.11: a loop in another thread may resume it (see foreign_frames)
                    line = line_of(code, obj.cr_frame.f_lasti)
        objs.append(obj)
        ids.append(code_id)
        ids.append(line)
        obj = awaited
    return obj


def codes_of(coroutines: list, ids: list) -> list:
    """``[code, line, ...]`` of a run's ``coroutines`` and ``[id(code), line, ...]`` (see
    ``suspended_run``)."""
    flat = list(ids)
    flat[0::2] = [coroutine.cr_code for coroutine in coroutines]
    return flat


def alive(obj: Any, frame_attr: str) -> bool:
    """Whether ``obj`` has not finished, asked without making a frame object (3.11+): one not
    started yet (a task a pass meets before its first step) would keep it for life."""
    prefix = frame_attr[:3]
    if getattr(obj, prefix + "suspended", False) or getattr(obj, prefix + "running", False):
        return True
    if _FRAMELESS:  # the frame's function is among its referents until the frame is cleared
        return any(type(r) is _Function for r in gc.get_referents(obj))
    return getattr(obj, frame_attr) is not None


def where(obj: Any, code: types.CodeType, frame_attr: str) -> int:
    """The line ``obj`` (a coroutine, generator or async generator with ``code``) stands at."""
    if _FRAMELESS:
        info = code_info(code)
        suspended = getattr(obj, frame_attr[:3] + "suspended", None)
        if suspended:
            if info.single_line is not None:
                return info.single_line
            reader = _readers.get(type(obj))
            if reader is not None:
                line = reader.line(obj, code)
                if line is not None:
                    return line
        elif suspended is False and not getattr(obj, frame_attr[:3] + "running", True):
            return code.co_firstlineno  # not started yet (or finished)
    with paused:  # 3.11: a loop in another thread may resume it (see foreign_frames)
        frame = getattr(obj, frame_attr, None)
        lasti = frame.f_lasti if frame is not None else None
    frame = None
    return code.co_firstlineno if lasti is None else line_of(code, lasti)
