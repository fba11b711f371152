"""The tasktop Textual app: the picker, or an attachment to one probe, and the keys that work
everywhere.

Data flows one way: the watcher (a thread) polls the probe and posts messages; the main screen
puts them in the model; widgets draw from the model.  ``connection_factory`` and
``watcher_factory`` are the app's only boundaries with the outside world, which is what the
snapshot tests replace with recorded data.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from textual import work
from textual.app import App
from textual.binding import Binding

from tasktop.client.probe_client import ProbeError, ProbeUnavailable
from tasktop.client.connection import Connection
from tasktop.render import export
from tasktop.wire.shapes import Summary
from .session import Session
from .watcher import Watcher

CSS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasktop.tcss")


class TasktopApp(App):
    CSS_PATH = CSS_FILE
    TITLE = "tasktop"
    ENABLE_COMMAND_PALETTE = False
    # A tall terminal gets taller sparklines (see tasktop.tcss: ``Screen.-tall``).
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, socket_path: str | None = None, interval: float = 1.0, *,
                 socket_dir: str | None = None,
                 connection_factory: Callable[[str], Connection] = Connection,
                 watcher_factory: Callable[..., Watcher] = Watcher,
                 scanner: Callable[[str | None], list] | None = None,
                 export_dir: str | None = None, replay: tuple | None = None) -> None:
        super().__init__()
        self.replay = replay  # (Recording, moment or None): ``tasktop replay``
        self.socket_path = socket_path
        self.interval = interval
        self.socket_dir = socket_dir
        self.connection_factory = connection_factory
        self.watcher_factory = watcher_factory
        self.scanner = scanner
        self.export_dir = export_dir
        self.exports: list[tuple[str, str]] = []  # what ``e`` wrote, for the user and the tests

    def on_mount(self) -> None:
        if self.replay is not None:
            from tasktop.client.recorded import RecordedConnection
            from .replay import ReplayScreen

            recording, at = self.replay
            self.title = f"tasktop replay {recording.path}"
            session = Session(RecordedConnection(recording), self.interval)
            self.push_screen(ReplayScreen(session, recording, at))
        elif self.socket_path:
            self.attach(self.socket_path)
        else:
            from .screens.picker import PickerScreen

            if self.scanner is not None:
                self.push_screen(PickerScreen(self.socket_dir, self.scanner))
            else:
                self.push_screen(PickerScreen(self.socket_dir))

    def attach(self, path: str, from_picker: bool = False) -> None:
        """Open the main view on the probe at ``path``."""
        from .screens.main import MainScreen

        session = Session(self.connection_factory(path), self.interval)
        self.push_screen(MainScreen(session, self.watcher_factory, from_picker=from_picker))

    # Keys that work everywhere ---------------------------------------------------------------
    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def export(self, session: Session) -> None:
        """Fetch ``full()`` on a worker thread and write the dump files (``e``)."""
        directory = self.export_dir or export.export_dir()
        self.notify("Exporting…", timeout=2)
        self._write_export(session.connection, session.model.summary, directory)

    @work(thread=True, group="export", exit_on_error=False)
    def _write_export(self, connection: Connection, last: Summary | None, directory: str) -> None:
        """Write the export from ``full()``, or from ``last`` when the probe does not answer."""
        note = ""
        try:
            data = connection.full()
        except (ProbeUnavailable, ProbeError) as exc:
            if last is None:
                self._tell(f"Nothing to export: {exc}", severity="error")
                return
            data, note = last, " (the last summary: the probe did not answer)"
        try:
            paths = export.write_export(data, directory)
        except Exception as exc:
            self._tell(f"Export failed: {exc.__class__.__name__}: {exc}", severity="error", timeout=8)
            return
        self.exports.append(paths)
        self._tell(f"Exported{note}:\n{paths[0]}\n{paths[1]}", title="Export", timeout=8)

    # Recording the session (``R``) -------------------------------------------------------
    def start_recording(self, session: Session):
        """A recorder writing ``tasktop-PID-TIME.ttrec`` in the export directory."""
        import time

        from tasktop.client.recorded import FileRecorder

        directory = self.export_dir or export.export_dir()
        os.makedirs(directory, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = os.path.join(directory, f"tasktop-{session.pid or 'x'}-{stamp}.ttrec")
        return FileRecorder(path, "tasktop (live view)")

    def record_snapshot(self, session: Session, summary: Summary) -> None:
        """Append a snapshot to the session's recording, and its due group pages (asked for
        on a worker thread: each is a request to the probe)."""
        recorder = session.recorder
        try:
            recorder.add(summary)
        except OSError as exc:
            session.recorder = None
            recorder.close("write failed")
            self.notify(f"Recording stopped: {exc}", severity="error", timeout=8)
            return
        if recorder.pages_waiting(summary):
            self._record_pages(recorder, session.connection, summary)

    @work(thread=True, group="record-pages", exit_on_error=False)
    def _record_pages(self, recorder, connection: Connection, summary: Summary) -> None:
        try:
            recorder.record_pages(connection, summary)
        except (ProbeUnavailable, ProbeError, OSError, ValueError):
            pass  # the group pages are a bonus of the recording: its samples are whole

    def _tell(self, message: str, **kwargs) -> None:
        """``notify`` from a worker thread."""
        try:
            self.call_from_thread(self.notify, message, **kwargs)
        except RuntimeError:  # the app closed while we were writing
            pass


def run(socket_path: str | None = None, interval: float = 1.0) -> int:
    """Run the TUI: attached to the probe at ``socket_path``, or the picker when it is None."""
    app = TasktopApp(socket_path, interval)
    app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return 0


if __name__ == "__main__":  # pragma: no cover - convenience for development
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else None))
