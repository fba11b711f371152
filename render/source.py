"""Source lines for frames, read on the client's side when the file is there.

The probe sends the line of each frame (``source``) in detail replies, read from the *target's*
linecache, so that line is authoritative.  Context around it is read locally, but only when the
local file agrees with the probe on that line: a file edited or redeployed since the target
started would otherwise show code that is not running.  Stacks without ``source`` (the summary,
stalls) fall back to the local file alone.
"""
from __future__ import annotations

import linecache
import os


def _local_line(path: str, line: int) -> str:
    if not path or path.startswith("<") or line <= 0 or not os.path.isfile(path):
        return ""
    try:
        return linecache.getline(path, line)
    except Exception:  # unreadable, undecodable: no source rather than a crash
        return ""


def line_of(frame: dict) -> str:
    """The stripped source line of ``frame``: the probe's if it sent one, else the local file's."""
    text = frame.get("source")
    if text:
        return str(text).strip()
    return _local_line(frame.get("file", ""), int(frame.get("line") or 0)).strip()


def context(frame: dict, before: int = 2, after: int = 2) -> list[tuple[int, str]]:
    """``(lineno, text)`` around the frame's line, the line itself included; just the line when
    the local file is missing or disagrees with the probe's copy."""
    path = frame.get("file", "")
    line = int(frame.get("line") or 0)
    own = line_of(frame)
    local = _local_line(path, line).strip()
    if not local or (frame.get("source") and local != str(frame["source"]).strip()):
        return [(line, own)] if own else []
    out = []
    for number in range(max(1, line - before), line + after + 1):
        text = _local_line(path, number)
        if not text and number > line:
            break
        out.append((number, text.rstrip("\n")))
    return out
