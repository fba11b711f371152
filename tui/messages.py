"""Messages that carry data from worker threads to the widgets (one way: probe -> UI).

Only these cross the thread boundary; widgets never touch a socket.  A snapshot that is still
queued when a newer one arrives is dropped (``can_replace``): a UI that fell behind catches up
with the latest state instead of replaying stale ones.
"""
from __future__ import annotations

from typing import Any

from textual.message import Message


class SnapshotReceived(Message):
    """A new ``summary`` reply from the watcher; ``cost`` is how long the request took."""

    def __init__(self, summary: dict, cost: float = 0.0) -> None:
        super().__init__()
        self.summary = summary
        self.cost = cost

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReceived)


class ConnectionChanged(Message):
    """The watcher's view of the probe changed: ``live``, ``exited`` or ``unreachable``."""

    def __init__(self, state: str, reason: str = "") -> None:
        super().__init__()
        self.state = state
        self.reason = reason


class DetailLoaded(Message):
    """A detail reply (group page, task, thread, memory) for the screen that asked."""

    def __init__(self, data: Any, request: Any = None) -> None:
        super().__init__()
        self.data = data
        self.request = request

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DetailLoaded) and message.request == self.request


class DetailFailed(Message):
    """A detail request failed; ``reason`` is one line for the user."""

    def __init__(self, reason: str, request: Any = None, gone: bool = False) -> None:
        super().__init__()
        self.reason = reason
        self.request = request
        self.gone = gone  # the probe answered, but the thing asked for no longer exists


class ProbesListed(Message):
    """The picker's periodic scan of probe sockets."""

    def __init__(self, rows: list, directory: str) -> None:
        super().__init__()
        self.rows = rows
        self.directory = directory

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProbesListed)
