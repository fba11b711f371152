"""How numbers read: durations and byte sizes (``wire.units``, shared with the probe), counts,
changes, clock times and milliseconds."""
from __future__ import annotations

import time

from tasktop.wire.units import duration, size

__all__ = ["duration", "size", "count", "signed", "signed_size", "clock", "ms", "lifetime"]


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


def lifetime(seconds: float | None) -> str:
    """How long a task lived: milliseconds below a second (most tasks live less), else as a
    ``duration``: ``0.3ms``, ``80ms``, ``1.4s``, ``2m03s``."""
    if seconds is None:
        return "-"
    if seconds < 0.0001:
        return "<0.1ms"
    return ms(seconds * 1000) if seconds < 1 else duration(seconds)
