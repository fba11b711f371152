"""The main view: header, history and the groups table, redrawn from the model.

The app's live loop puts each summary in the model and bumps its ``revision``; this screen
follows it even while a detail screen covers it, so going back shows the latest at once.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Input, Static

from ..panels.groups import GroupsTable
from ..panels.header import HeaderPanel
from ..panels.history import HistoryPanel
from ..panels.text_line import TextLine
from ..session import Session
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

    follows_when_covered = True
    _banner_text: str | None = None

    def __init__(self, session: Session, from_picker: bool = False) -> None:
        super().__init__(session)
        self.from_picker = from_picker

    def compose(self) -> ComposeResult:
        yield HeaderPanel(id="header")
        yield HistoryPanel(id="history")
        yield Static(id="banner")
        yield TextLine(id="caption")
        yield GroupsTable(id="groups")
        yield Input(placeholder="filter: any text of the stack, or a state (Enter keeps it, Esc clears)",
                    id="filter")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.refresh_view()
        self.query_one(GroupsTable).focus()

    # Drawing ---------------------------------------------------------------------------------
    def model_changed(self) -> None:
        self.refresh_view()

    def status_changed(self) -> None:
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
        box = self.query_one("#caption", TextLine)
        if caption.cell_len + len(VERDICTS_HINT) <= (box.size.width or self.app.size.width - 2):
            caption.append(VERDICTS_HINT, style="dim")
        box.show_text(caption)
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
        if text != self._banner_text:  # an update lays the screen out: only when it changed
            self._banner_text = text
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
            self.app.detach()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "groups":
            return
        group = self.session.model.group(self.query_one(GroupsTable).id_at(event.cursor_row) or "")
        if group is None:
            self.notify("That group is gone", timeout=2)
            return
        from .group_detail import GroupScreen

        self.app.push_screen(GroupScreen(self.session, group))
