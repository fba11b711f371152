"""The process picker: the live probes of this user, refreshed every two seconds.

Scanning connects to every socket, so it runs on a worker thread and its result arrives as a
message; it is paused while an attachment is on top.
"""
from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tasktop.wire import paths

from tasktop.render import units
from tasktop.client.discovery import scan
from ..messages import ProbesListed
from ..panels.table import OpenTable

from .main import ENABLE_HINT

RESCAN = 2.0


class PickerScreen(Screen):
    BINDINGS = [
        Binding("r", "rescan", "Rescan"),
    ]

    def __init__(self, directory: str | None = None, scanner: Callable[[str | None], list] = lambda d: scan([d])) -> None:
        super().__init__()
        self.directory = directory
        self.scanner = scanner
        self.rows: list = []
        self._timer = None
        self._scanned = False

    def compose(self) -> ComposeResult:
        yield Static(id="picker-title", classes="status")
        yield OpenTable(id="probes")
        yield Static(id="picker-empty")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#probes", DataTable)
        for key, label in (("pid", "PID"), ("command", "COMMAND"), ("tasks", "TASKS"), ("threads", "THREADS"),
                           ("rss", "RSS"), ("uptime", "UPTIME"), ("python", "PYTHON"),
                           ("status", "STATUS")):
            table.add_column(label, key=key)
        self._show()
        table.focus()
        self.action_rescan()
        self._timer = self.set_interval(RESCAN, self.action_rescan)

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self) -> None:
        if self._timer is not None:
            self._timer.resume()
            self.action_rescan()

    def action_rescan(self) -> None:
        self._scan_in_worker(self.directory, self.scanner)

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def _scan_in_worker(self, directory: str | None, scanner: Callable[[str | None], list]) -> None:
        self.post_message(ProbesListed(scanner(directory), paths.socket_dir(directory)))

    def on_probes_listed(self, message: ProbesListed) -> None:
        self.rows = message.rows
        self._scanned = True
        self._show()

    def _show(self) -> None:
        directory = paths.socket_dir(self.directory)
        title = Text.assemble(("tasktop", "bold"), ("  processes with the probe on, in ", "dim"), (directory, ""),
                              (f"  (every {RESCAN:g}s)", "dim"))
        self.query_one("#picker-title", Static).update(title)
        table = self.query_one("#probes", DataTable)
        selected = None
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            selected = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        table.clear()
        keys = []
        for info in self.rows:
            key = info.path
            keys.append(key)
            if info.error:
                cells = (Text(str(info.pid), justify="right"), Text(info.command), "", "", "", "", "",
                         Text("not answering", style="bold red"))
            else:
                cells = (Text(str(info.pid), justify="right", style="bold"), Text(info.command),
                         Text(units.count(info.tasks), justify="right"),
                         Text(units.count(info.threads), justify="right"),
                         Text(units.size(info.rss), justify="right"),
                         Text(units.duration(info.uptime), justify="right"), Text(info.python),
                         Text("live", style="green"))
            table.add_row(*cells, key=key)
        if keys and selected in keys:
            table.move_cursor(row=keys.index(selected), animate=False)
        empty = self.query_one("#picker-empty", Static)
        if not self.rows:
            empty.update(Text.assemble(
                ("No process with the probe on was found." if self._scanned else "Looking for probes…", "bold"),
                "\n\n", ENABLE_HINT, "\n", ("Then pick it here, or run: tasktop PID", "dim")))
            empty.display = True
        else:
            empty.display = False

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        path = str(event.row_key.value)
        for info in self.rows:
            if info.path == path:
                if info.error:
                    self.notify(f"Process {info.pid} does not answer: {info.error}", severity="warning")
                    return
                self.app.attach(path, from_picker=True)
                return
