"""``?``: every key, by screen.  The table here is the one place keys are described for
humans; a test checks that every binding of every screen appears in it."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: (section, [(keys, what they do)]).  Keys are written as the user types them.
KEYS = [
    ("Everywhere", [
        ("?", "this help"),
        ("q", "quit"),
        ("Esc", "back to the previous screen (on the main screen: clear the filter, or back to the picker)"),
        ("↑ ↓ PgUp PgDn", "move in a table or scroll a pane (also Home, End)"),
        ("Tab", "move between the panes of a screen"),
        ("Enter", "open the selected line"),
    ]),
    ("Attached to a process (any screen)", [
        ("p", "pause / resume refreshing (the data on screen stays)"),
        ("+ -", "refresh less / more often (0.25s to 30s)"),
        ("b", "set the baseline: changes and history become relative to now"),
        ("B", "clear the baseline (changes are per minute again)"),
        ("e", "export the current snapshot: tasktop-PID-TIME.txt and .json"),
        ("l", "event-loop stalls and the code that blocked the loop"),
        ("m", "memory: RSS history, gc, top allocation sites"),
        ("v", "leak verdicts: proven leaks, growing, stuck and lost groups, and the probe's reasoning"),
        ("w", "waits: queues, locks, semaphores, events and conditions tasks wait on, most waiters first"),
        ("R", "start / stop recording this session to tasktop-PID-TIME.ttrec (● REC in the header; "
              "tasktop replay FILE)"),
    ]),
    ("Replay (tasktop replay FILE)", [
        (", .", "one sample back / forward"),
        ("Space p", "play / pause"),
        ("1 2 3", "play at 1x, 10x, 100x"),
        ("g G", "the start / the end of the recording"),
        ("j", "jump to a moment: HH:MM:SS, -5m (before the end), +30s (after the start), start, end"),
    ]),
    ("Main view", [
        ("Enter", "open the selected group"),
        ("/", "filter groups by any text of their stack, or a state (Enter keeps it, Esc clears it)"),
        ("s", "sort by count, growth, or longest blocked"),
        ("t", "show tasks and threads, tasks only, threads only"),
    ]),
    ("Group view", [
        ("Enter", "open the selected task or thread"),
        ("] [", "next / previous page of members (also n / N)"),
        ("r", "reload now"),
    ]),
    ("Leak verdicts", [
        ("Enter", "open the group of the selected verdict"),
        ("r", "check again (the probe proves leaks: up to 2 s; also v)"),
    ]),
    ("Waits", [
        ("Enter", "open the largest group waiting on the selected object"),
        ("r", "reload now"),
    ]),
    ("Task view", [
        ("Enter", "open the selected related task (along the awaiter chain)"),
        ("r", "reload now"),
    ]),
    ("Process picker", [
        ("Enter", "attach to the selected process"),
        ("r", "rescan now"),
    ]),
]

LEGEND = [
    ("LEAK", "the group kept growing over the last two minutes"),
    ("Δ/MIN", "change of the count per minute over the last minute"),
    ("Δ BASE", "change of the count since the baseline (after b)"),
    ("BLOCKED", "the longest time a member has waited on the same thing"),
    ("WHERE", "the innermost frame of your own code (not asyncio / threading internals)"),
    ("▶", "in a stack: that frame, with its source around it"),
    ("PROVEN LEAK", "nothing but the waiters can reach what they wait on: nothing can ever wake them"),
    ("GROWING", "the probe saw the count rise steadily over its own history (up to 10 minutes)"),
    ("STUCK", "every member blocked a minute or more on something that does not wake by itself"),
    ("LOST", "tasks destroyed while still pending (nothing referenced them): their work never happened"),
    ("MOVED", "in Waits: how items and waiters changed since the probe's previous look"),
]


def _section(title: str, rows: list) -> list:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold yellow", no_wrap=True, width=14)
    table.add_column()
    for key, what in rows:
        table.add_row(key, what)
    return [Text(title, style="bold underline"), table, Text("")]


def help_text() -> Group:
    parts: list = []
    for section, keys in KEYS:
        parts.extend(_section(section, keys))
    parts.extend(_section("Columns and marks", LEGEND))
    return Group(*parts[:-1])


class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding("escape,question_mark,enter", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("tasktop keys", style="bold"), id="help-title")
            yield Static(help_text(), id="help-body")

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(result)
