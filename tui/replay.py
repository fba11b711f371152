"""``tasktop replay FILE``: the live view on a recording, with a time bar and time controls.

The app is the live one: the session's source is a ``RecordedConnection`` (a summary source
whose every request is answered from the recording at its cursor), and the main screen is a
``ReplayScreen`` that moves the cursor instead of the app running a watcher; each move bumps
the app's ``revision``, so every screen of the attachment redraws as it does live.  Moving one sample forward feeds the model that
one summary, as live; any other move rebuilds the model from the ``WARM_S`` seconds before the
new moment, so growth per minute and the leak heuristic read the same as they did live (the
models built for the last few moments are kept, and going back to one of those copies it).

The jump key asks for a TIME on the time bar's own line, while the groups table keeps the
focus: an ``Input`` box below the table took the focus and gave it back, and each time
Textual restyled the screen, laid it out again (the table one line shorter, then taller) and
drew every cell of the table anew, ~40 ms of a jump's key.
"""
from __future__ import annotations

import time

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding

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
#: Models built for a moment (a jump, the start, the end) kept, as they were built, to go back
#: there: a copy costs a fraction of a millisecond, building one from the samples ~15 ms.
KEPT_MODELS = 4
SPEEDS = (1, 10, 100)
TICK = 0.1  # seconds between two moves while playing
JUMP_HINT = "Enter jumps, Esc closes · HH:MM:SS, -5m (before the end), +30s (after the start), start, end"


class TimeBar(TextLine):
    """Where the moment shown is in the recording: a bar from its start to its end."""

    def show(self, position: "ReplayScreen") -> None:
        if position.jump_text is not None:
            self.show_text(self.prompt(position.jump_text))
            return
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

    def prompt(self, typed: str) -> Text:
        """The jump's prompt: what was typed, a cursor, and the TIME forms, on one line."""
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("jump to: ", style="bold")
        line.append(typed, style="bold yellow")
        line.append("▏", style="bold")
        line.append(f"  {JUMP_HINT}", style="dim")
        line.truncate(max(10, self.size.width or 80), overflow="ellipsis")
        return line


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
        self._built: dict[int, Model] = {}  # sample index -> the model built for it (see KEPT_MODELS)
        #: What was typed after the jump key (None: not asking for a TIME).
        self.jump_text: str | None = None
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
        yield from parts

    def on_mount(self) -> None:  # before MainScreen's and AttachedScreen's (Textual calls each)
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
            built = self._built.pop(index, None)
            if built is None:
                built = Model()
                first = max(rec.index_at(rec.times[index] - WARM_S), index - WARM_MAX, 0)
                for sample in rec.history(first, index):  # what the history reads of each, in one pass
                    built.update(sample)
                built.update(rec.summary(index))
            self._built[index] = built  # the newest last
            if len(self._built) > KEPT_MODELS:
                del self._built[next(iter(self._built))]
            session.model = built.copy()
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
            for sample in rec.history(self.index + 1, target):  # every sample on the way, for the history
                self.session.model.update(sample)
            self.index = target - 1
            play_time = self._play_time
            self.show_index(target)
            self._play_time = play_time
        if target >= len(rec) - 1:
            self._stop_playing()
            self.refresh_view()

    def action_jump(self) -> None:
        self._stop_playing()
        self.jump_text = ""
        self.query_one(TimeBar).show(self)

    def on_key(self, event: events.Key) -> None:
        """While a TIME is asked for, every key edits it (no other key acts): Enter jumps
        there, Escape closes the prompt, Backspace takes a character back."""
        if self.jump_text is None:
            return
        event.stop()
        event.prevent_default()
        if event.key == "enter":
            self._submit_jump(self.jump_text)
            return
        if event.key == "escape":
            self.jump_text = None
        elif event.key == "backspace":
            self.jump_text = self.jump_text[:-1]
        elif event.is_printable and event.character:
            self.jump_text += event.character
        self.query_one(TimeBar).show(self)

    def on_paste(self, event: events.Paste) -> None:
        """Text pasted while a TIME is asked for goes into it (its first line)."""
        if self.jump_text is None:
            return
        event.stop()
        self.jump_text += (event.text.splitlines() or [""])[0]
        self.query_one(TimeBar).show(self)

    def _submit_jump(self, text: str) -> None:
        try:
            t = moment(text, self.recording.start, self.recording.end)
        except ValueError as exc:
            self.notify(str(exc), severity="error", timeout=4)
            return  # the prompt stays, with what was typed
        self.jump_text = None
        self.show_index(self.recording.index_at(t))  # the time bar shows the moment again


def run_replay(recording: Recording, at: float | None = None) -> int:
    """Run the app on ``recording``, showing the moment ``at`` (default: its end)."""
    from .app import TasktopApp

    app = TasktopApp(replay=(recording, at))
    app.run()
    return 0 if app.return_code in (None, 0) else int(app.return_code)
