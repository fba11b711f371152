"""Stacks as the probe keeps them (``(code, line)`` pairs) and as it sends them (frame maps).

Keeping code objects and line numbers, not frames, means a stack never keeps locals alive,
and turning them into strings is deferred until a client asks.
"""
from __future__ import annotations

import asyncio
import dis
import linecache
import os
import sysconfig
from typing import Iterable

from tasktop.wire.stacks import user_frame

RawStack = tuple  # tuple of (code, line), innermost first

_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_PROBE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB = sysconfig.get_paths()["stdlib"] + os.sep


def func_name(code) -> str:
    """``Class.method`` where the interpreter knows it (3.11+), else the bare name."""
    return getattr(code, "co_qualname", code.co_name)


def is_internal(code) -> bool:
    """Frames of asyncio itself and of the probe: hidden from creation sites."""
    name = code.co_filename
    return name.startswith(_ASYNCIO_DIR) or name.startswith(_PROBE_DIR)


def frame_stack(frame, limit: int = 128) -> RawStack:
    """The stack from ``frame`` outwards, innermost first."""
    out = []
    while frame is not None and len(out) < limit:
        out.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    return tuple(out)


_lines: dict = {}  # (id(code), f_lasti) -> (code, line): hashing a code object is slow


def line_of(code, lasti: int) -> int:
    """The line of the instruction at byte offset ``lasti``: what ``frame.f_lineno`` says."""
    found = _lines.get((id(code), lasti))
    if found is not None and found[0] is code:
        return found[1]
    line = None
    if lasti >= 0:
        if hasattr(code, "co_lines"):  # 3.10+
            for start, end, number in code.co_lines():
                if start <= lasti < end:
                    line = number
                    break
        else:
            for offset, number in dis.findlinestarts(code):
                if offset > lasti:
                    break
                line = number
    if line is None:
        line = code.co_firstlineno
    if len(_lines) > 100000:
        _lines.clear()
    _lines[(id(code), lasti)] = (code, line)
    return line


def resolve(raw: tuple) -> RawStack:
    """A flat ``(code, f_lasti, code, f_lasti, ...)`` tuple (how creation stacks are recorded)
    to ``(code, line)`` pairs.  A tuple as the last item holds the outer pairs (shared)."""
    if raw and type(raw[-1]) is tuple:
        raw = raw[:-1] + raw[-1]
    return tuple((raw[i], line_of(raw[i], raw[i + 1])) for i in range(0, len(raw) - 1, 2))


def to_wire(stack: Iterable, source: bool = False) -> list[dict]:
    """Frame maps for a raw stack; with ``source``, each carries its source line."""
    out = []
    for code, line in stack:
        item = {"func": func_name(code), "file": code.co_filename, "line": line or 0}
        if source:
            item["source"] = linecache.getline(code.co_filename, line or 0).strip()
        out.append(item)
    return out


def creation_site(raw: RawStack | None, depth: int) -> RawStack | None:
    """A creation stack without asyncio's own frames (create_task, gather, TaskGroup...)."""
    if not raw:
        return None
    kept = tuple(item for item in raw if not is_internal(item[0]))[:depth]
    return kept or raw[:1]


def own_frame(stack: RawStack) -> dict | None:
    """The frame map of the user's frame of ``stack``: the one rule the views use
    (``wire.stacks.user_frame``), so the verdicts name the frame the dump and the TUI show."""
    return user_frame(to_wire(stack)) if stack else None