"""What the live loop polls: a source of summaries.

The loop (``watcher.Watcher``, owned by the app) asks a source for nothing but the next summary,
whether the process still exists, and to let go at the end, so a new way of reading a process
(without the probe, or from a recording) is a new source, not a change to the loop or the screens.
``client.connection.Connection`` (the probe, over its socket) is one as it stands.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from tasktop.wire.shapes import Summary


@runtime_checkable
class SummarySource(Protocol):
    """Every method blocks: the loop calls them on its own thread."""

    def summary(self) -> Summary:
        """The process as it is now.  Raises ``ProbeUnavailable`` when the process cannot be
        reached (the loop then asks :meth:`process_alive`), ``ProbeError`` when it answers with
        an error."""

    def process_alive(self) -> bool | None:
        """Whether the process still exists (None: cannot tell): "exited" or "not answering"."""

    def close(self) -> None:
        """Release what the source holds; the loop calls it once, when it stops."""
