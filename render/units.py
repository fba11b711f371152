"""How numbers read on screen: durations, byte sizes, counts and rates.

Columns are narrow at 80x24, so every formatter keeps to a few characters and never loses the
order of magnitude (``2m03s``, not ``123.4s``; ``25.4M``, not ``26017792``).
"""
from __future__ import annotations

import time


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


def count(n: int | None) -> str:
    """A count with thousands separators (``100,000``)."""
    return "-" if n is None else f"{n:,}"


def signed(value: float, unit: str = "") -> str:
    """A change with its sign: ``+12``, ``-3``, ``+2.5``, ``0``."""
    if value == 0:
        return f"0{unit}"
    if abs(value) >= 9.95 or float(value).is_integer():
        text = f"{value:+,.0f}"
    else:
        text = f"{value:+.1f}"
    return f"{text}{unit}"


def signed_size(value: float) -> str:
    return "0" if value == 0 else ("+" if value > 0 else "-") + size(abs(value))


def clock(epoch: float | None) -> str:
    """Local wall-clock time ``HH:MM:SS`` of an epoch timestamp."""
    if epoch is None:
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def ms(value: float | None) -> str:
    """Milliseconds: ``0.2ms``, ``192ms``, ``1.4s``."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.1f}s"
    if value >= 10:
        return f"{value:.0f}ms"
    return f"{value:.1f}ms"
