"""The small graph a proof counts references in: targets, and the nodes found from holders.

Targets are the objects waiters wait on; nodes are the containers the waiters' own objects (the
*holders*) reach: an instance whose attribute is the queue, a bound method, a closure's cell, a
frame's locals dict.  Nodes are found by following references forward from the holders a few
steps, never by scanning the heap, so the graph grows with the waiters, not with the heap.
Objects that are alive in their own right or lead nowhere a target could hide are not followed,
nor containers too big to read in one short C call, nor objects the collector does not track:
a reference from any of them counts as from outside.
"""
from __future__ import annotations

import asyncio
import collections
import contextvars
import gc
import itertools
import sys
import threading
import types
import weakref
from typing import Any

from .waiters import COROUTINES, WRAPPERS

# Objects that are alive in their own right, or lead nowhere a waiter's target could hide:
# never followed (a reference from one of them counts as from outside).
_OPAQUE = (types.ModuleType, type, types.CodeType, types.FrameType, *COROUTINES,
           asyncio.Future, threading.Thread, asyncio.AbstractEventLoop, weakref.ref, contextvars.Context,
           types.BuiltinFunctionType, types.FunctionType, str, bytes, int, float, complex, bool,
           type(None))
_SIZED = (dict, list, tuple, set, frozenset, collections.deque)
# Types (by name: C types asyncio does not export) whose objects are a waiter's own when they
# are met (holders), and lead nowhere else: the object a coroutine awaits a future through,
# and async generators' wrappers.
_OPAQUE_NAMES = frozenset(("FutureIter", "_PyFutureIter") + WRAPPERS)
MAX_DEPTH = 3  # steps followed from a holder
MAX_CONTAINER = 10_000  # a bigger container is not followed (one C call would hold the GIL)
MAX_NODES = 200_000
_MISSING = (-1).__ne__


class ReferenceGraph:
    """Targets, then nodes as they are found, held once each, here (so that their reference
    counts can be accounted for exactly), and per node the positions it references."""

    def __init__(self) -> None:
        self.objs: list = []  # targets, then nodes as they are found; held once each, here
        self.index: dict[int, int] = {}  # id -> position in objs
        self.depth: list[int] = []  # 0 for targets
        self.edges: list = []  # per object: positions it references (nodes only)
        self.targets = 0
        self._modules = {id(m.__dict__) for m in list(sys.modules.values()) if hasattr(m, "__dict__")}
        self._holders: set[int] = set()  # ids of holders that could otherwise be taken for nodes
        self._expandable: dict[type, bool] = {}

    def _target(self, obj: Any) -> int:
        i = self.index.get(id(obj))
        if i is None:
            i = self.index[id(obj)] = len(self.objs)
            self.objs.append(obj)
            self.depth.append(0)
            self.edges.append(None)
            self.targets += 1
        return i

    def _refs(self, refs: list, depth: int) -> list:
        """Positions in objs of ``refs`` (one per reference); new nodes for followable ones.
        The look-ups are C-level maps: most references (code, names, futures) lead nowhere."""
        index, objs = self.index, self.objs
        found = list(filter(_MISSING, map(index.get, map(id, refs), itertools.repeat(-1))))
        if depth > MAX_DEPTH or len(objs) >= MAX_NODES:
            return found
        expandable = self._expandable
        kinds = set(map(type, refs))
        for kind in kinds.difference(expandable):
            expandable[kind] = not issubclass(kind, _OPAQUE) and kind.__name__ not in _OPAQUE_NAMES
        if not any(map(expandable.__getitem__, kinds)):
            return found
        new: set[int] = set()
        for r in refs:
            if not expandable[type(r)]:
                continue
            i = index.get(id(r))
            if i is None:
                if len(objs) >= MAX_NODES or not self._followable(r):
                    continue
                i = index[id(r)] = len(objs)
                objs.append(r)
                self.depth.append(depth)
                self.edges.append(None)
                new.add(i)
            elif i in new:
                found.append(i)  # a second reference to a node made in this call
                continue
            else:
                continue  # counted above
            found.append(i)
        return found

    def _followable(self, obj: Any) -> bool:
        if id(obj) in self._modules or id(obj) in self._holders or not gc.is_tracked(obj):
            return False
        try:
            return not (isinstance(obj, _SIZED) and len(obj) > MAX_CONTAINER)
        except Exception:
            return False

    def _reached(self, outside: list) -> bytearray:
        """Objects reachable from an object held from outside, through nodes' references."""
        reached = bytearray(len(self.objs))
        stack = [i for i, o in enumerate(outside) if o > 0]
        for i in stack:
            reached[i] = 1
        edges = self.edges
        while stack:
            i = stack.pop()
            for j in edges[i] or ():
                if not reached[j]:
                    reached[j] = 1
                    stack.append(j)
        return reached
