"""Where a thread was started, from the stack ``Thread.start`` recorded (:mod:`patches`).

The recorded stack begins in threading's own frames (and concurrent.futures', asyncio's or the
probe's when one of them started the thread); what matters is the first frame past them: in the
test harness, the thread is the harness's; elsewhere, it and the frames around it are shown as
where the leftover was created.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from .harness import starts_in_harness, until_harness
from .options import CREATION_DEPTH

_CONCURRENT_FUTURES = os.sep + os.path.join("concurrent", "futures") + os.sep


def _thread_internal(code) -> bool:
    from tasktop.probe.frames import is_internal

    name = code.co_filename
    return is_internal(code) or name == threading.__file__ or _CONCURRENT_FUTURES in name


def own_frames(raw: tuple | None) -> tuple:
    """A thread's raw creation stack without threading's, concurrent.futures', asyncio's and the
    probe's frames (all of it if that leaves nothing)."""
    if not raw:
        return ()
    return tuple(item for item in raw if not _thread_internal(item[0])) or raw[:1]


def is_harness_thread(thread: Any, sites: Any) -> bool:
    """Whether the test harness (pytest, pluggy, a runner plugin) started ``thread``."""
    return starts_in_harness(own_frames(sites.get(thread)))


def shown_site(raw: tuple | None) -> tuple | None:
    """The creation stack shown for a thread: its own frames, up to the test harness."""
    own = own_frames(raw)
    return until_harness(own)[:CREATION_DEPTH] if own else None
