"""One group: its stack with source, where its members were created, and its members, paged.

Members are asked for one page at a time (``group(id, offset, limit)``), so a group of 100,000
tasks costs one page of rows, never all of them.  The stack and creation sites shown at first
come from the summary; the reply adds their source lines.
"""
from __future__ import annotations

from typing import Any, Hashable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static

from tasktop.render.ends import lifetimes_text
from tasktop.render import stacks
from tasktop.render import units
from tasktop.client.connection import Connection
from ..panels.stack import listing_width, render_sites, render_stack
from ..panels.table import OpenTable
from .detail import DetailScreen

PAGE = 100

TASK_COLUMNS = (("id", "ID"), ("name", "NAME"), ("blocked", "BLOCKED"), ("created", "CREATED BY"),
                ("parent", "IN TASK"))
THREAD_COLUMNS = (("name", "NAME"), ("ident", "IDENT"), ("native", "TID"), ("blocked", "BLOCKED"),
                  ("kernel", "KERNEL"), ("cpu", "CPU"))


class GroupScreen(DetailScreen):
    BINDINGS = [
        Binding("right_square_bracket,n", "page(1)", "Next page"),
        Binding("left_square_bracket,N", "page(-1)", "Prev page"),
    ]

    def __init__(self, session, group: dict) -> None:
        super().__init__(session)
        self.group = group
        self.page_offset = 0
        self.total = int(group.get("count") or 0)
        self.items: list[dict] = []

    @property
    def kind(self) -> str:
        return self.group.get("kind", "task")

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        with VerticalScroll(id="group-info", classes="info"):
            yield Static(id="group-stack")
        yield Static(id="page", classes="caption")
        yield OpenTable(id="members")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#members", DataTable)
        for key, label in (TASK_COLUMNS if self.kind == "task" else THREAD_COLUMNS):
            table.add_column(label, key=key)
        self._show_group(self.group)
        self._show_page()
        table.focus()

    # Data ------------------------------------------------------------------------------------
    def request_key(self) -> Hashable:
        return ("group", self.group["id"], self.page_offset)

    def fetch(self, connection: Connection) -> Any:
        return connection.group(self.group["id"], self.page_offset, PAGE)

    def show(self, data: Any) -> None:
        self.group = data.get("group") or self.group
        self.total = int(data.get("total") or 0)
        self.items = list(data.get("items") or ())
        self._show_group(self.group)
        self._show_members()
        self._show_page()
        if not self.items and self.page_offset and self.total:
            self.action_page(-1)  # the group shrank under our page: step back

    def status_text(self) -> Text:
        group = self.group
        noun = self.kind + ("s" if self.total != 1 else "")
        text = Text()
        text.append(f"Group {group['id']}", style="bold")
        text.append(f" · {units.count(self.total)} {noun} · {group.get('state', '')} · ")
        text.append(stacks.where(group.get("stack")), style="bold")
        low, high = units.duration(group.get("blocked_min_s")), units.duration(group.get("blocked_max_s"))
        text.append(f" · blocked {high}" if low == high else f" · blocked {low}–{high}", style="dim")
        return text

    def _show_group(self, group: dict) -> None:
        text = Text()
        text.append("Stack (innermost first)\n", style="bold underline")
        text.append_text(render_stack(group.get("stack"), width=listing_width(self.query_one("#group-stack", Static))))
        if self.kind == "task":
            text.append("\n\n")
            text.append("Created by\n", style="bold underline")
            text.append_text(render_sites(group.get("created_by")))
            lifetimes = (self.data or {}).get("lifetimes")
            if lifetimes:
                text.append("\n\n")
                text.append("Lifetimes\n", style="bold underline")
                text.append(f"  members so far: {lifetimes_text(lifetimes.get('live'))}\n")
                text.append(f"  ended recently: {lifetimes_text(lifetimes.get('ended'))}")
        self.query_one("#group-stack", Static).update(text)
        self.update_status()

    def _show_page(self) -> None:
        noun = "tasks" if self.kind == "task" else "threads"
        if self.data is None:
            last = min(self.total, self.page_offset + PAGE)
            label = f"{noun} {self.page_offset + 1:,}–{last:,} of {self.total:,} (loading…)"
        elif not self.items:
            label = f"no {noun} left in this group"
        else:
            label = f"{noun} {self.page_offset + 1:,}–{self.page_offset + len(self.items):,} of {self.total:,}"
        text = Text(label, style="bold")
        pages = (self.total + PAGE - 1) // PAGE
        if pages > 1:
            text.append(f"  page {self.page_offset // PAGE + 1} of {pages}  (] next, [ previous)", style="dim")
        text.append("  Enter opens one", style="dim")
        self.query_one("#page", Static).update(text)

    def _show_members(self) -> None:
        table = self.query_one("#members", DataTable)
        selected = None
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            selected = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        index = table.cursor_row
        table.clear()
        keys = []
        for item in self.items:
            if self.kind == "task":
                key = str(item.get("id"))
                parent = item.get("created_in")
                table.add_row(
                    Text(f"#{item.get('id')}", justify="right"),
                    Text(str(item.get("name") or "")),
                    Text(units.duration(item.get("blocked_s")), justify="right"),
                    Text(stacks.where(item.get("created_by")) if item.get("created_by") else "-"),
                    Text(f"#{parent}" if parent is not None else "-", justify="right"),
                    key=key,
                )
            else:
                key = str(item.get("ident"))
                kernel = item.get("kernel") or {}
                table.add_row(
                    Text(str(item.get("name") or "")),
                    Text(str(item.get("ident"))),
                    Text(str(item.get("native_id") or "-")),
                    Text(units.duration(item.get("blocked_s")), justify="right"),
                    Text(" ".join(str(x) for x in (kernel.get("state"), kernel.get("syscall")) if x) or "-"),
                    Text(f"{float(item.get('cpu_s') or 0):.2f}s", justify="right"),
                    key=key,
                )
            keys.append(key)
        if keys:
            target = keys.index(selected) if selected in keys else min(max(index, 0), len(keys) - 1)
            table.move_cursor(row=target, animate=False)

    # Keys ------------------------------------------------------------------------------------
    def action_page(self, direction: int) -> None:
        offset = self.page_offset + direction * PAGE
        if offset < 0 or (direction > 0 and offset >= self.total):
            self.notify("No more pages that way", timeout=2)
            return
        self.page_offset = offset
        self.items = []
        self.data = None
        self._show_members()
        self._show_page()
        self.load()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        if self.kind == "task":
            from .task_detail import TaskScreen

            self.app.push_screen(TaskScreen(self.session, int(key)))
        else:
            from .thread_detail import ThreadScreen

            self.app.push_screen(ThreadScreen(self.session, int(key)))
