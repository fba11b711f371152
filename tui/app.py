"""The tasktop Textual app: the picker, or an attachment to one probe, its live loop, and the
keys that work everywhere.

The app owns the live loop, in one place: attaching starts the watcher (a thread polling a
summary source), leaving or quitting stops it, and pause and interval go through the app.  Data
flows one way: the watcher posts typed messages to the app; the app puts each summary in the
session's model and bumps ``revision``; the screens of the attachment watch ``revision`` (and
``status``) and draw from the model, so none of them reaches into another.  Which screen a key
opens is the app's too (``VIEWS``).  ``connection_factory`` and ``watcher_factory`` are the app's
only boundaries with the outside world, which is what the snapshot tests replace with recorded
data.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive

from tasktop.client.probe_client import ProbeError, ProbeUnavailable
from tasktop.client.connection import Connection
from tasktop.render import export
from tasktop.wire.shapes import Summary
from .messages import ConnectionChanged, SnapshotReceived
from .screens.attached import AttachedScreen
from .screens.help import HelpScreen
from .screens.main import MainScreen
from .screens.memory import MemoryScreen
from .screens.picker import PickerScreen
from .screens.stalls import StallsScreen
from .screens.verdicts import VerdictsScreen
from .screens.waits import WaitsScreen
from .session import Session
from .source import SummarySource
from .watcher import Watcher

CSS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasktop.tcss")

#: The views of an attachment that a key opens from any of its screens (``app.open('name')``,
#: see ``screens.attached.session_bindings``).
VIEWS: dict[str, type[AttachedScreen]] = {
    "stalls": StallsScreen,
    "memory": MemoryScreen,
    "verdicts": VerdictsScreen,
    "waits": WaitsScreen,
}


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

    #: Bumped whenever the attached session's model changes (a summary went in, a baseline was
    #: set or cleared); the attachment's screens watch it and redraw from the model.  Neither
    #: repaints the screen itself: the widgets that change redraw (a whole-screen repaint
    #: drew every widget again at every summary).
    revision: reactive[int] = reactive(0, always_update=True, init=False, repaint=False)
    #: What the attachment's status lines say (state, reason, paused, interval); watched likewise.
    status: reactive[tuple] = reactive((), always_update=True, init=False, repaint=False)

    def __init__(self, socket_path: "str | SummarySource | None" = None, interval: float = 1.0, *,
                 socket_dir: str | None = None,
                 connection_factory: Callable[[str], Connection] = Connection,
                 watcher_factory: Callable[..., Watcher] = Watcher,
                 scanner: Callable[[str | None], list] | None = None,
                 finder: Callable[[], list] | None = None,
                 export_dir: str | None = None, replay: tuple | None = None) -> None:
        super().__init__()
        self.replay = replay  # (Recording, moment or None): ``tasktop replay``
        self.socket_path = socket_path
        self.interval = interval
        self.socket_dir = socket_dir
        self.connection_factory = connection_factory
        self.watcher_factory = watcher_factory
        self.scanner = scanner
        self.finder = finder  # the picker's list of Python processes without a probe
        self.export_dir = export_dir
        self.exports: list[tuple[str, str]] = []  # what ``e`` wrote, for the user and the tests
        self.session: Session | None = None  # the attachment (one at a time)
        self.watcher: Watcher | None = None  # its live loop

    def on_mount(self) -> None:
        if self.replay is not None:
            from tasktop.client.recorded import RecordedConnection
            from .replay import ReplayScreen

            recording, at = self.replay
            self.title = f"tasktop replay {recording.path}"
            # No watcher: the replay screen moves the recording's cursor (see tui/replay.py).
            self.session = Session(RecordedConnection(recording), self.interval)
            self.push_screen(ReplayScreen(self.session, recording, at))
        elif self.socket_path:
            self.attach(self.socket_path)
        else:
            extra = {k: v for k, v in (("scanner", self.scanner), ("finder", self.finder)) if v is not None}
            self.push_screen(PickerScreen(self.socket_dir, **extra))

    def on_unmount(self) -> None:
        self._stop_live()

    # The live loop ---------------------------------------------------------------------------
    def attach(self, path: "str | SummarySource", from_picker: bool = False) -> None:
        """Open the main view on the probe at ``path`` (or on another summary source, e.g. a
        process read without a probe, at its own slower interval) and start its live loop."""
        self._stop_live()
        if isinstance(path, str):
            session = Session(self.connection_factory(path), self.interval)
        else:
            session = Session(path, max(self.interval, getattr(path, "INTERVAL", self.interval)))
        self.session = session
        self.push_screen(MainScreen(session, from_picker=from_picker))
        self.watcher = self.watcher_factory(session.connection, self, session.interval)
        self.watcher.start()

    def detach(self) -> None:
        """Leave the attachment for the picker: stop its live loop, close its main view."""
        self._stop_live()
        self.pop_screen()

    def _stop_live(self) -> None:
        self._stop_recording()  # leaving or quitting ends a recording with its file whole
        if self.watcher is not None:
            self.watcher.stop()  # its thread closes the connection
        self.watcher = None
        self.session = None  # a message the loop had already sent is ignored

    def on_snapshot_received(self, message: SnapshotReceived) -> None:
        session = self.session
        if session is None or session.paused:
            return  # a reply that was already on its way when the user paused or left
        session.model.update(message.summary)
        session.cost = message.cost
        if session.recorder is not None:
            self.record_snapshot(session, message.summary)
        self.revision += 1

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        session = self.session
        if session is None:
            return
        before = session.state
        session.state = message.state
        session.reason = message.reason
        if message.state == "exited" and before != "exited" and session.model.summary is not None:
            self.notify(f"Process {session.pid or ''} exited: keeping its last data on screen",
                        severity="warning", timeout=5)
        elif message.state == "live" and before in ("exited", "unreachable"):
            self.notify("Reconnected to the probe", timeout=3)
        self._show_status()

    def _show_status(self) -> None:
        session = self.session
        if session is not None:
            self.status = (session.state, session.reason, session.paused, session.interval)

    # Keys that act on the attachment, from any of its screens --------------------------------
    def action_pause(self) -> None:
        session = self.session
        if session is None or self.watcher is None:
            return
        session.paused = not session.paused
        self.watcher.pause(session.paused)
        self.notify("Paused: the data on screen stays as it is" if session.paused else "Resumed",
                    timeout=2)
        self._show_status()

    def action_interval(self, direction: int) -> None:
        session = self.session
        if session is None or self.watcher is None:
            return
        interval = session.step_interval(direction)
        self.watcher.set_interval(interval)
        self.notify(f"Refreshing every {interval:g}s", timeout=2)
        self._show_status()

    def action_baseline(self) -> None:
        if self.session is None:
            return
        if self.session.model.set_baseline() is None:
            self.notify("No data yet to take a baseline from", severity="warning", timeout=3)
            return
        self.notify("Baseline set: changes and history are now relative to this moment (B clears it)",
                    timeout=4)
        self.revision += 1

    def action_clear_baseline(self) -> None:
        if self.session is None or self.session.model.baseline is None:
            return
        self.session.model.clear_baseline()
        self.notify("Baseline cleared: changes are per minute again", timeout=3)
        self.revision += 1

    def action_open(self, view: str) -> None:
        """Open one of ``VIEWS`` on the attachment, unless it is the one on screen."""
        screen = VIEWS[view]
        if self.session is not None and not isinstance(self.screen, screen):
            self.push_screen(screen(self.session))

    def action_record(self) -> None:
        """``R``: start or stop recording the session to a file (``tasktop replay FILE``)."""
        session = self.session
        if session is None:
            return
        if session.replay is not None:
            self.notify("This is a recording already", timeout=2)
            return
        if session.recorder is not None:
            recorder, session.recorder = session.recorder, None
            recorder.close("stopped")
            self.notify(f"Recorded {recorder.samples} samples to {recorder.path}", title="Recording", timeout=8)
        else:
            try:
                session.recorder = self.start_recording(session)
            except Exception as exc:  # RecordingError, or an unwritable export directory
                self.notify(f"Cannot record: {exc}", severity="error", timeout=8)
                return
            self.notify(f"Recording to {session.recorder.path} (R stops)", title="Recording", timeout=5)
            if session.model.summary is not None:
                session.recorder.add(session.model.summary)
        self._show_status()

    def _stop_recording(self) -> None:
        if self.session is not None and self.session.recorder is not None:
            recorder, self.session.recorder = self.session.recorder, None
            recorder.close("stopped")

    def action_export(self) -> None:
        if self.session is not None:
            self.export(self.session)

    # Keys that work everywhere ---------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def export(self, session: Session) -> None:
        """Fetch ``full()`` on a worker thread and write the dump files (``e``)."""
        directory = self.export_dir or export.export_dir()
        self.notify("Exporting…", timeout=2)
        self._write_export(session.connection, session.model.summary, directory)

    @work(thread=True, group="export", exit_on_error=False)
    def _write_export(self, connection: Connection, last: Summary | None, directory: str) -> None:
        """Write the export from ``full()`` (its rows unpacked as they are written), or from
        ``last`` when the probe does not answer."""
        note = ""
        try:
            data = connection.full_rows_packed()
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


def run(socket_path: "str | SummarySource | None" = None, interval: float = 1.0) -> int:
    """Run the TUI: attached to the probe at ``socket_path`` (or to a summary source), or the
    picker when it is None."""
    app = TasktopApp(socket_path, interval)
    app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return 0


if __name__ == "__main__":  # pragma: no cover - convenience for development
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else None))
