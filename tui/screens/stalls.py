"""Event-loop stalls: every time a loop did not answer its heartbeat in time, and what its
thread was running meanwhile (the code that blocked the loop).

The list is the model's, gathered from every summary since attaching, so it reaches further
back than the probe's own ring of the last few.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static

from tasktop.render import stacks
from tasktop.render import units
from ..panels.header import state_badge
from ..panels.stack import listing_width, render_stack
from .attached import AttachedScreen, session_bindings


class StallsScreen(AttachedScreen):
    BINDINGS = [Binding("escape", "back", "Back"), *session_bindings("help", "quit")]

    def __init__(self, session) -> None:
        super().__init__(session)
        self._keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield DataTable(id="stalls", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="stall-info", classes="info"):
            yield Static(id="stall-stack")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#stalls", DataTable)
        for key, label in (("at", "AT"), ("ago", "AGO"), ("loop", "LOOP"), ("duration", "BLOCKED FOR"),
                           ("where", "BLOCKING CODE")):
            table.add_column(label, key=key)
        self._show()
        table.focus()

    def model_changed(self) -> None:
        self._show()

    def status_changed(self) -> None:
        self._show_status()

    def on_screen_resume(self) -> None:
        self._show()

    def _show_status(self) -> None:
        model = self.session.model
        text = state_badge(self.session)
        text.append("  Event-loop stalls", style="bold")
        text.append(f" · {len(model.stalls)} seen since attaching · {model.stall_count()} counted by the probe",
                    style="dim")
        lag = model.lag_ms()
        text.append(f" · lag now {units.ms(lag)}", style="dim")
        self.query_one("#status", Static).update(text)

    def _show(self) -> None:
        self._show_status()
        model = self.session.model
        now = model.now or 0.0
        table = self.query_one("#stalls", DataTable)
        current = [f"{stall.loop}:{stall.at}" for stall in model.stalls]
        if current and current == self._keys:
            for key, stall in zip(current, model.stalls):  # only "AGO" moves
                table.update_cell(key, "ago", Text(units.duration(max(0.0, now - stall.at)), justify="right"))
            return
        selected = self._selected_key(table)
        table.clear()
        keys = []
        for stall in model.stalls:
            key = f"{stall.loop}:{stall.at}"
            keys.append(key)
            loop = f"{stall.loop}" + (f" ({stall.thread_name})" if stall.thread_name else "")
            table.add_row(
                Text(units.clock(stall.at)),
                Text(units.duration(max(0.0, now - stall.at)), justify="right"),
                Text(loop),
                Text(units.ms(stall.duration_ms), justify="right", style="bold"),
                Text(stacks.where(stall.stack)),
                key=key,
            )
        self._keys = keys
        if keys:
            # Stay on the stall the user is reading while newer ones arrive above it.
            table.move_cursor(row=keys.index(selected) if selected in keys else 0, animate=False)
        self._show_stack()

    @staticmethod
    def _selected_key(table: DataTable) -> str | None:
        if not table.row_count or not 0 <= table.cursor_row < table.row_count:
            return None
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value

    def _show_stack(self) -> None:
        model = self.session.model
        table = self.query_one("#stalls", DataTable)
        body = self.query_one("#stall-stack", Static)
        if not model.stalls:
            body.update(Text("No stall seen yet: every heartbeat was answered within the stall threshold "
                             "(TASKTOP_STALL_MS, 100 ms by default).", style="dim"))
            return
        stall = model.stalls[min(max(table.cursor_row, 0), len(model.stalls) - 1)]
        text = Text()
        text.append(f"The loop's thread while it was stalled for {units.ms(stall.duration_ms)} at "
                    f"{units.clock(stall.at)} (innermost first)\n", style="bold underline")
        text.append_text(render_stack(stall.stack, width=listing_width(body)))
        body.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_stack()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one("#stall-info").focus()

    def action_back(self) -> None:
        self.app.pop_screen()
