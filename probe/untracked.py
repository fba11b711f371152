"""Keeping the probe's long-lived per-task objects out of the host's garbage collector.

A pass that first sees a million parked tasks makes a million weak references to the futures
they wait on.  Each is tracked by the collector, so together they push the oldest generation
over its threshold and set off a full collection of the host's whole heap, in the host's own
threads: 3.4 s at a million tasks.  Nothing the probe keeps per task can be part of a
reference cycle (they point at interned keys, numbers and weak references only), so reference
counting alone frees them and the collector need not know them: they are untracked, as CPython
untracks tuples of atomic values.  The probe's long lists of records are untracked too
(``recycled_lists``): a young one was walked by every young collection.  Never a weak reference
with a callback (a record itself): the collector moves those it finds on a dying object into a
list of its own, which an untracked one is not in (the host crashed).  Where ctypes is missing,
``untrack`` does nothing.
"""
from __future__ import annotations

from typing import Any, Callable


def _untracker() -> Callable[[Any], None]:
    try:
        import ctypes

        call = ctypes.pythonapi.PyObject_GC_UnTrack  # pythonapi: the call keeps the GIL
        call.argtypes, call.restype = [ctypes.py_object], None
        return call
    except Exception:
        return lambda obj: None


#: ``untrack(obj)``: the collector stops tracking ``obj`` (about 0.3 µs; safe to repeat).
untrack: Callable[[Any], None] = _untracker()
