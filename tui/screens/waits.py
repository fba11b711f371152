"""Waits (``w``): every queue, lock, semaphore, event or condition that tasks or threads wait on,
most waiters first, with its own numbers and how they moved since the last look.

The other half of "what is piling up": a group says 1 consumer waits on ``Queue.get``; this view
says that queue holds 40,000 items.  Asked for with every snapshot, like a detail screen (the
probe reads the objects' fields; what a parked task waits on is found once).  The deltas are
since the probe's previous look, whoever asked for it.
"""
from __future__ import annotations

from typing import Any, Hashable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static

from tasktop.client.connection import Connection
from tasktop.render.ends import wait_kind, wait_moves, wait_numbers, wait_where
from ..panels.table import OpenTable
from .attached import session_bindings
from .detail import DetailScreen

COLUMNS = (("waiting", "WAITERS"), ("kind", "WHAT"), ("numbers", "NOW"), ("moved", "MOVED"), ("where", "WHERE"))


def size_or_state(wait: dict) -> str:
    """The one number that matters most, for the table: items of a queue, else the state."""
    numbers = wait.get("numbers") or {}
    if "size" in numbers:
        cap = f"/{numbers['maxsize']:,}" if numbers.get("maxsize") else ""
        return f"{numbers['size']:,}{cap} items"
    if "locked" in numbers:
        return "held" if numbers["locked"] else "free"
    if "set" in numbers:
        return "set" if numbers["set"] else "not set"
    if "value" in numbers:
        return f"value {numbers['value']}"
    return "-"


class WaitsScreen(DetailScreen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Reload", show=False),
        *session_bindings("help", "quit", skip=("waits",)),
    ]
    title_text = "Waits: what tasks and threads wait on, most waiters first"

    def __init__(self, session, **kwargs) -> None:
        super().__init__(session, **kwargs)
        self.rows: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield OpenTable(id="waits")
        with VerticalScroll(id="wait-info", classes="info"):
            yield Static("loading…", id="wait-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#waits", DataTable)
        for key, heading in COLUMNS:
            table.add_column(heading, key=key)
        table.focus()
        super().on_mount()

    def request_key(self) -> Hashable:
        return ("waits",)

    def fetch(self, connection: Connection) -> Any:
        return connection.waits()

    def status_text(self) -> Text:
        text = Text(self.title_text, style="bold")
        if self.data is not None:
            text.append(f" · {self.data.get('total', 0)} objects", style="dim")
        return text

    def show(self, data: Any) -> None:
        self.rows = list(data.get("waits") or ())
        since = data.get("since_s")
        table = self.query_one("#waits", DataTable)
        index = table.cursor_row
        table.clear()
        for wait in self.rows:
            table.add_row(
                Text(f"{wait.get('waiting', 0):,}", justify="right", style="bold"),
                Text(wait_kind(str(wait.get("kind")))),
                Text(size_or_state(wait)),
                Text(wait_moves(wait, since), style="dim"),
                Text(wait_where(wait)),
                key=str(wait.get("id")),
            )
        if self.rows:
            table.move_cursor(row=min(max(index, 0), len(self.rows) - 1), animate=False)
        self._show_info()

    def _show_info(self) -> None:
        body = self.query_one("#wait-body", Static)
        if not self.rows:
            body.update(Text("No task or thread waits on a queue, lock, semaphore, event or condition.",
                             style="dim"))
            return
        table = self.query_one("#waits", DataTable)
        wait = self.rows[min(max(table.cursor_row, 0), len(self.rows) - 1)]
        text = Text()
        text.append(f"{wait_kind(str(wait.get('kind')))} waited on at {wait_where(wait)}\n", style="bold underline")
        text.append(f"now: {wait_numbers(wait)}\n")
        text.append(f"moved: {wait_moves(wait, (self.data or {}).get('since_s'))}\n")
        states = ", ".join(f"{n} in {s}" for s, n in (wait.get("states") or {}).items())
        text.append(f"waiters: {wait.get('waiting', 0):,} ({states})\n")
        text.append(f"groups: {', '.join(wait.get('groups') or []) or '-'}", style="dim")
        body.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_info()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter opens the largest group of the waiters."""
        from .group_detail import GroupScreen

        key = str(event.row_key.value)
        wait = next((w for w in self.rows if str(w.get("id")) == key), None)
        groups = (wait or {}).get("groups") or []
        model = self.session.model
        summary = model.summary or {}
        group = next((g for g in summary.get("groups") or () if g.get("id") in groups), None)
        if group is None:
            self.notify("Its group is not among the snapshot's groups", timeout=3)
            return
        self.app.push_screen(GroupScreen(self.session, group))
