"""Memory of the host process: RSS and its peak, gc, and tracemalloc when it is on."""
from __future__ import annotations

import gc
import os
import resource
import sys
import tracemalloc

from . import procfs

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss() -> tuple[int | None, int | None]:
    """(current, peak) resident set size in bytes."""
    current = peak = None
    for line in (procfs.read("/proc/self/status", 16384) or "").splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    if peak is None:
        try:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        except Exception:
            pass
    return current, peak


def summary() -> dict:
    current, peak = rss()
    traced = None
    if tracemalloc.is_tracing():
        cur, top = tracemalloc.get_traced_memory()
        traced = {"current_bytes": cur, "peak_bytes": top}
    return {
        "rss_bytes": current,
        "rss_peak_bytes": peak,
        "gc_counts": list(gc.get_count()),
        "gc_collections": [s.get("collections", 0) for s in gc.get_stats()],
        "tracemalloc": traced,
    }


def top_sites(limit: int = 20) -> list[dict]:
    """tracemalloc's largest allocation sites by line (empty when tracemalloc is off)."""
    if not tracemalloc.is_tracing():
        return []
    snap = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"))
    )
    out = []
    for stat in snap.statistics("lineno")[:limit]:
        frame = stat.traceback[0]
        out.append({"file": frame.filename, "line": frame.lineno, "size_bytes": stat.size,
                    "count": stat.count})
    return out
