"""The probe's options, read from the environment once at start.

``TASKTOP``                  ``1`` enables the probe at interpreter start-up (via ``tasktop.pth``).
``TASKTOP_DIR``              socket directory (default: ``$XDG_RUNTIME_DIR/tasktop``, else
                             ``<tempdir>/tasktop-<uid>``).
``TASKTOP_INTERVAL``         seconds between background samples (default 1.0); the probe
                             stretches it when a sample costs more than 1% of a core.
``TASKTOP_CREATION_STACKS``  ``0`` turns off recording where tasks are created (default on).
``TASKTOP_CREATION_DEPTH``   frames kept of each creation stack (default 4).
``TASKTOP_TRACEMALLOC``      ``1`` starts tracemalloc (``N`` > 1: with N frames) (default off).
``TASKTOP_STALL_MS``         an event loop silent for longer than this is stalled (default 100).
``TASKTOP_END_HISTORY``      ``0`` turns off the history of how tasks end (a done-callback per
                             task, and who cancelled) (default on).
``TASKTOP_CANCELLERS``       ``profile``: before 3.12, see direct ``task.cancel()`` callers through
                             ``sys.setprofile`` (slows the host: off by default; 3.12+ always
                             sees them, through ``sys.monitoring``).
``TASKTOP_RECORD``           a directory: the flight recorder keeps the recent past there (off by default).
``TASKTOP_RECORD_SIZE``      bytes the flight recorder may keep per process (default 4 MB; ``K``/``M``/``G``).
``TASKTOP_RECORD_INTERVAL``  seconds between two recorded summaries (default 5).
"""
from __future__ import annotations

import os
from dataclasses import dataclass


def _float(name: str, default: float, low: float) -> float:
    try:
        return max(low, float(os.environ.get(name, default)))
    except ValueError:
        return default


def _int(name: str, default: int, low: int) -> int:
    try:
        return max(low, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _size(name: str, default: int, low: int) -> int:
    text = os.environ.get(name, "").strip().upper().rstrip("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1) if text else 1
    try:
        return max(low, int(float(text.rstrip("KMG")) * scale)) if text else default
    except ValueError:
        return default


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


@dataclass
class Options:
    directory: str | None = None
    interval: float = 1.0
    creation_stacks: bool = True
    creation_depth: int = 4
    tracemalloc: int = 0
    stall_ms: float = 100.0
    end_history: bool = True
    cancellers_by_profile: bool = False
    record: str | None = None
    record_size: int = 4 << 20
    record_interval: float = 5.0

    @classmethod
    def from_env(cls) -> "Options":
        tm = os.environ.get("TASKTOP_TRACEMALLOC", "")
        try:
            frames = int(tm) if tm else 0
        except ValueError:
            frames = 1 if _flag("TASKTOP_TRACEMALLOC", False) else 0
        return cls(
            directory=os.environ.get("TASKTOP_DIR") or None,
            interval=_float("TASKTOP_INTERVAL", 1.0, 0.05),
            creation_stacks=_flag("TASKTOP_CREATION_STACKS", True),
            creation_depth=_int("TASKTOP_CREATION_DEPTH", 4, 1),
            tracemalloc=max(0, frames),
            stall_ms=_float("TASKTOP_STALL_MS", 100.0, 10.0),
            end_history=_flag("TASKTOP_END_HISTORY", True),
            cancellers_by_profile=os.environ.get("TASKTOP_CANCELLERS", "").strip().lower() == "profile",
            record=os.environ.get("TASKTOP_RECORD") or None,
            record_size=_size("TASKTOP_RECORD_SIZE", 4 << 20, 64 << 10),
            record_interval=_float("TASKTOP_RECORD_INTERVAL", 5.0, 0.2),
        )
