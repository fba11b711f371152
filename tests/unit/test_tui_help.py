"""The help screen lists every key the TUI binds.  (The TUI at work is in integration/test_tui.py.)"""
from __future__ import annotations

from tasktop.tui.app import TasktopApp
from tasktop.tui.screens.group_detail import GroupScreen
from tasktop.tui.screens.help import KEYS
from tasktop.tui.screens.main import MainScreen
from tasktop.tui.screens.memory import MemoryScreen
from tasktop.tui.screens.picker import PickerScreen
from tasktop.tui.screens.stalls import StallsScreen
from tasktop.tui.screens.task_detail import TaskScreen
from tasktop.tui.screens.thread_detail import ThreadScreen
from tasktop.tui.screens.verdicts import VerdictsScreen


def test_every_binding_is_in_the_help():
    documented = " ".join(key for _, keys in KEYS for key, _ in keys)
    names = {"question_mark": "?", "slash": "/", "plus": "+", "minus": "-", "escape": "Esc", "enter": "Enter",
             "right_square_bracket": "]", "left_square_bracket": "["}
    for screen in (MainScreen, GroupScreen, TaskScreen, ThreadScreen, StallsScreen, MemoryScreen, VerdictsScreen,
                   PickerScreen, TasktopApp):
        for binding in screen.BINDINGS:
            key = binding.key.split(",")[0]
            assert names.get(key, key) in documented.split(), f"{screen.__name__}: {key} is not in the help"
