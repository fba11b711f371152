"""Leak verdicts (``v``): the probe's own judgement of which groups are leaks, and why.

``verdicts()`` counts references around every waiter (bounded by ``BUDGET_S``), so it is asked for only when
the screen opens and when the user presses ``r`` (or ``v`` again), never with the live loop's
rhythm nor on coming back from a group; like every request it runs on a worker thread, and the
screen says "checking…" meanwhile.  The last reply is kept in the model: reopening the screen
shows it at once, with its age, while the new check runs.
"""
from __future__ import annotations

from typing import Hashable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static

from tasktop.render import stacks
from tasktop.render import units
from tasktop.client.connection import Connection
from ..messages import DetailFailed, DetailLoaded
from ..panels.header import state_badge
from ..panels.table import OpenTable
from .attached import AttachedScreen, session_bindings
from .detail import ask

BUDGET_S = 2.0
CHECKING = f"checking… (proving leaks, up to {BUDGET_S:g} s)"

#: verdict -> (label, style, what it means).  The label carries the meaning; colour only helps.
VERDICTS = {
    "unreachable": ("PROVEN LEAK", "bold white on red",
                    "Only the waiters reference what they wait on (the probe counted every reference "
                    "to it): nothing can ever wake them."),
    "growing": ("GROWING", "bold black on yellow",
                "The count rose steadily across the probe's own history (a point every 5 s, up to "
                "10 minutes, kept even when nobody is attached)."),
    "stuck": ("STUCK", "bold cyan",
              "Every member has been blocked for at least a minute on something that does not wake "
              "by itself (not a sleep, a socket, a subprocess or an idle loop)."),
    "lost": ("LOST", "bold white on magenta",
             "Tasks the collector destroyed while they were still waiting, because nothing referenced "
             "them: the work they stood for never happened (asyncio's \"Task was destroyed but it is "
             "pending!\"). Counted since the probe started, by where they were created."),
}
ORDER = {name: index for index, name in enumerate(VERDICTS)}

COLUMNS = (("verdict", "VERDICT"), ("count", "COUNT"), ("state", "STATE"), ("where", "WHERE"))


def verdict_key(verdict: dict) -> str:
    """A row key: one group can be both proven and growing."""
    return f"{verdict.get('verdict')}:{verdict.get('group')}"


def describe(verdict: dict) -> tuple:
    """``(label, style, meaning)`` of a verdict (an unknown one is shown by its name)."""
    name = verdict.get("verdict")
    return VERDICTS.get(name) or (str(name or "?").upper(), "bold", "")


def label(verdict: dict) -> Text:
    name, style, _ = describe(verdict)
    return Text(name, style=style)


def count_label(verdict: dict) -> str:
    count = int(verdict.get("count") or 0)
    kind = str(verdict.get("kind") or "task")
    return f"{count:,} {kind}{'s' if count != 1 else ''}"


def ordered(verdicts: list) -> list:
    """Proven leaks first, then growing, then stuck; largest first within each."""
    return sorted(verdicts, key=lambda v: (ORDER.get(v.get("verdict"), len(ORDER)), -int(v.get("count") or 0)))


