"""One thread: its stack with source, what the kernel says it is doing, and its CPU time."""
from __future__ import annotations

from typing import Any, Hashable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from tasktop.render import units
from tasktop.client.connection import Connection
from ..panels.stack import listing_width, render_stack
from .detail import DetailScreen

KERNEL_STATES = {
    "R": "running", "S": "sleeping", "D": "uninterruptible wait (disk)", "Z": "zombie",
    "T": "stopped", "t": "stopped by tracer", "X": "dead", "I": "idle",
}


class ThreadScreen(DetailScreen):
    def __init__(self, session, ident: int) -> None:
        super().__init__(session)
        self.ident = int(ident)

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        with VerticalScroll(id="thread-info", classes="info full"):
            yield Static("loading…", id="thread-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#thread-info").focus()

    def request_key(self) -> Hashable:
        return ("thread", self.ident)

    def fetch(self, connection: Connection) -> Any:
        return connection.thread(self.ident)

    def status_text(self) -> Text:
        thread = self.data or {}
        text = Text()
        text.append(f"Thread {thread.get('name') or self.ident}", style="bold")
        if thread:
            text.append(f" · {thread.get('state', '')} · blocked {units.duration(thread.get('blocked_s'))}")
        return text

    def show(self, thread: Any) -> None:
        kernel = thread.get("kernel") or {}
        letter = kernel.get("state")
        body = Text()
        rows = [
            ("name", str(thread.get("name") or "")),
            ("ident", f"{thread.get('ident')}   native id (TID) {thread.get('native_id') or '-'}"),
            ("daemon", "yes" if thread.get("daemon") else "no"),
            ("state", str(thread.get("state") or "")),
            ("kernel", f"{letter or '-'} ({KERNEL_STATES.get(letter, 'unknown')})"
                       + (f", in system call {kernel['syscall']}" if kernel.get("syscall") else "")),
            ("CPU time", f"{float(thread.get('cpu_s') or 0.0):.2f}s"),
            ("blocked", units.duration(thread.get("blocked_s"))),
        ]
        for label, value in rows:
            body.append(f"  {label:<9}", style="dim")
            body.append(f"{value}\n")
        body.append("\n")
        body.append("Stack (innermost first)\n", style="bold underline")
        target = self.query_one("#thread-body", Static)
        body.append_text(render_stack(thread.get("stack"), width=listing_width(target)))
        target.update(body)
