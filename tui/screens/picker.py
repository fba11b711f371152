"""The process picker: every Python process of the user, refreshed every two seconds: first
those with a live probe, then the others, each marked with what can be done without a probe:
``readable`` (CPython 3.14+, whose tasks can be read from outside) and ``attach`` (the probe
can be started in it), or why not.  Enter on one asks first (``ConfirmAttachScreen``): attach,
then the live view; or, where it is readable, the read-only live view, nothing run in it.

Scanning connects to every socket and reads /proc, so it runs on a worker thread and its result
arrives as a message; it is paused while an attachment is on top.  Attaching runs on a worker
thread too (it waits for the new probe to answer).
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
from tasktop.client import attach, processes
from tasktop.client.discovery import command_line, scan
from ..messages import ProbesListed
from ..panels.table import OpenTable
from .confirm_attach import ATTACH, VIEW, ConfirmAttachScreen

from .main import ENABLE_HINT

RESCAN = 2.0


def _command(proc: processes.PythonProcess) -> str:
    """``app.py --port 80`` as the probed rows show it (sys.argv): the interpreter left out."""
    return command_line({"argv": proc.argv[1:] or proc.argv, "executable": proc.exe})


class PickerScreen(Screen):
    BINDINGS = [
        Binding("r", "rescan", "Rescan"),
    ]

    def __init__(self, directory: str | None = None, scanner: Callable[[str | None], list] = lambda d: scan([d]),
                 finder: Callable[[], list] = processes.python_processes) -> None:
        super().__init__()
        self.directory = directory
        self.scanner = scanner
        self.finder = finder  # the Python processes to list besides the probed ones
        self.rows: list = []
        self.others: list = []  # (PythonProcess, why it cannot be attached to or "")
        self._timer = None
        self._scanned = False

    def compose(self) -> ComposeResult:
        yield Static(id="picker-title", classes="status")
        yield OpenTable(id="probes")
        yield Static(id="picker-empty")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#probes", DataTable)
        # STATUS second: what can be done with each process must show in 80 columns.
        for key, label in (("pid", "PID"), ("status", "STATUS"), ("command", "COMMAND"), ("tasks", "TASKS"),
                           ("threads", "THREADS"), ("rss", "RSS"), ("uptime", "UPTIME"), ("python", "PYTHON")):
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
        self._scan_in_worker(self.directory, self.scanner, self.finder)

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def _scan_in_worker(self, directory: str | None, scanner: Callable[[str | None], list],
                        finder: Callable[[], list]) -> None:
        rows = scanner(directory)
        probed = {info.pid for info in rows}
        others = [(proc, processes.refusal(proc, proc.pid)) for proc in finder()
                  if proc.pid not in probed and not proc.has_probe(directory)]
        self.post_message(ProbesListed(rows, paths.socket_dir(directory), others))

    def on_probes_listed(self, message: ProbesListed) -> None:
        self.rows = message.rows
        self.others = message.others
        self._scanned = True
        self._show()

    def _show(self) -> None:
        directory = paths.socket_dir(self.directory)
        title = Text.assemble(("tasktop", "bold"), ("  Python processes; probes in ", "dim"), (directory, ""),
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
            table.add_row(cells[0], cells[-1], *cells[1:-1], key=key)
        for proc, refusal in self.others:
            key = f"pid:{proc.pid}"
            keys.append(key)
            marks = Text("no probe", style="dim")
            if proc.readable:
                marks.append(" readable", style="cyan")
            marks.append(" no attach", style="dim") if refusal else marks.append(" attach↵", style="yellow")
            table.add_row(Text(str(proc.pid), justify="right"), marks, Text(_command(proc)), "", "", "", "",
                          Text(f"{proc.version_text}" if proc.implementation == "CPython"
                               else f"{proc.implementation} {proc.version_text}"), key=key)
        if keys and selected in keys:
            table.move_cursor(row=keys.index(selected), animate=False)
        empty = self.query_one("#picker-empty", Static)
        if not self.rows and not self.others:
            empty.update(Text.assemble(
                ("No process with the probe on was found." if self._scanned else "Looking for probes…", "bold"),
                "\n\n", ENABLE_HINT, "\n", ("Then pick it here, or run: tasktop PID", "dim")))
            empty.display = True
        else:
            empty.display = False

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        path = str(event.row_key.value)
        for proc, refusal in self.others:
            if f"pid:{proc.pid}" == path:
                self._offer_attach(proc, refusal)
                return
        for info in self.rows:
            if info.path == path:
                if info.error:
                    self.notify(f"Process {info.pid} does not answer: {info.error}", severity="warning")
                    return
                self.app.attach(path, from_picker=True)
                return

    # -- a process without a probe: attach, or the read-only view --------------------------------
    def _offer_attach(self, proc, refusal: str) -> None:
        """Ask what to do with ``proc``: attach (unless ``refusal`` says why not) and, on 3.14+
        where the kernel lets us read it, the read-only view; say why when neither is possible."""
        readable = proc.readable and not processes.ptrace_refusal(proc)
        if refusal and not readable:
            self.notify(f"Cannot attach: {refusal}", severity="warning", timeout=10)
            return
        how = None if refusal else ("by ptrace injection" if attach.way_for(proc) == "ptrace"
                                    else "by sys.remote_exec (PEP 768)")

        def answered(choice: str | None) -> None:
            if choice == ATTACH:
                self.notify(f"Attaching to process {proc.pid}…")
                self._attach_in_worker(proc.pid, self.directory)
            elif choice == VIEW:
                from tasktop.client.remote_tasks import RemoteSource

                self.app.attach(RemoteSource(proc.pid), from_picker=True)

        self.app.push_screen(ConfirmAttachScreen(proc.pid, _command(proc), how, readable=readable,
                                                 why_not_attach=refusal), answered)

    @work(thread=True, exclusive=True, group="attach", exit_on_error=False)
    def _attach_in_worker(self, pid: int, directory: str | None) -> None:
        try:
            done = attach.attach(pid, directory=directory)
        except attach.AttachError as exc:
            self.app.call_from_thread(self.notify, f"Cannot attach: {exc}", severity="error", timeout=10)
            return
        self.app.call_from_thread(self._attached, done.socket)

    def _attached(self, socket: str) -> None:
        if self.app.screen is self:  # the user has not gone elsewhere meanwhile
            self.app.attach(socket, from_picker=True)
