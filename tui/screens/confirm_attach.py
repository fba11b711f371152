"""Asked before the picker starts a probe in a process that has none (``tasktop attach``): the
probe stays in the process until ``tasktop detach``, so the user says yes first."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmAttachScreen(ModalScreen[bool]):
    """Dismissed with True (``y``/Enter) or False (``n``/Escape)."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Attach"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, pid: int, command: str, how: str) -> None:
        super().__init__()
        self.pid, self.command, self.how = pid, command, how

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-attach"):
            yield Static(Text.assemble(
                ("Start the probe inside process ", "bold"), (str(self.pid), "bold"), ("?", "bold"), "\n\n",
                (self.command, ""), "\n\n",
                (f"It gets in {self.how}, and stays until `tasktop detach {self.pid}`.", "dim"), "\n\n",
                ("y", "bold"), " attach    ", ("n", "bold"), " cancel"), id="confirm-attach-text")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
