"""Memory: RSS and its history beside the task count's, gc, and tracemalloc's top sites.

Task count and RSS side by side answer the first question about a leak: do they grow together?
The allocation sites come from ``memory(top)`` (tracemalloc must be on in the target); their
growth is measured from the first reply after attaching, or after ``b``.
"""
from __future__ import annotations

import os
from typing import Any, Hashable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Sparkline, Static

from tasktop.render import source
from tasktop.render import stacks
from tasktop.render import units
from tasktop.client.connection import Connection
from ..panels.history import change_label
from .detail import DetailScreen

TOP = 30


class MemoryScreen(DetailScreen):
    title_text = "Memory"
    min_refresh = 5.0  # tracemalloc's snapshot costs the target more than a summary

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield Static(id="memory-summary")
        with Horizontal(id="memory-history"):
            with Vertical(classes="memory-chart"):
                yield Static(id="rss-label")
                yield Sparkline([], id="rss-spark")
            with Vertical(classes="memory-chart"):
                yield Static(id="tasks-label")
                yield Sparkline([], id="tasks-spark")
        yield Static(id="sites-caption", classes="caption")
        yield DataTable(id="sites", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#sites", DataTable)
        for key, label in (("size", "SIZE"), ("growth", "GROWTH"), ("count", "BLOCKS"), ("site", "SITE"),
                           ("source", "SOURCE")):
            table.add_column(label, key=key)
        self._show_history()
        table.focus()

    def request_key(self) -> Hashable:
        return ("memory",)

    def fetch(self, connection: Connection) -> Any:
        return connection.memory(TOP)

    def model_changed(self) -> None:
        self._show_history()
        super().model_changed()

    def _show_history(self) -> None:
        model = self.session.model
        rss = model.history("rss")
        tasks = model.history("tasks")
        since = "since the baseline" if model.baseline is not None else "since attaching"
        latest = model.samples[-1] if model.samples else None
        peak = ((model.summary or {}).get("memory") or {}).get("rss_peak_bytes")
        self.query_one("#rss-label", Static).update(Text.assemble(
            ("RSS ", "dim"), (units.size(latest.rss if latest else None), "bold"),
            (f" (peak {units.size(peak)})", "dim"), (f"  {change_label(model, 'rss')}", "")))
        self.query_one("#tasks-label", Static).update(Text.assemble(
            ("tasks ", "dim"), (units.count(latest.tasks if latest else None), "bold"),
            (f"  {change_label(model, 'tasks')}", ""), (f"  ({since})", "dim")))
        self.query_one("#rss-spark", Sparkline).data = rss
        self.query_one("#tasks-spark", Sparkline).data = tasks

    def show(self, data: Any) -> None:
        model = self.session.model
        model.note_memory(data)
        text = Text()
        counts = data.get("gc_counts") or []
        collections = data.get("gc_collections") or []
        text.append("gc ", style="dim")
        text.append("pending " + "/".join(str(c) for c in counts), style="")
        text.append("  collections " + "/".join(f"{c:,}" for c in collections) + "  (generations 0/1/2)",
                    style="")
        traced = data.get("tracemalloc")
        text.append("\ntracemalloc ", style="dim")
        if traced:
            text.append(f"on: {units.size(traced.get('current_bytes'))} traced, "
                        f"peak {units.size(traced.get('peak_bytes'))}")
        else:
            text.append("off", style="bold")
            text.append(" (start the target with TASKTOP_TRACEMALLOC=1 to see allocation sites)", style="dim")
        self.query_one("#memory-summary", Static).update(text)
        self._show_history()
        self._show_sites(data.get("top") or [], bool(traced))

    def _show_sites(self, sites: list, traced: bool) -> None:
        model = self.session.model
        table = self.query_one("#sites", DataTable)
        index = table.cursor_row
        table.clear()
        for number, site in enumerate(sites):
            growth = model.site_growth(site)
            table.add_row(
                Text(units.size(site.get("size_bytes")), justify="right", style="bold"),
                Text("new" if growth is None else units.signed_size(growth), justify="right",
                     style="yellow" if growth is None or growth > 0 else ""),
                Text(f"{int(site.get('count') or 0):,}", justify="right"),
                Text(stacks.fit_label(f"{os.path.basename(str(site.get('file')))}:{site.get('line')}", 28)),
                Text(source.line_of({"file": site.get("file"), "line": site.get("line")}), style="dim"),
                key=str(number),
            )
        if sites:
            table.move_cursor(row=min(max(index, 0), len(sites) - 1), animate=False)
        caption = self.query_one("#sites-caption", Static)
        if traced:
            since = "the baseline" if model.baseline is not None else "the first look"
            caption.update(Text.assemble(("Top allocation sites", "bold"),
                                         (f"  growth since {since}; 'new' = not in the top then", "dim")))
        else:
            caption.update(Text("No allocation sites: tracemalloc is off in the target.", style="dim"))
