"""The main view: header, history and the groups table, refreshed by the watcher.

This screen owns the attachment's watcher: it starts it on mount, stops it on unmount, and is
the target of its messages.  Each snapshot goes into the model first; the widgets are then
redrawn from the model, and the detail screen on top (if any) is told to refresh itself.
"""
from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Input, Static

from ..messages import ConnectionChanged, SnapshotReceived
from ..panels.groups import GroupsTable
from ..panels.header import HeaderPanel
from ..panels.history import HistoryPanel
from ..session import Session
from ..watcher import Watcher
from .attached import AttachedScreen, session_bindings

ENABLE_HINT = "Start the target with the probe on:  TASKTOP=1 python app.py   or   tasktop run -- CMD"

VERDICTS_HINT = " · v leak verdicts"

_KIND_LABEL = {"both": "tasks and threads", "task": "tasks only", "thread": "threads only"}


class MainScreen(AttachedScreen):
    BINDINGS = [
        Binding("question_mark", "app.help", "Help"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("t", "kind", "Kind"),
        *session_bindings("baseline", "stalls", "memory", "export", "record", "pause", "quit", skip=("help",)),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, session: Session, watcher_factory: Callable[..., Watcher] = Watcher,
                 from_picker: bool = False) -> None:
        super().__init__(session)
        self.watcher_factory = watcher_factory
        self.from_picker = from_picker
        self.watcher: Watcher | None = None

    def compose(self) -> ComposeResult:
        yield HeaderPanel(id="header")
        yield HistoryPanel(id="history")
        yield Static(id="banner")
        yield Static(id="caption")
        yield GroupsTable(id="groups")
        yield Input(placeholder="filter: any text of the stack, or a state (Enter keeps it, Esc clears)",
                    id="filter")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.watcher = self.watcher_factory(self.session.connection, self, self.session.interval)
        self.session.watcher = self.watcher
        self.watcher.start()
        self.refresh_view()
        self.query_one(GroupsTable).focus()

    def on_unmount(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    # Data in ---------------------------------------------------------------------------------
    def on_snapshot_received(self, message: SnapshotReceived) -> None:
        if self.session.paused:
            return  # a reply that was already on its way when the user paused
        self.session.model.update(message.summary)
        self.session.cost = message.cost
        if self.session.recorder is not None:
            self.app.record_snapshot(self.session, message.summary)
        self.refresh_view()
        top = self.app.screen
        if top is not self and isinstance(top, AttachedScreen) and top.session is self.session:
            top.snapshot_arrived()

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        before = self.session.state
        self.session.state = message.state
        self.session.reason = message.reason
        if message.state == "exited" and before != "exited" and self.session.model.summary is not None:
            self.notify(f"Process {self.session.pid or ''} exited: keeping its last data on screen",
                        severity="warning", timeout=5)
        elif message.state == "live" and before in ("exited", "unreachable"):
            self.notify("Reconnected to the probe", timeout=3)
        self.connection_changed()
        top = self.app.screen
        if top is not self and isinstance(top, AttachedScreen) and top.session is self.session:
            top.connection_changed()

    # Drawing ---------------------------------------------------------------------------------
    def snapshot_arrived(self) -> None:
        self.refresh_view()

    def connection_changed(self) -> None:
        self.query_one(HeaderPanel).show(self.session)
        self._show_banner()

    def on_screen_resume(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        session = self.session
        model = session.model
        self.query_one(HeaderPanel).show(session)
        self.query_one(HistoryPanel).show(model)
        rows = model.rows(session.kind, session.filter, session.sort)
        self.query_one(GroupsTable).show(rows, model.baseline is not None)
        summary = model.summary or {}
        sent = len(summary.get("groups") or ())
        total = int((summary.get("totals") or {}).get("groups") or sent)
        caption = Text()
        caption.append(f"{len(rows)} of {total} groups" if len(rows) != total else f"{total} groups", style="bold")
        if sent < total:
            caption.append(f" (the largest {sent} sent)", style="dim")
        caption.append(f" · sort: {session.sort} · {_KIND_LABEL[session.kind]}", style="dim")
        if session.filter:
            caption.append(" · filter: ", style="dim")
            caption.append(session.filter, style="bold yellow")
        if model.baseline is not None:
            caption.append(" · change since baseline", style="dim")
        if rows:
            caption.append(" · Enter opens", style="dim")
        # The footer is full at 80 columns: the leak verdicts are named here, when there is room.
        box = self.query_one("#caption", Static)
        if caption.cell_len + len(VERDICTS_HINT) <= (box.size.width or self.app.size.width - 2):
            caption.append(VERDICTS_HINT, style="dim")
        box.update(caption)
        self._show_banner()

    def _show_banner(self) -> None:
        session = self.session
        banner = self.query_one("#banner", Static)
        text = ""
        if session.state == "exited" and session.model.summary is not None:
            text = f"Process {session.pid or '?'} exited: showing its last data. " \
                   "tasktop reconnects if it comes back at the same socket."
        elif session.state == "unreachable" or (session.state == "exited" and session.model.summary is None):
            text = f"{session.reason or 'The probe does not answer.'}\n{ENABLE_HINT}"
        elif session.state == "connecting" and session.model.summary is None:
            text = f"Connecting to {session.path}…"
        banner.update(text)
        banner.display = bool(text)
        banner.set_class(session.state in ("exited", "unreachable"), "problem")

    # Keys ------------------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.session.filter
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.session.filter = event.value.strip()
            self.refresh_view()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = False
            self.query_one(GroupsTable).focus()

    def action_sort(self) -> None:
        self.session.cycle_sort()
        self.refresh_view()

    def action_kind(self) -> None:
        self.session.cycle_kind()
        self.refresh_view()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display or self.session.filter:
            box.value = ""
            box.display = False
            self.session.filter = ""
            self.query_one(GroupsTable).focus()
            self.refresh_view()
        elif self.from_picker:
            self.app.pop_screen()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "groups":
            return
        group = self.session.model.group(str(event.row_key.value))
        if group is None:
            self.notify("That group is gone", timeout=2)
            return
        from .group_detail import GroupScreen

        self.app.push_screen(GroupScreen(self.session, group))
