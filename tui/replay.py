"""``tasktop replay FILE``: the live view on a recording, with a time bar and time controls.

The app is the live one: the session's source is a ``RecordedConnection`` (a summary source
whose every request is answered from the recording at its cursor), and the main screen is a
``ReplayScreen`` that moves the cursor instead of the app running a watcher; each move bumps
the app's ``revision``, so every screen of the attachment redraws as it does live.  Moving one sample forward feeds the model that
one summary, as live; any other move rebuilds the model from the ``WARM_S`` seconds before the
new moment, so growth per minute and the leak heuristic read the same as they did live.
"""
from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input

from tasktop.client.recorded import RecordedConnection, moment
from tasktop.render import units
from tasktop.wire.recording import Recording

from .model import Model
from .panels.text_line import TextLine
from .screens.attached import session_bindings
from .screens.main import MainScreen
from .session import Session

#: Seconds of history fed to a fresh model after a jump (the leak heuristic looks back 120 s).
WARM_S = 120.0
#: A step back of at most this many samples rewinds the model instead of rebuilding it.
REWIND_MAX = 10
WARM_MAX = 300  # samples, at most
SPEEDS = (1, 10, 100)
TICK = 0.1  # seconds between two moves while playing


class TimeBar(TextLine):
    """Where the moment shown is in the recording: a bar from its start to its end."""

    def show(self, position: "ReplayScreen") -> None:
        rec = position.recording
        width = max(10, (self.size.width or 80) - 34)
        span = max(rec.end - rec.start, 1e-9)
        at = int(round((position.time - rec.start) / span * (width - 1)))
        bar = Text()
        bar.append(time.strftime("%H:%M:%S", time.localtime(rec.start)), style="dim")
        bar.append(" ")
        bar.append("━" * at, style="blue")
        bar.append("●", style="bold yellow")
        bar.append("─" * (width - 1 - at), style="dim")
        bar.append(" ")
        bar.append(time.strftime("%H:%M:%S", time.localtime(rec.end)), style="dim")
        state = f"  ▶ {position.speed}x" if position.playing else "  ❚❚"
        bar.append(state, style="bold green" if position.playing else "dim")
        self.show_text(bar)


