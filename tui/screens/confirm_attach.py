"""Asked before the picker opens a process that has no probe.  Two ways in, each offered only
where it is possible: start the probe inside the process (``tasktop attach``: it stays there
until ``tasktop detach``, so the user says yes first), or, on CPython 3.14+, the read-only live
view (tasks read from outside, nothing run in the process: ``tasktop PID`` without a probe)."""
from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

#: What the screen is dismissed with.
ATTACH, VIEW = "attach", "view"


class ConfirmAttachScreen(ModalScreen[Optional[str]]):
    """Dismissed with ``ATTACH`` (``y``), ``VIEW`` (``v``) or None (``n``/Escape).  Enter picks
    the read-only view where there is one (it changes nothing in the process), else attach."""

    BINDINGS = [
        Binding("y", "answer('attach')", "Attach"),
        Binding("v", "answer('view')", "View read-only"),
        Binding("enter", "default", "Default", show=False),
        Binding("n,escape", "answer(None)", "Cancel"),
    ]

    def __init__(self, pid: int, command: str, how: str | None, readable: bool = False,
                 why_not_attach: str = "") -> None:
        """``how``: how the probe would get in, None when it cannot be attached to
        (``why_not_attach`` says why); ``readable``: whether the read-only view is possible."""
        super().__init__()
        self.pid, self.command, self.how = pid, command, how
        self.readable, self.why_not_attach = readable, why_not_attach

    @property
    def choices(self) -> list[str]:
        return [c for c, possible in ((ATTACH, self.how is not None), (VIEW, self.readable)) if possible]

    def compose(self) -> ComposeResult:
        parts: list = []
        if self.how is not None and self.readable:
            parts += [("Process ", "bold"), (str(self.pid), "bold"), (" has no probe.", "bold")]
        elif self.how is not None:
            parts += [("Start the probe inside process ", "bold"), (str(self.pid), "bold"), ("?", "bold")]
        else:
            parts += [("View process ", "bold"), (str(self.pid), "bold"), (" read-only?", "bold")]
        parts += ["\n\n", (self.command, ""), "\n"]
        if self.how is not None:
            parts += ["\n", ("y", "bold"), " attach: start the probe inside it ", (
                f"({self.how}); it stays until `tasktop detach {self.pid}`", "dim")]
        elif self.why_not_attach:
            parts += ["\n", (f"Cannot attach: {self.why_not_attach}", "dim")]
        if self.readable:
            parts += ["\n", ("v", "bold"), " view read-only: ", (
                "its tasks read from outside, no code run in it (slower refresh, no creation sites "
                "or blocked times)", "dim")]
        parts += ["\n", ("n", "bold"), " cancel"]
        yield Vertical(Static(Text.assemble(*parts), id="confirm-attach-text"), id="confirm-attach")

    def action_answer(self, choice: str | None) -> None:
        if choice is None or choice in self.choices:
            self.dismiss(choice)

    def action_default(self) -> None:
        self.dismiss(VIEW if self.readable else self.choices[0] if self.choices else None)
