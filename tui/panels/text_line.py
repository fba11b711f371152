"""A ``Static`` of a fixed number of lines that is redrawn only when its text changed, and
without a layout pass of the whole screen when its height did not.

``Static.update`` asks for a layout, since new content may need another size.  The main view
updates its header, caption, time bar and history labels at every summary (or replay step);
each of those layouts re-arranged every widget and drew the screen twice, about 30 ms of a
redraw at 120x40.  These widgets do not wrap (their height is their number of lines), so a
text with as many lines as the last one fits the same box.
"""
from __future__ import annotations

import inspect

from rich.text import Text
from textual.widgets import Static

# ``layout=`` is newer than the oldest Textual tasktop runs on; without it, every update lays out.
_CAN_SKIP_LAYOUT = "layout" in inspect.signature(Static.update).parameters


class TextLine(Static):
    """Shows a ``Text`` whose lines never wrap."""

    _shown: Text | None = None

    def show_text(self, text: Text) -> None:
        before = self._shown
        if before is not None and before == text and before.style == text.style:
            return
        self._shown = text
        if _CAN_SKIP_LAYOUT:
            lines_changed = before is None or before.plain.count("\n") != text.plain.count("\n")
            self.update(text, layout=lines_changed)
        else:
            self.update(text)