class ReplayScreen(MainScreen):
    """The main view of a replay; its keys move in time."""

    BINDINGS = [
        Binding("question_mark", "app.help", "Help"),
        Binding("comma", "step(-1)", "◀ Step"),
        Binding("full_stop", "step(1)", "Step ▶"),
        Binding("space,p", "play", "Play"),
        Binding("j", "jump", "Jump"),
        Binding("g", "go_start", "Start", show=False),
        Binding("G", "go_end", "End", show=False),
        Binding("1", "speed(1)", "1x", show=False),
        Binding("2", "speed(10)", "10x", show=False),
        Binding("3", "speed(100)", "100x", show=False),
        Binding("slash", "filter", "Filter", show=False),
        Binding("s", "sort", "Sort", show=False),
        Binding("t", "kind", "Kind", show=False),
        *session_bindings("quit", skip=("help", "pause", "slower", "faster", "record")),
        Binding("escape", "back", "Back", show=False),
    ]
    inherit_bindings = False

    def __init__(self, session: Session, recording: Recording, at: float | None = None) -> None:
        super().__init__(session)
        self.recording = recording
        self.index = -1
        self.start_index = recording.index_at(recording.end if at is None else at)
        self.playing = False
        self.speed = SPEEDS[0]
        self._play_time = 0.0  # the recording's time the player is at (between samples)
        self._timer = None
        session.replay = self
        session.state = "live"

    @property
    def time(self) -> float:
        return self.recording.times[max(0, self.index)]

    def moment_text(self) -> str:
        t = self.time
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
        return f"{stamp}  sample {self.index + 1}/{len(self.recording)}  " \
               f"({units.duration(self.recording.end - t)} before the end)"

    def compose(self) -> ComposeResult:
        parts = list(super().compose())
        parts.insert(1, TimeBar(id="timebar"))
        parts.insert(-1, Input(placeholder="jump to: HH:MM:SS, -5m (before the end), +30s (after the start), "
                                           "start, end (Enter jumps, Esc closes)", id="jump"))
        yield from parts

    def on_mount(self) -> None:  # before MainScreen's and AttachedScreen's (Textual calls each)
        self.query_one("#jump").display = False
        self.show_index(self.start_index)

    # Moving ------------------------------------------------------------------------------
    def show_index(self, index: int) -> None:
        """Show sample ``index``: one step forward feeds the model, any other move rebuilds it."""
        rec = self.recording
        index = max(0, min(len(rec) - 1, index))
        session = self.session
        if index == self.index + 1 and session.model.summary is not None:
            session.model.update(rec.summary(index))
        elif self.index - REWIND_MAX <= index < self.index and session.model.summary is not None:
            session.model.rewind(rec.summary(index))
        elif index != self.index or session.model.summary is None:
            model = Model()
            first = max(rec.index_at(rec.times[index] - WARM_S), index - WARM_MAX, 0)
            for i in range(first, index):
                model.update(rec.counts(i))
            model.update(rec.summary(index))
            session.model = model
        self.index = index
        self._play_time = rec.times[index]
        session.connection.index = index
        self.app.revision += 1  # every screen of the attachment redraws (this one included)

    def refresh_view(self) -> None:
        super().refresh_view()
        if self.index >= 0:
            self.query_one(TimeBar).show(self)

    def action_step(self, direction: int) -> None:
        self._stop_playing()
        self.show_index(self.index + direction)

    def action_go_start(self) -> None:
        self._stop_playing()
        self.show_index(0)

    def action_go_end(self) -> None:
        self._stop_playing()
        self.show_index(len(self.recording) - 1)

    def action_speed(self, speed: int) -> None:
        self.speed = speed
        if not self.playing:
            self.action_play()
        self.refresh_view()

    def action_play(self) -> None:
        if self.playing:
            self._stop_playing()
        else:
            if self.index >= len(self.recording) - 1:
                self.show_index(0)  # at the end: play from the start
            self.playing = True
            self._play_time = self.time
            self._last_tick = time.monotonic()
            self._timer = self.set_interval(TICK, self._tick)
        self.refresh_view()

    def _stop_playing(self) -> None:
        self.playing = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _tick(self) -> None:
        now = time.monotonic()
        self._play_time += (now - self._last_tick) * self.speed
        self._last_tick = now
        rec = self.recording
        target = rec.index_at(self._play_time)
        if target > self.index:
            for i in range(self.index + 1, target):  # every sample on the way, for the history
                self.session.model.update(rec.counts(i))
                self.index = i
            play_time = self._play_time
            self.show_index(target)
            self._play_time = play_time
        if target >= len(rec) - 1:
            self._stop_playing()
            self.refresh_view()

    def action_jump(self) -> None:
        self._stop_playing()
        box = self.query_one("#jump", Input)
        box.display = True
        box.value = ""
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "jump":
            super().on_input_submitted(event)
            return
        try:
            t = moment(event.value, self.recording.start, self.recording.end)
        except ValueError as exc:
            self.notify(str(exc), severity="error", timeout=4)
            return
        event.input.display = False
        self.show_index(self.recording.index_at(t))
        self.query_one("#groups").focus()

    def action_back(self) -> None:
        box = self.query_one("#jump", Input)
        if box.display:
            box.display = False
            self.query_one("#groups").focus()
            return
        super().action_back()



def run_replay(recording: Recording, at: float | None = None) -> int:
    """Run the app on ``recording``, showing the moment ``at`` (default: its end)."""
    from .app import TasktopApp

    app = TasktopApp(replay=(recording, at))
    app.run()
    return 0 if app.return_code in (None, 0) else int(app.return_code)
