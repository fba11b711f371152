"""One task: its stack with source, where it was created, and the awaiter chain both ways.

The chain is a table, so Enter on any task in it opens that task: walking from a stuck request
handler to the task it waits on, and on to the one that one waits on, is a few keystrokes.
"""
from __future__ import annotations

from typing import Any, Hashable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static

from tasktop.render import stacks
from tasktop.render import units
from tasktop.client.connection import Connection
from tasktop.render.ends import ending_text
from ..messages import DetailFailed, DetailLoaded
from ..panels.stack import listing_width, render_stack
from ..panels.table import OpenTable
from .detail import DetailScreen, ask


def relations(task: dict) -> list[tuple[str, dict]]:
    """(relation, brief task) for every task related to ``task``, in reading order."""
    out = []
    for depth, other in enumerate(task.get("awaiting_chain") or ()):
        out.append(("waits on" if depth == 0 else "  " * depth + "└ which waits on", other))
    for other in task.get("awaiting_all_tasks") or ():
        out.append(("waits for all of", other))
    for other in task.get("awaited_by_tasks") or ():
        out.append(("awaited by", other))
    if task.get("created_in_task"):
        out.append(("created in", task["created_in_task"]))
    return out


def task_label(brief: dict) -> str:
    name = brief.get("name")
    return f"#{brief.get('id')} {name}" if name else f"#{brief.get('id')}"


class TaskScreen(DetailScreen):
    def __init__(self, session, task_id: int) -> None:
        super().__init__(session)
        self.task_id = int(task_id)
        self.related: list[tuple[str, dict]] = []
        self.ending = ""  # how the task ended, once it is gone

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        with VerticalScroll(id="task-info", classes="info"):
            yield Static("loading…", id="task-body")
        yield Static(id="related-caption", classes="caption")
        yield OpenTable(id="related")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#related", DataTable)
        for key, label in (("relation", "RELATION"), ("task", "TASK"), ("state", "STATE"), ("where", "WHERE")):
            table.add_column(label, key=key)
        table.focus()

    def request_key(self) -> Hashable:
        return ("task", self.task_id)

    def fetch(self, connection: Connection) -> Any:
        return connection.task(self.task_id)

    def on_detail_failed(self, message: DetailFailed) -> None:
        """The task is gone: ask the probe how it ended (its history of recent endings)."""
        super().on_detail_failed(message)
        if message.gone and message.request == self.request_key():
            self._ask_ending(self.session.connection)

    @work(thread=True, group="ending", exit_on_error=False)
    def _ask_ending(self, connection: Connection) -> None:
        self.post_message(ask(lambda: connection.ends(task_id=self.task_id), ("ended", self.task_id)))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.request == ("ended", self.task_id):
            ended = (message.data or {}).get("ended") if isinstance(message.data, dict) else None
            self.ending = ending_text(ended) if ended else (
                "it is no longer in the probe's history of recent endings (or it was lost: see the verdicts)")
            self.update_status()
            return
        super().on_detail_loaded(message)

    def status_text(self) -> Text:
        text = Text()
        task = self.data or {}
        text.append(f"Task #{self.task_id}", style="bold")
        if task:
            if task.get("name"):
                text.append(f" {task['name']}", style="bold")
            text.append(f" · {task.get('state', '')} · blocked {units.duration(task.get('blocked_s'))}")
            text.append(f" · loop {task.get('loop')} · group {task.get('group')}", style="dim")
        if self.gone and self.ending:
            text.append(f"\nHow it ended: {self.ending}", style="bold")
        return text

    def show(self, task: Any) -> None:
        body = Text()
        width = listing_width(self.query_one("#task-body", Static))
        body.append("Stack (innermost first)\n", style="bold underline")
        body.append_text(render_stack(task.get("stack"), width=width))
        body.append("\n\n")
        body.append("Created by", style="bold underline")
        parent = task.get("created_in_task")
        if parent:
            body.append(f"  (in task {task_label(parent)})", style="dim")
        body.append("\n")
        if task.get("created_by"):
            body.append_text(render_stack(task.get("created_by"), context=0, width=width))
        else:
            body.append("  (not recorded: created before the probe started, or TASKTOP_CREATION_STACKS=0)",
                        style="dim")
        self.query_one("#task-body", Static).update(body)
        self._show_related(task)

    def _show_related(self, task: dict) -> None:
        self.related = relations(task)
        table = self.query_one("#related", DataTable)
        index = table.cursor_row
        table.clear()
        for number, (relation, other) in enumerate(self.related):
            frame = other.get("frame")
            table.add_row(
                Text(relation),
                Text(task_label(other), style="bold"),
                Text(str(other.get("state") or "")),
                Text(stacks.frame_label(frame) if frame else "-"),
                key=str(number),
            )
        if self.related:
            table.move_cursor(row=min(max(index, 0), len(self.related) - 1), animate=False)
        caption = self.query_one("#related-caption", Static)
        if self.related:
            caption.update(Text.assemble(("Related tasks", "bold"), ("  Enter opens one", "dim")))
        else:
            caption.update(Text.assemble(("Related tasks: ", "bold"),
                                         ("none (awaits no task, no task awaits it)", "dim")))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        number = int(str(event.row_key.value))
        if number >= len(self.related):
            return
        relation, other = self.related[number]
        if other.get("state") == "finished":
            self.notify(f"Task #{other.get('id')} has finished", timeout=3)
            return
        self.app.push_screen(TaskScreen(self.session, int(other["id"])))
