"""The groups table: one row per identical stack, the pile-ups first.

Refreshing keeps the cursor on the same group (by id), and rewrites only the cells whose text
changed (the table's rows are lines, not groups), so a refresh every second does not flicker,
move the user's place, or cost a redraw of 200 groups more than the lines that changed.  The
leak marker is the word ``LEAK``, not only a colour.
"""
from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widgets.data_table import ColumnKey, RowKey

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


def shown(row: GroupRow, baseline: bool, state_width: int) -> tuple:
    """What the cells of ``row`` are made of: equal for two rows, equal cells."""
    return (units.count(row.count), row.suspect, row.proven, row.change is not None and units.signed(row.change),
            row.change is not None and row.change > 0, row.kind, row.state, state_width,
            units.duration(row.blocked_max), row.where, baseline)


def where_budget(widths: list[int], width: int, scrollbar: int = 2) -> int:
    """The columns left for ``WHERE``'s text once the other columns have theirs."""
    return max(16, width - sum(widths[:-1]) - 1 - scrollbar)  # its leading space, and the scrollbar


def same_cell(one: Text, other: Text) -> bool:
    """Whether two cells look the same (then the one in the table stays)."""
    return one.plain == other.plain and one.style == other.style and one.spans == other.spans \
        and one.justify == other.justify


def fitted_where(where: Text, budget: int) -> Text:
    """The ``WHERE`` cell shortened to ``budget`` columns, so the whole row fits the table's
    width (it scrolls sideways otherwise, and WHERE is the column that must be seen)."""
    if len(where.plain) - 1 > budget:
        return Text(" " + stacks.fit_label(where.plain[1:], budget), style=where.style)
    return where


LABEL_WIDTHS = tuple(cell_len(label) for _, label in COLUMNS)


