"""What every screen of an attachment shares: its session and the keys that work anywhere.

Pause, interval, baseline, export, stalls, memory and leak verdicts act on the attachment, not on one view,
so they answer on every screen opened from it; the main screen shows them in its footer, the
detail screens keep their footers for their own keys.
"""
from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen

from ..session import Session


def session_bindings(*shown: str, skip: tuple = ()) -> list[Binding]:
    """The keys that act on the attachment, for a screen's ``BINDINGS``; the actions named
    in ``shown`` appear in that screen's footer, in that order, before the hidden rest; those in
    ``skip`` are left out (the screen declares them itself).

    The footer lists bindings in the order a screen declares them, so each screen builds its
    own list rather than inheriting one (inherited keys would always come first).
    """
    every = {
        "help": Binding("question_mark", "app.help", "Help"),
        "quit": Binding("q", "app.quit", "Quit"),
        "pause": Binding("p", "pause", "Pause"),
        "slower": Binding("plus,equals_sign", "interval(1)", "Slower"),
        "faster": Binding("minus", "interval(-1)", "Faster"),
        "baseline": Binding("b", "baseline", "Base"),
        "clear_baseline": Binding("B", "clear_baseline", "Clear baseline"),
        "export": Binding("e", "export", "Export"),
        "stalls": Binding("l", "stalls", "Stalls"),
        "memory": Binding("m", "memory", "Memory"),
        "verdicts": Binding("v", "verdicts", "Leaks"),
        "record": Binding("R", "record", "Rec"),
    }
    out = [every[name] for name in shown]
    for name, binding in every.items():
        if name not in shown and name not in skip:
            out.append(Binding(binding.key, binding.action, binding.description, show=False))
    return out


class AttachedScreen(Screen):
    """Base of every screen of an attachment; subclasses declare their keys with
    :func:`session_bindings`."""

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session = session

    # Hooks for subclasses -----------------------------------------------------------------
    def snapshot_arrived(self) -> None:
        """A new summary reached the model (called on the screen the user is looking at)."""

    def connection_changed(self) -> None:
        """The session's connection state changed."""

    # Actions ---------------------------------------------------------------------------------
    def action_pause(self) -> None:
        session = self.session
        session.paused = not session.paused
        if session.watcher is not None:
            session.watcher.pause(session.paused)
        self.notify("Paused: the data on screen stays as it is" if session.paused else "Resumed",
                    timeout=2)
        self.connection_changed()

    def action_interval(self, direction: int) -> None:
        interval = self.session.step_interval(direction)
        if self.session.watcher is not None:
            self.session.watcher.set_interval(interval)
        self.notify(f"Refreshing every {interval:g}s", timeout=2)
        self.connection_changed()

    def action_baseline(self) -> None:
        if self.session.model.set_baseline() is None:
            self.notify("No data yet to take a baseline from", severity="warning", timeout=3)
            return
        self.notify("Baseline set: changes and history are now relative to this moment (B clears it)",
                    timeout=4)
        self.snapshot_arrived()

    def action_clear_baseline(self) -> None:
        if self.session.model.baseline is None:
            return
        self.session.model.clear_baseline()
        self.notify("Baseline cleared: changes are per minute again", timeout=3)
        self.snapshot_arrived()

    def action_record(self) -> None:
        """``R``: start or stop recording this session to a file (``tasktop replay FILE``)."""
        session = self.session
        if session.replay is not None:
            self.notify("This is a recording already", timeout=2)
            return
        if session.recorder is not None:
            recorder, session.recorder = session.recorder, None
            recorder.close("stopped")
            self.notify(f"Recorded {recorder.samples} samples to {recorder.path}", title="Recording",
                        timeout=8)
        else:
            try:
                session.recorder = self.app.start_recording(session)
            except Exception as exc:  # RecordingError, or an unwritable export directory
                self.notify(f"Cannot record: {exc}", severity="error", timeout=8)
                return
            self.notify(f"Recording to {session.recorder.path} (R stops)", title="Recording", timeout=5)
            if session.model.summary is not None:
                session.recorder.add(session.model.summary)
        self.connection_changed()

    def action_export(self) -> None:
        self.app.export(self.session)

    def action_stalls(self) -> None:
        from .stalls import StallsScreen

        if not isinstance(self, StallsScreen):
            self.app.push_screen(StallsScreen(self.session))

    def action_memory(self) -> None:
        from .memory import MemoryScreen

        if not isinstance(self, MemoryScreen):
            self.app.push_screen(MemoryScreen(self.session))

    def action_verdicts(self) -> None:
        from .verdicts import VerdictsScreen

        if isinstance(self, VerdictsScreen):
            self.action_reload()  # ``v`` again on the verdicts: check again
        else:
            self.app.push_screen(VerdictsScreen(self.session))
