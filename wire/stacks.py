"""Which frame of a stack is the user's own, and what makes two stacks one group: the rules the
probe and every view share, on stacks as the wire carries them (frames of file, func, line).

The standard library is recognised by its location (``.../lib/pythonX.Y/`` outside
``site-packages``), which works for the target's interpreter even when it is not the one reading
the stack.  Installed packages are skipped too when the stack has application code further out,
but are better than nothing.
"""
from __future__ import annotations

import os
import re
import sysconfig
from typing import Any, Iterable


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


#: The one frame of a probe's pseudo-group of tasks whose await chain it had no time to walk
#: yet (``summary``): counted apart, by state, until a later pass walks them.
UNWALKED_FUNC = "(await chain not walked yet)"
#: The file of a frame the probe made up: shown by its function alone.
SYNTHETIC_FILE = "<tasktop>"


def is_unwalked(stack: Any) -> bool:
    """Whether a group's stack is that of a pseudo-group of tasks not walked yet.  Anything but
    a list or tuple of frames (a recording's stack number, None) is not."""
    if not isinstance(stack, (list, tuple)) or len(stack) != 1:
        return False
    frame = stack[0]
    return isinstance(frame, dict) and frame.get("file") == SYNTHETIC_FILE and frame.get("func") == UNWALKED_FUNC


def func_label(func: str) -> str:
    """``start.<locals>.inner`` reads as ``start.inner``: the nesting is the information."""
    return (func or "?").replace(".<locals>.", ".")


def frame_label(frame: dict | None) -> str:
    """``consume (worker.py:40)``."""
    if not frame:
        return "-"
    if frame.get("file") == SYNTHETIC_FILE:
        return frame.get("func", "?")
    name = os.path.basename(frame.get("file") or "?")
    return f"{func_label(frame.get('func', '?'))} ({name}:{frame.get('line', 0)})"