class MadeRow:
    """The cells made for one group, kept while it shows the same: its unfitted cells, their
    widths, and the cells fitted to the last ``WHERE`` budget."""

    __slots__ = ("what", "unfitted", "widths", "budget", "cells", "where_width")

    def __init__(self, what: tuple, unfitted: tuple) -> None:
        self.what = what
        self.unfitted = unfitted
        self.widths = tuple(cell.cell_len for cell in unfitted)
        self.budget: int | None = None
        self.cells: tuple = ()
        self.where_width = 0

    def fitted(self, budget: int) -> tuple:
        if budget != self.budget or not self.cells:
            self.budget = budget
            self.cells = self.unfitted[:-1] + (fitted_where(self.unfitted[-1], budget),)
            self.where_width = self.cells[-1].cell_len
        return self.cells


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
        self._cells: dict[str, tuple] = {}  # group id -> the cells in the table
        self._slots: list[tuple] = []  # row n -> the cells in the table
        self._made: dict[str, MadeRow] = {}  # group id -> its cells, made once
        self._same_text: dict[tuple, Text] = {}  # see _shared
        self._renders_for: int | None = None  # see _forget_stale_renders
        self._last: tuple | None = None
        self._fitted_for: tuple | None = None  # see _fit
        self._drawn: dict[tuple, tuple] = {}  # see _render_cell
        self._row_styles: dict[tuple, Style] = {}  # see _get_row_style

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

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False):
        """Textual's cell rendering, remembered per cell *object* rather than per table
        version: Textual forgets every rendered cell whenever any cell changes, so a redraw
        that changed ten cells rendered all 240 visible ones again (30-50 ms at 120x40).  A
        cell drawn before at another row gets that row's mouse metadata instead."""
        try:
            row_key = self._row_locations.get_key(row_index)
            cell = self._data[row_key][self._column_locations.get_key(column_index)]
            row = self.rows[row_key]
        except (AttributeError, KeyError, TypeError):  # the header, or another Textual
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (id(cell), column_index, base_style, width, cursor, hover, row.height, row_index < self.fixed_rows,
               getattr(self, "_show_hover_cursor", None), getattr(self, "_pseudo_class_state", None))
        drawn = self._drawn.get(key)
        if drawn is not None and drawn[0] is cell:
            if drawn[1] == row_index:
                return drawn[2]
            meta = Style.from_meta({"row": row_index, "column": column_index})
            lines = [[Segment(text, style + meta if style else meta, control) for text, style, control in line]
                     for line in drawn[2]]
        else:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        if len(self._drawn) > 1500:  # ~5 entries per line shown, a few redraws: what comes back
            self._drawn.clear()
        self._drawn[key] = (cell, row_index, lines)
        return lines

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        """Textual's row style (header, fixed, odd or even), remembered: Textual works it out
        from the CSS of every ancestor for each line it draws."""
        if row_index == -1 or row_index < self.fixed_rows:
            kind = ("header or fixed", row_index)
        else:
            kind = ("row", row_index % 2 if self.zebra_stripes else 0)
        key = (kind, base_style, getattr(self, "_pseudo_class_state", None))
        style = self._row_styles.get(key)
        if style is None:
            if len(self._row_styles) > 64:
                self._row_styles.clear()
            style = self._row_styles[key] = super()._get_row_style(row_index, base_style)
        return style

    def notify_style_update(self) -> None:
        self._drawn.clear()  # the cursor's and zebra's colours come from CSS: a theme changes them
        self._row_styles.clear()
        super().notify_style_update()

    def on_resize(self) -> None:
        # A box opened or closed below changes the height only: the rows fit as they were.
        if self._last is not None and self._fitted_for != self._fit(len(self._last[0])):
            self.show(*self._last)

    def _fit(self, rows: int) -> tuple:
        """What the rows' fitting depends on: the width, and whether a scrollbar takes some."""
        width = self.size.width or (self.app.size.width if self.is_attached else 80)
        return width, 2 if rows + 1 > (self.size.height or 0) else 0

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label in COLUMNS:
            if key == "change" and self._baseline:
                label = " Δ BASE"
            self.add_column(label, key=key)

    @property
    def selected_id(self) -> str | None:
        return self.id_at(self.cursor_row)

    def show(self, rows: list[GroupRow], baseline: bool) -> None:
        if baseline != self._baseline:
            self._baseline = baseline
            self.clear(columns=True)
            self._add_columns()
            self._keys = []
            self._cells = {}
            self._slots = []
        self._last = (rows, baseline)
        self._fitted_for = width, scrollbar = self._fit(len(rows))
        state_width = 14 if width < 100 else 24
        keys = [row.id for row in rows]
        made = self._made
        entries = []
        for row in rows:  # a row shown as before keeps its cells (making 200 rows' Texts costs)
            what = shown(row, baseline, state_width)
            entry = made.get(row.id)
            if entry is None or entry.what != what:
                entry = made[row.id] = MadeRow(what, self._shared(cells(row, baseline, state_width)))
            entries.append(entry)
        if len(made) > 2 * len(rows) + 100:
            wanted = set(keys)
            self._made = {key: value for key, value in made.items() if key in wanted}
        widths = [max(column) for column in zip(LABEL_WIDTHS, *(entry.widths for entry in entries))]
        budget = where_budget(widths, width, scrollbar)
        self._place(keys, {key: entry.fitted(budget) for key, entry in zip(keys, entries)})
        widths[-1] = max([LABEL_WIDTHS[-1]] + [entry.where_width for entry in entries])
        self._fit_columns(keys, widths)
        for key, entry in zip(keys, entries):
            entry.cells = self._cells[key]  # what the table holds: the same object next time
        self._forget_stale_renders()

    def _forget_stale_renders(self) -> None:
        """Empty Textual's caches of the table's rendered lines, rows and cells once its update
        count moved: they are keyed by that count, so no entry of an earlier one is read again,
        yet each stayed until its cache was full (1,000 lines, 10,000 cells): after a few jumps,
        ~20,000 objects more for every full collection of the garbage collector to walk."""
        count = getattr(self, "_update_count", None)
        clear = getattr(self, "_clear_caches", None)
        if count != self._renders_for and callable(clear):
            self._renders_for = count
            clear()

    def _shared(self, made: tuple) -> tuple:
        """``made`` with each cell replaced by an equal one made before, when there is one.

        A cell is drawn once per object (see ``_render_cell``): after a jump, where every line
        shows another group, the kinds, states, counts and growths of the new lines are mostly
        texts some line showed before, and are then drawn from memory instead of by Rich."""
        shared = self._same_text
        if len(shared) > 1000:  # the texts that come back (kinds, states, small counts) come back at once
            shared.clear()
        out = []
        for column, cell in enumerate(made):
            key = (column, cell.plain, cell.style, tuple(cell.spans), cell.justify)
            out.append(shared.setdefault(key, cell))
        return tuple(out)

    def _place(self, keys: list[str], new_cells: dict[str, tuple]) -> None:
        """Make the table show ``new_cells`` in the order of ``keys``, touching only what
        changed.  The table's rows are slots (row ``n`` is the ``n``-th line), and a group moving
        or arriving rewrites the cells of the slots whose text changed: Textual measures every
        cell of a row added (a clear and 200 ``add_row`` cost a redraw 50-170 ms), while a
        rewritten cell costs nothing until it is drawn."""
        selected = self.selected_id
        index = self.cursor_row
        slots = self._slots
        if len(slots) - len(keys) > len(keys):
            self.clear()  # far fewer rows (a filter typed, a kind chosen): start afresh
            slots = []
        while len(slots) > len(keys):
            self.remove_row(str(len(slots) - 1))
            slots.pop()
        rewritten = []
        for number, key in enumerate(keys[:len(slots)]):
            before = slots[number]
            now = new_cells[key]
            if now is before:
                continue
            final = []
            for (column, _), value, was in zip(COLUMNS, now, before):
                if value is not was and not same_cell(value, was):
                    rewritten.append((number, column, value))
                    was = value
                final.append(was)
            new_cells[key] = slots[number] = tuple(final)  # what the table holds
        self._rewrite(rewritten)
        for number in range(len(slots), len(keys)):
            slots.append(new_cells[keys[number]])
            self.add_row(*slots[number], key=str(number))
        self._slots = slots
        self._keys = keys
        self._cells = new_cells
        if keys:
            if not self.pinned:
                target = 0
            elif selected in keys:
                target = keys.index(selected)
            else:
                target = min(max(index, 0), len(keys) - 1)
            if target != self.cursor_row:
                self.move_cursor(row=target, animate=False, scroll=True)

    def _rewrite(self, cells: list[tuple]) -> None:
        """``update_cell`` for each of ``cells`` (row number, column, value), with one redraw:
        each ``update_cell`` asks for a redraw of its own (a jump rewrites ~900 cells)."""
        data = getattr(self, "_data", None)
        if not isinstance(data, dict) or not isinstance(getattr(self, "_update_count", None), int):
            for number, column, value in cells:  # another Textual: the public way
                self.update_cell(str(number), column, value)
            return
        for number, column, value in cells:  # the rows exist: _place made them
            data[RowKey(str(number))][ColumnKey(column)] = value
        if cells:
            self._update_count += 1  # what update_cell does, once
            self.refresh()

    def id_at(self, row: int) -> str | None:
        """The id of the group shown on line ``row``."""
        return self._keys[row] if 0 <= row < len(self._keys) else None

    def _fit_columns(self, keys: list[str], widths: list[int]) -> None:
        """Give each column the width of its widest cell (or label), as Textual would measure
        it, but without measuring a whole column each time one of its cells narrows."""
        if not keys:
            return
        for index, ((column_key, _), wanted) in enumerate(zip(COLUMNS, widths)):
            column = self.columns.get(ColumnKey(column_key))
            if column is None:
                continue
            wanted = max(wanted, column.label.cell_len)
            if column.content_width == wanted:
                continue
            column.content_width = wanted
            slots = self._slots
            widest = max(range(len(slots)), key=lambda number: slots[number][index].cell_len)
            # Measures that one cell (it is as wide as the column, so no other is measured)
            # and has the table's size recomputed.
            self.update_cell(str(widest), column_key, slots[widest][index], update_width=True)
