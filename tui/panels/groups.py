"""The groups table: one row per identical stack, the pile-ups first.

Refreshing keeps the cursor on the same group (by id), and when the rows are the same groups in
the same order only changed cells are rewritten, so a refresh every second does not flicker or
move the user's place.  The leak marker is the word ``LEAK``, not only a colour.
"""
from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from tasktop.render import stacks
from tasktop.render import units
from ..model import GroupRow
from .table import OpenTable

# Every cell starts with one space and the table has no cell padding: a one-column gap instead
# of Textual's two gives WHERE six more columns at 80x24.
COLUMNS = (("count", " COUNT"), ("change", " Δ/MIN"), ("kind", " KIND"), ("state", " STATE"),
           ("blocked", " BLOCKED"), ("where", " WHERE"))


def change_cell(row: GroupRow, baseline: bool) -> Text:
    text = Text(" ", justify="right")
    if row.change is not None:
        text.append(units.signed(row.change), style="yellow" if row.change > 0 else "")
    if row.proven:
        text.append(" PROVEN", style="bold red")
    elif row.suspect:
        text.append(" LEAK", style="bold red")
    return text


def cells(row: GroupRow, baseline: bool, state_width: int = 20) -> tuple:
    """The cells of one row; ``WHERE`` is fitted afterwards, once the other widths are known."""
    state = row.state if len(row.state) <= state_width else row.state[:state_width - 1] + "…"
    return (
        Text(" " + units.count(row.count), style="bold red" if row.suspect else "bold", justify="right"),
        change_cell(row, baseline),
        Text(" " + row.kind, style="dim" if row.kind == "task" else "magenta"),
        Text(" " + state),
        Text(" " + units.duration(row.blocked_max), justify="right"),
        Text(" " + row.where),
    )


def fit_where(rows: list[tuple], width: int, scrollbar: int = 2) -> list[tuple]:
    """Shorten the ``WHERE`` cells so the whole row fits in ``width`` columns (the table
    scrolls sideways otherwise, and WHERE is the column that must be seen)."""
    if not rows or width <= 0:
        return rows
    fixed = 0
    for index, (_, label) in enumerate(COLUMNS[:-1]):
        fixed += max([len(label)] + [len(row[index].plain) for row in rows])
    budget = max(16, width - fixed - 1 - scrollbar)  # its leading space, and the scrollbar
    out = []
    for row in rows:
        where = row[-1]
        if len(where.plain) - 1 > budget:
            where = Text(" " + stacks.fit_label(where.plain[1:], budget), style=where.style)
        out.append(row[:-1] + (where,))
    return out


class GroupsTable(OpenTable):
    """The main table.  ``show`` takes rows from the model; nothing else writes to it."""

    # The main footer is full at 80 columns: the caption line says "Enter opens" instead.
    BINDINGS = [Binding("enter", "select_cursor", "Open", show=False)]

    #: Until the user moves the cursor, it stays on the first row, whatever comes to the top;
    #: once they have, it follows *their* group as rows move.  Home goes back to following.
    pinned = False

    def __init__(self, **kwargs) -> None:
        super().__init__(cell_padding=0, **kwargs)
        self._keys: list[str] = []
        self._baseline = False
        self._cells: dict[str, tuple] = {}
        self._last: tuple | None = None

    def action_cursor_up(self) -> None:
        self.pinned = True
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self.pinned = True
        super().action_cursor_down()

    def action_page_up(self) -> None:
        self.pinned = True
        super().action_page_up()

    def action_page_down(self) -> None:
        self.pinned = True
        super().action_page_down()

    def action_scroll_bottom(self) -> None:
        self.pinned = True
        super().action_scroll_bottom()

    def action_scroll_top(self) -> None:
        self.pinned = False
        super().action_scroll_top()

    def on_click(self) -> None:
        self.pinned = True

    def on_resize(self) -> None:
        if self._last is not None:
            self.show(*self._last)

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label in COLUMNS:
            if key == "change" and self._baseline:
                label = " Δ BASE"
            self.add_column(label, key=key)

    @property
    def selected_id(self) -> str | None:
        if not self._keys or self.cursor_row < 0 or self.cursor_row >= len(self._keys):
            return None
        return self._keys[self.cursor_row]

    def show(self, rows: list[GroupRow], baseline: bool) -> None:
        keys = [row.id for row in rows]
        if baseline != self._baseline:
            self._baseline = baseline
            self.clear(columns=True)
            self._add_columns()
            self._keys = []
        self._last = (rows, baseline)
        width = self.size.width or (self.app.size.width if self.is_attached else 80)
        state_width = 14 if width < 100 else 24
        scrollbar = 2 if len(rows) + 1 > (self.size.height or 0) else 0
        fitted = fit_where([cells(row, baseline, state_width) for row in rows], width, scrollbar)
        new_cells = {row.id: cell for row, cell in zip(rows, fitted)}
        if keys == self._keys:
            for key in keys:
                old = self._cells.get(key)
                for (column, _), value, before in zip(COLUMNS, new_cells[key], old or (None,) * len(COLUMNS)):
                    if before is None or value.plain != before.plain or value.style != before.style \
                            or value.spans != before.spans:
                        self.update_cell(key, column, value, update_width=True)
            self._cells = new_cells
            return
        selected = self.selected_id
        index = self.cursor_row
        self.clear()
        for row in rows:
            self.add_row(*new_cells[row.id], key=row.id)
        self._keys = keys
        self._cells = new_cells
        if rows:
            if not self.pinned:
                target = 0
            elif selected in keys:
                target = keys.index(selected)
            else:
                target = min(max(index, 0), len(keys) - 1)
            self.move_cursor(row=target, animate=False, scroll=True)
