"""How durations and byte sizes are written: the same in the probe's verdict reasons, the live
view, the dump, ``check`` and ``diff``.

Columns are narrow at 80x24, so each keeps to a few characters and never loses the order of
magnitude (``2m03s``, not ``123.4s``; ``25.4M``, not ``26017792``).
"""
from __future__ import annotations


def duration(seconds: float | None) -> str:
    """``0.4s``, ``12s``, ``2m03s``, ``1h02m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.1f}s"
    if s < 60:
        return f"{int(s)}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    if s < 86400:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    return f"{int(s // 86400)}d{int(s % 86400 // 3600):02d}h"


def size(n: float | None) -> str:
    """Bytes in binary units, three significant digits: ``812K``, ``25.4M``, ``1.02G``."""
    if n is None:
        return "-"
    value = float(n)
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            if unit == "B":
                return f"{sign}{int(value)}B"
            if value < 10:
                return f"{sign}{value:.2f}{unit}"
            if value < 100:
                return f"{sign}{value:.1f}{unit}"
            return f"{sign}{int(value)}{unit}"
        value /= 1024
    return f"{sign}{value}"  # pragma: no cover - the loop always returns
