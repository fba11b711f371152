"""History since attaching (or since the baseline): tasks, threads and RSS as sparklines.

The label beside each line carries the numbers (current value and growth), so the sparkline is
a shape to glance at, never the only place a fact is shown.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Sparkline

from tasktop.render import units
from ..model import Model
from .text_line import TextLine

ROWS = (("tasks", "tasks"), ("threads", "threads"), ("rss", "RSS"))


def change_label(model: Model, name: str) -> str:
    """``+12/m`` (per minute) or ``+120 vs base``; sizes for RSS."""
    change = model.total_change(name)
    if change is None:
        return ""
    text = units.signed_size(change) if name == "rss" else units.signed(change)
    return f"{text} vs base" if model.baseline is not None else f"{text}/m"


class HistoryLine(Horizontal):
    def __init__(self, name: str, label: str) -> None:
        super().__init__(id=f"history-{name}", classes="history-line")
        self.metric = name
        self.label = label

    def compose(self) -> ComposeResult:
        yield TextLine(self.label, classes="history-label")
        yield Sparkline([], classes="history-spark")

    def show(self, model: Model) -> None:
        values = model.history(self.metric)
        latest = model.samples[-1] if model.samples else None
        value = getattr(latest, self.metric) if latest is not None else None
        number = units.size(value) if self.metric == "rss" else units.count(value)
        text = Text()
        text.append(f"{self.label:<8}", style="dim")
        text.append(f"{number:>7}", style="bold")
        text.append(f" {change_label(model, self.metric):<14}")
        self.query_one(TextLine).show_text(text)
        self.query_one(Sparkline).data = values


class HistoryPanel(Widget):
    """Three sparklines, one line each."""

    def compose(self) -> ComposeResult:
        for name, label in ROWS:
            yield HistoryLine(name, label)

    def show(self, model: Model) -> None:
        for line in self.query(HistoryLine):
            line.show(model)
