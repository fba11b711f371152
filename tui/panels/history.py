"""History since attaching (or since the baseline): tasks, threads and RSS as sparklines.

The label beside each line carries the numbers (current value and growth), so the sparkline is
a shape to glance at, never the only place a fact is shown.
"""
from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.strip import Strip
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


BARS = "▁▂▃▄▅▆▇█"


class HistorySparkline(Sparkline):
    """Textual's sparkline, drawn straight into strips: the same bars in the same colours, at
    a tenth of the cost (Textual renders it as a Rich renderable through its generic path, 3-7
    ms for each of the three at every summary or replay step).  Data of fewer than two points
    is drawn by Textual."""

    _drawn: tuple | None = None

    def render_line(self, y: int) -> Strip:
        data = self.data or ()
        width, height = self.size
        if len(data) < 2 or width <= 0 or height <= 0 or self.summary_function is not max:
            return super().render_line(y)
        try:
            base = self.visual_style.rich_style
            renderable = self.render()
            low, high = renderable.min_color.color, renderable.max_color.color
        except AttributeError:  # another Textual
            return super().render_line(y)
        key = (tuple(data), width, height, base, low, high)
        if self._drawn is None or self._drawn[0] != key:
            self._drawn = (key, draw_sparkline(key[0], width, height, base, low, high))
        lines = self._drawn[1]
        return lines[y] if 0 <= y < len(lines) else Strip.blank(width, base)


def draw_sparkline(data: tuple, width: int, height: int, base: Style, low, high) -> list[Strip]:
    """The lines of ``textual.renderables.sparkline.Sparkline`` (bucket maxima, bars blended
    from ``low`` to ``high`` by height), each cell's style on top of ``base``."""
    from rich.color import Color

    count = len(data)
    minimum, maximum = min(data), max(data)
    extent = maximum - minimum or 1
    segments_per_line = len(BARS)
    bar_segments = segments_per_line * height - 1
    buckets = [part for part in (data[count * b // width:count * (b + 1) // width] for b in range(width)) if part]
    step = len(buckets) / width
    ratios = []
    index = 0.0
    for _ in range(width):
        ratios.append((max(buckets[int(index)]) - minimum) / extent)
        index += step
    styles: dict = {}
    blank = Segment(" ", base)
    lines = []
    for line in reversed(range(height)):
        bottom, top = line * segments_per_line, (line + 1) * segments_per_line
        segments = []
        for ratio in ratios:
            bar = int(ratio * bar_segments)
            if bar < bottom:
                segments.append(blank)
                continue
            style = styles.get(ratio)
            if style is None:
                if low.triplet is None or high.triplet is None:
                    color = high
                else:
                    (r1, g1, b1), (r2, g2, b2) = low.triplet, high.triplet
                    color = Color.from_rgb(r1 + (r2 - r1) * ratio, g1 + (g2 - g1) * ratio, b1 + (b2 - b1) * ratio)
                style = styles[ratio] = base + Style.from_color(color)
            segments.append(Segment("█" if bar >= top else BARS[bar % segments_per_line], style))
        lines.append(Strip(segments))
    return lines


class HistoryLine(Horizontal):
    def __init__(self, name: str, label: str) -> None:
        super().__init__(id=f"history-{name}", classes="history-line")
        self.metric = name
        self.label = label

    def compose(self) -> ComposeResult:
        yield TextLine(self.label, classes="history-label")
        yield HistorySparkline([], classes="history-spark")

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
        self.query_one(HistorySparkline).data = values


class HistoryPanel(Widget):
    """Three sparklines, one line each."""

    def compose(self) -> ComposeResult:
        for name, label in ROWS:
            yield HistoryLine(name, label)

    def show(self, model: Model) -> None:
        for line in self.query(HistoryLine):
            line.show(model)
