"""A row-cursor table whose Enter shows in the footer as "Open" (every table in tasktop opens
the line under the cursor, and the footer should say so), and whose Home/End go to the first
and last row, as in htop and less, rather than scrolling sideways."""
from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class OpenTable(DataTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "Open"),
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