class VerdictsScreen(AttachedScreen):
    """Not a :class:`DetailScreen`: those ask again with every snapshot and on coming back into
    view, which a proof (up to ``BUDGET_S``) must not do.  The request and its messages are the same."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Check again"),
        Binding("v", "reload", "Check again", show=False),  # ``v`` again on the verdicts: check again
        *session_bindings("help", "quit", skip=("verdicts",)),
    ]

    def __init__(self, session, **kwargs) -> None:
        super().__init__(session, **kwargs)
        self.data: dict | None = None  # the reply to this screen's latest check
        self.error = ""
        self._asked = 0  # checks started: a reply to an older one is ignored
        self._loading = False
        self._rows: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield Static(id="verdicts-caption", classes="caption")
        yield OpenTable(id="verdicts")
        with VerticalScroll(id="verdict-info", classes="info"):
            yield Static(id="verdict-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#verdicts", DataTable)
        for key, heading in COLUMNS:
            table.add_column(heading, key=key)
        if self.session.model.verdicts is not None:
            self._show_rows()  # the last check, at once; the new one follows
        table.focus()
        self.load()

    # Data ------------------------------------------------------------------------------------
    def load(self) -> None:
        """Ask for verdicts on a worker thread (the probe may take up to ``BUDGET_S``)."""
        if self._loading:
            self.notify("Already checking", timeout=2)
            return
        self._asked += 1
        request = ("verdicts", self._asked)
        connection = self.session.connection
        self._loading = True
        self.error = ""
        self._check_in_worker(request, connection)
        self.update_status()

    @work(thread=True, group="verdicts", exit_on_error=False)
    def _check_in_worker(self, request: Hashable, connection: Connection) -> None:
        self.post_message(ask(lambda: connection.verdicts(BUDGET_S), request))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.request != ("verdicts", self._asked):
            return
        self._loading = False
        if not isinstance(message.data, dict):
            self.error = "the probe's reply has no verdicts"
        else:
            self.data = message.data
            self.session.model.note_verdicts(message.data)
            if self.session.recorder is not None:  # verdicts are recorded whenever they are checked
                self.session.recorder.extra("verdicts", message.data, (self.session.model.summary or {}).get("time"))
            self._show_rows()
        self.update_status()

    def on_detail_failed(self, message: DetailFailed) -> None:
        if message.request != ("verdicts", self._asked):
            return
        self._loading = False
        self.error = message.reason
        self.update_status()

    # Not asked again by themselves: only their age moves.
    def model_changed(self) -> None:
        self.update_status()

    def status_changed(self) -> None:
        self.update_status()

    def on_screen_resume(self) -> None:
        self.update_status()

    def on_resize(self) -> None:
        if self.session.model.verdicts is not None:
            self._show_rows()

    # Drawing ---------------------------------------------------------------------------------
    def update_status(self) -> None:
        reply = self.session.model.verdicts
        text = state_badge(self.session)
        text.append("  Leak verdicts", style="bold")
        if reply is not None:
            at = reply.get("time")
            text.append(f" · checked {units.clock(at)}", style="dim")
            now = self.session.model.now
            if now is not None and at is not None:
                text.append(f" ({units.duration(max(0.0, now - float(at)))} ago)", style="dim")
            text.append(f" · probe history {units.duration(reply.get('history_s'))}", style="dim")
        if self.error:
            text.append("\n")
            text.append(" CHECK FAILED ", style="bold white on red")
            text.append(f" {self.error}")
            if reply is not None:
                text.append(" (showing the last verdicts)", style="dim")
        self.query_one("#status", Static).update(text)
        self._show_caption()
        if not self._rows:
            self._show_detail()  # "checking…", the failure, or "no verdicts" takes the pane

    def _show_caption(self) -> None:
        caption = self.query_one("#verdicts-caption", Static)
        if self._loading:
            caption.update(Text(CHECKING, style="bold yellow"))
            return
        reply = self.session.model.verdicts
        if reply is None:
            caption.update(Text("No verdicts yet" + (" · r tries again" if self.error else ""), style="bold"))
            return
        found = reply.get("verdicts") or []
        if not found:
            caption.update(Text.assemble(("No leak verdicts", "bold"), (" · r checks again", "dim")))
            return
        counts = [(sum(1 for v in found if v.get("verdict") == name), words)
                  for name, words in (("unreachable", ("proven leak", "proven leaks")),
                                      ("growing", ("growing", "growing")), ("stuck", ("stuck", "stuck")),
                                      ("lost", ("lost site", "lost sites")))]
        parts = [f"{n} {words[n != 1]}" for n, words in counts if n]
        text = Text.assemble((f"{len(found)} verdict{'s' if len(found) != 1 else ''}", "bold"),
                             (f": {', '.join(parts)}", ""))
        unsettled = reply.get("unsettled")
        if unsettled:  # what the proof could not judge in its budget: no verdict either way
            text.append(f" · {unsettled['waiters']} not settled", style="bold yellow")
        room = caption.size.width or self.app.size.width - 2
        for hint in (" · Enter opens the group", " · r checks again"):
            if text.cell_len + len(hint) <= room:
                text.append(hint, style="dim")
        caption.update(text)

    def _show_rows(self) -> None:
        reply = self.session.model.verdicts or {}
        rows = ordered(list(reply.get("verdicts") or ()))
        table = self.query_one("#verdicts", DataTable)
        selected = None
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            selected = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        cells = [[label(v), Text(count_label(v), justify="right"), Text(str(v.get("state") or "")),
                  stacks.frame_label(v.get("frame"))] for v in rows]
        # WHERE gets what the other columns leave (two columns of padding each, and a scrollbar).
        width = self.size.width or self.app.size.width
        fixed = sum(max([len(heading)] + [len(row[i].plain) for row in cells]) + 2
                    for i, (_, heading) in enumerate(COLUMNS[:-1]))
        scrollbar = 2 if len(rows) + 1 > (table.size.height or len(rows) + 1) else 0
        budget = max(16, width - fixed - 2 - scrollbar)
        table.clear()
        keys = []
        for verdict, row in zip(rows, cells):
            key = verdict_key(verdict)
            if key in keys:
                continue
            keys.append(key)
            table.add_row(*row[:-1], Text(stacks.fit_label(row[-1], budget)), key=key)
        self._rows = rows
        if keys:
            table.move_cursor(row=keys.index(selected) if selected in keys else 0, animate=False)
        self._show_detail()

    def _selected(self) -> dict | None:
        table = self.query_one("#verdicts", DataTable)
        if not self._rows or not 0 <= table.cursor_row < table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((v for v in self._rows if verdict_key(v) == key), None)

    def _show_detail(self) -> None:
        body = self.query_one("#verdict-body", Static)
        reply = self.session.model.verdicts
        verdict = self._selected()
        text = Text()
        if verdict is not None:
            name, style, meaning = describe(verdict)
            text.append(name, style=style)
            text.append(f"  {count_label(verdict)} · {verdict.get('state', '')} · ", style="bold")
            text.append(stacks.frame_label(verdict.get("frame")), style="bold")
            text.append(f"\ngroup {verdict.get('group')}", style="dim")
            if float(verdict.get("blocked_min_s") or 0.0) > 0.0:
                text.append(f" · each blocked at least {units.duration(verdict.get('blocked_min_s'))}", style="dim")
            group = self.session.model.group(str(verdict.get("group")))
            if group is not None and int(group.get("count") or 0) != int(verdict.get("count") or 0):
                text.append(f" · {units.count(group.get('count'))} in the group now", style="dim")
            text.append("\n\n")
            text.append(str(verdict.get("reason") or ""))
            text.append("\n\n")
            if meaning:
                text.append(meaning + "\n", style="dim")
            text.append("Enter opens the group.", style="dim")
        else:
            if reply is not None and not reply.get("verdicts"):
                text.append("No leak verdicts: no group is proven unreachable, growing or stuck.\n", style="bold")
                history = float(reply.get("history_s") or 0.0)
                if history < 20.0:
                    text.append(f"The probe has {units.duration(history)} of history; growth needs at least "
                                "20 s of it. r checks again.\n", style="dim")
                text.append("\n")
            elif self._loading:
                text.append(CHECKING + "\n\n", style="bold yellow")
            elif self.error:
                text.append(f"The probe could not give verdicts: {self.error}\n\n", style="bold")
            for name, _style, meaning in VERDICTS.values():
                text.append(f"{name:<12}", style="bold")
                text.append(f" {meaning}\n", style="dim")
        body.update(text)

    # Keys ------------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reload(self) -> None:
        self.load()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        verdict = next((v for v in self._rows if verdict_key(v) == event.row_key.value), None)
        if verdict is None:
            return
        gid = str(verdict.get("group"))
        # The summary's group has its stack and creation sites; a group outside the summary's
        # largest is asked for by id all the same (the group view fills it in from the reply).
        group = self.session.model.group(gid) or {
            "id": gid, "kind": verdict.get("kind", "task"), "count": verdict.get("count", 0),
            "state": verdict.get("state", ""), "blocked_min_s": verdict.get("blocked_min_s"),
            "blocked_max_s": verdict.get("blocked_min_s"),
            "stack": [verdict["frame"]] if verdict.get("frame") else [], "created_by": [],
        }
        from .group_detail import GroupScreen

        self.app.push_screen(GroupScreen(self.session, group))
