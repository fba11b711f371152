"""Reading a stack the way a user does: which frame is *their* code, and how to name it.

A task parked on ``Queue.get`` has ``asyncio/queues.py`` innermost; what the user needs is the
first frame of their own code behind it, e.g. ``consume (worker.py:40)``.  The standard library
is recognised by its location (``.../lib/pythonX.Y/`` outside ``site-packages``), which works for
the target's interpreter even when it is not the one running the TUI.  Installed packages are
skipped too when the stack has application code further out, but are better than nothing.
"""
from __future__ import annotations

import os
import re
import sysconfig
from typing import Iterable

_STDLIB_RE = re.compile(r"[/\\]lib[/\\](?:python\d+(?:\.\d+)?t?|pypy\d*(?:\.\d+)?)[/\\]", re.IGNORECASE)
_PACKAGES = ("site-packages", "dist-packages")


def _local_stdlib() -> tuple[str, ...]:
    out = []
    for key in ("stdlib", "platstdlib"):
        try:
            path = sysconfig.get_paths().get(key)
        except Exception:  # a broken sysconfig must not break the UI
            path = None
        if path:
            out.append(os.path.join(path, ""))
    return tuple(out)


_LOCAL_STDLIB = _local_stdlib()


def is_stdlib(path: str) -> bool:
    """Whether ``path`` is a file of the Python standard library (or frozen/builtin code)."""
    if not path or path.startswith("<"):
        return True
    if any(part in path for part in _PACKAGES):
        return False
    return bool(_STDLIB_RE.search(path)) or path.startswith(_LOCAL_STDLIB)


def is_package(path: str) -> bool:
    """Whether ``path`` belongs to an installed third-party package."""
    return any(part in path for part in _PACKAGES)


def user_frame(stack: Iterable[dict] | None) -> dict | None:
    """The innermost frame of application code, else of an installed package, else the
    innermost frame at all (a stack made only of stdlib frames is still worth naming)."""
    frames = list(stack or ())
    if not frames:
        return None
    for frame in frames:
        path = frame.get("file", "")
        if not is_stdlib(path) and not is_package(path):
            return frame
    for frame in frames:
        if not is_stdlib(frame.get("file", "")):
            return frame
    return frames[0]


def func_label(func: str) -> str:
    """``start.<locals>.inner`` reads as ``start.inner``: the nesting is the information."""
    return (func or "?").replace(".<locals>.", ".")


def frame_label(frame: dict | None) -> str:
    """``consume (worker.py:40)``."""
    if not frame:
        return "-"
    name = os.path.basename(frame.get("file") or "?")
    return f"{func_label(frame.get('func', '?'))} ({name}:{frame.get('line', 0)})"


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


def short_path(path: str, width: int = 48) -> str:
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
