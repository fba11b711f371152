"""``e``: write the current snapshot as the files ``tasktop dump`` would print.

The text is ``tasktop dump``'s and the JSON is the documented ``--json`` document (both from
:mod:`tasktop.render.text`), so an export is something to attach to a bug report or diff later.
Files go to ``$TASKTOP_EXPORT_DIR`` or the current directory, named by pid and local time.
"""
from __future__ import annotations

import os
import time


def export_dir() -> str:
    return os.environ.get("TASKTOP_EXPORT_DIR") or os.getcwd()


def write_export(data: dict, directory: str | None = None, when: float | None = None) -> tuple[str, str]:
    """Write ``tasktop-PID-YYYYmmdd-HHMMSS.txt`` and ``.json``; returns their paths."""
    from . import text as report

    directory = directory or export_dir()
    os.makedirs(directory, exist_ok=True)
    pid = (data.get("process") or {}).get("pid", "unknown")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    base = os.path.join(directory, f"tasktop-{pid}-{stamp}")
    text_path, json_path = base + ".txt", base + ".json"
    with open(text_path, "w", encoding="utf-8") as fh:
        fh.write(report.render_text(data, full=False))
    with open(json_path, "w", encoding="utf-8") as fh:
        for piece in report.json_pieces(report.to_document(data), default=str):  # (rows may be wire.Rows)
            fh.write(piece)
    return text_path, json_path
