"""Messages that carry data from worker threads to the app and its screens (one way: probe -> UI).

Only these cross the thread boundary; widgets never touch a socket.  A snapshot that is still
queued when a newer one arrives is dropped (``can_replace``): a UI that fell behind catches up
with the latest state instead of replaying stale ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from tasktop.wire.shapes import Summary


@dataclass
class SnapshotReceived(Message):
    """A new summary from the live loop; ``cost`` is how long the request took."""

    summary: Summary
    cost: float = 0.0

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReceived)


@dataclass
class ConnectionChanged(Message):
    """The live loop's view of the process changed: ``live``, ``exited`` or ``unreachable``."""

    state: str
    reason: str = ""


@dataclass
class DetailLoaded(Message):
    """A detail reply (group page, task, thread, memory) for the screen that asked."""

    data: Any
    request: Any = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DetailLoaded) and message.request == self.request


@dataclass
class DetailFailed(Message):
    """A detail request failed; ``reason`` is one line for the user."""

    reason: str
    request: Any = None
    gone: bool = False  # the probe answered, but the thing asked for no longer exists


@dataclass
class ProbesListed(Message):
    """The picker's periodic scan of probe sockets."""

    rows: list
    directory: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProbesListed)
