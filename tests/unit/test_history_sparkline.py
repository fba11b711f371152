"""The history's sparkline draws its strips itself: cell for cell, style for style, what
Textual's own Sparkline draws from the same data, at every size the main view uses."""
from __future__ import annotations

import random

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Sparkline

from tasktop.tui.panels.history import HistorySparkline


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Pair(App):
    CSS = """
    Sparkline { width: 86; height: 3; }
    Sparkline > .sparkline--max-color { color: $warning; }
    Sparkline > .sparkline--min-color { color: $warning 30%; }
    """

    def compose(self) -> ComposeResult:
        yield Sparkline([], id="textual")
        yield HistorySparkline([], id="ours")


def cells(widget: Sparkline) -> list:
    return [[(segment.text, segment.style) for segment in widget.render_line(y)] for y in range(widget.size.height)]


@pytest.mark.anyio
@pytest.mark.parametrize("width,height", [(86, 3), (86, 1), (17, 2)])
async def test_the_same_bars_in_the_same_colours_as_textual(width, height):
    rng = random.Random(width * height)
    series = [
        [rng.uniform(0, 100) for _ in range(120)],  # more points than columns
        [rng.randint(0, 5) for _ in range(30)],  # fewer, with repeats
        [7.0] * 50,  # flat
        list(range(200)),  # a leak
        [3, 9],
        [5],  # one point, and none: drawn by Textual itself
        [],
    ]
    app = Pair()
    async with app.run_test(size=(100, 10)) as pilot:
        textual, ours = app.query_one("#textual", Sparkline), app.query_one("#ours", HistorySparkline)
        for widget in (textual, ours):
            widget.styles.width, widget.styles.height = width, height
        await pilot.pause()
        for data in series:
            textual.data, ours.data = data, data
            await pilot.pause()
            expected = cells(textual)
            assert len(expected) == height and sum(len(line) for line in expected) > 0
            assert cells(ours) == expected, data
