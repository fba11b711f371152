"""Reading a stack the way a user does: which frame is *their* code (``wire.stacks``, shared
with the probe), and how to name and fit it.

A task parked on ``Queue.get`` has ``asyncio/queues.py`` innermost; what the user needs is the
first frame of their own code behind it, e.g. ``consume (worker.py:40)``.
"""
from __future__ import annotations

import os
from typing import Iterable

from tasktop.wire.stacks import (_LOCAL_STDLIB, _PACKAGES, _STDLIB_RE, frame_label, func_label, is_package,
                                 is_stdlib, user_frame)

__all__ = ["is_stdlib", "is_package", "user_frame", "func_label", "frame_label", "fit_label", "where",
           "display_path", "fit_path", "searchable"]

def fit_label(label: str, width: int) -> str:
    """Shorten ``func (file:line)`` to ``width`` by cutting the function name first: the
    location is what makes a label findable."""
    if len(label) <= width:
        return label
    func, sep, place = label.partition(" (")
    if sep and len(place) + 3 < width:
        keep = width - len(place) - 3
        return f"{func[:keep]}… ({place}"
    return label[:max(1, width - 1)] + "…"


def where(stack: Iterable[dict] | None) -> str:
    """The label of the user's frame of a stack (what the groups table shows)."""
    return frame_label(user_frame(stack))


def display_path(path: str) -> str:
    """A path as short as it can be while still saying where it is: stdlib files relative to
    the stdlib (``asyncio/queues.py``), packages relative to ``site-packages``, the user's own
    files in full."""
    for marker in _PACKAGES:
        index = path.rfind(marker + "/")
        if index >= 0:
            return path[index + len(marker) + 1:]
    match = _STDLIB_RE.search(path)
    if match:
        return path[match.end():]
    for prefix in _LOCAL_STDLIB:
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def fit_path(path: str, width: int = 48) -> str:
    """A path that fits: ``…/asyncio/queues.py`` keeps the end, which is the informative part."""
    if len(path) <= width:
        return path
    keep = path[-(width - 1):]
    cut = keep.find(os.sep)
    if 0 <= cut < len(keep) - 1:
        keep = keep[cut:]
    return "…" + keep


def searchable(stack: Iterable[dict] | None) -> str:
    """All text of a stack, lower-cased, for the ``/`` filter."""
    parts = []
    for frame in stack or ():
        parts.append(f"{frame.get('func', '')} {frame.get('file', '')}:{frame.get('line', '')}")
    return "\n".join(parts).lower()
