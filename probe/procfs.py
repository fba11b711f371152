"""Reading small /proc files without letting go of the GIL.

Python's ``open()``, ``read()`` and ``close()`` each release the GIL around the system call.
In a process whose event loop releases the GIL every millisecond or so (a busy asyncio server:
one ``epoll_wait(0)`` per iteration), the loop takes the GIL straight back each time, and a
thread that let go of it waits until it wins a race it nearly always loses (CPython only asks
the holder to drop the GIL after 5 ms *without* a switch).  Reading three /proc files per thread
meant nine such waits per thread per sample, and a snapshot of a churning process took tens of
seconds.

The same calls made through ``ctypes.PyDLL`` keep the GIL: /proc reads take microseconds and
never block, so holding it is the cheaper choice.  Where ctypes is missing (some embedded or
locked-down builds) the plain calls are used.
"""
from __future__ import annotations

import os

try:
    import ctypes

    _libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: calls keep the GIL
    _c_open, _c_read, _c_close = _libc.open, _libc.read, _libc.close
    _c_open.argtypes, _c_open.restype = [ctypes.c_char_p, ctypes.c_int], ctypes.c_int
    _c_read.argtypes, _c_read.restype = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_ssize_t
    _c_close.argtypes, _c_close.restype = [ctypes.c_int], ctypes.c_int
    _buffer = ctypes.create_string_buffer
except Exception:  # pragma: no cover - ctypes is in every CPython we support
    _libc = None

_O_RDONLY_CLOEXEC = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def read(path: str, size: int = 4096) -> str | None:
    """The first ``size`` bytes of ``path`` as text, or None if it cannot be read."""
    if _libc is not None:
        fd = _c_open(os.fsencode(path), _O_RDONLY_CLOEXEC)
        if fd < 0:
            return None
        try:
            buf = _buffer(size)
            n = _c_read(fd, buf, size)
        finally:
            _c_close(fd)
        return buf.raw[:n].decode("ascii", "replace") if n >= 0 else None
    try:
        with open(path, "rb") as fh:
            return fh.read(size).decode("ascii", "replace")
    except OSError:
        return None
