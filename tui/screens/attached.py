"""What every screen of an attachment shares: its session, the app's live loop, and the keys that
work anywhere.

Pause, interval, baseline, export, stalls, memory, leak verdicts and waits act on the attachment, not on one view,
so they answer on every screen opened from it; their actions are the app's, which owns the live
loop and which screen a key opens.  The main screen shows them in its footer, the detail
screens keep their footers for their own keys.  A screen reacts to the app's ``revision`` and
``status`` (watched here), never to another screen.
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
        "pause": Binding("p", "app.pause", "Pause"),
        "slower": Binding("plus,equals_sign", "app.interval(1)", "Slower"),
        "faster": Binding("minus", "app.interval(-1)", "Faster"),
        "baseline": Binding("b", "app.baseline", "Base"),
        "clear_baseline": Binding("B", "app.clear_baseline", "Clear baseline"),
        "export": Binding("e", "app.export", "Export"),
        "stalls": Binding("l", "app.open('stalls')", "Stalls"),
        "memory": Binding("m", "app.open('memory')", "Memory"),
        "verdicts": Binding("v", "app.open('verdicts')", "Leaks"),
        "waits": Binding("w", "app.open('waits')", "Waits"),
        "record": Binding("R", "app.record", "Rec"),
    }
    out = [every[name] for name in shown]
    for name, binding in every.items():
        if name not in shown and name not in skip:
            out.append(Binding(binding.key, binding.action, binding.description, show=False))
    return out


class AttachedScreen(Screen):
    """Base of every screen of an attachment; subclasses declare their keys with
    :func:`session_bindings` and redraw in :meth:`model_changed` and :meth:`status_changed`."""

    #: Whether the screen follows the model while another screen covers it (only the main view
    #: does: a covered detail screen asks the probe nothing, and catches up when it comes back).
    follows_when_covered = False

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session = session

    def on_mount(self) -> None:
        self.watch(self.app, "revision", self._revision_changed, init=False)
        self.watch(self.app, "status", self._status_changed, init=False)

    def _revision_changed(self) -> None:
        if self.follows_when_covered or self.is_active:
            self.model_changed()

    def _status_changed(self) -> None:
        if self.follows_when_covered or self.is_active:
            self.status_changed()

    # Hooks for subclasses -----------------------------------------------------------------
    def model_changed(self) -> None:
        """The session's model changed: a new summary, or a baseline set or cleared."""

    def status_changed(self) -> None:
        """The session's connection state, pause or interval changed."""
