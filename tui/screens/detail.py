"""Detail screens: views of one thing fetched on demand (a group page, a task, a thread...).

The request runs on a worker thread (``@work``) and its reply comes back as a message, so a
slow probe never freezes the keys; a reply to a request older than the screen's current one is
ignored.  A screen refreshes itself when the model changes while it is on screen (unless
paused) and when it comes back into view.  When the thing is gone (a task finished, a group emptied) or the process
exited, the last data stays on screen with a line saying so.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Hashable

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import Static

from tasktop.client.probe_client import ProbeError, ProbeUnavailable
from tasktop.client.connection import Connection
from ..messages import DetailFailed, DetailLoaded
from ..panels.header import state_badge
from .attached import AttachedScreen, session_bindings


def ask(fetch: Callable[[], Any], request: Hashable, *,
        error_means_gone: bool = False) -> DetailLoaded | DetailFailed:
    """Call ``fetch`` (blocking: on a worker thread) and say how it went, as the message for the
    screen that asked; never raises into the UI.  ``error_means_gone``: the probe answered with
    an error (the thing is gone)."""
    try:
        data = fetch()
    except ProbeError as exc:
        return DetailFailed(str(exc), request, gone=error_means_gone)
    except ProbeUnavailable as exc:
        return DetailFailed(str(exc), request)
    except Exception as exc:  # a malformed reply must not take the UI down
        return DetailFailed(f"{exc.__class__.__name__}: {exc}", request)
    return DetailLoaded(data, request)


class DetailScreen(AttachedScreen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Reload", show=False),
        *session_bindings("help", "quit"),
    ]

    #: What the screen shows, for its status line ("Task #12").
    title_text = ""
    #: Least seconds between automatic refreshes (a request that is expensive for the target,
    #: like tracemalloc's top sites, asks less often than every snapshot).
    min_refresh = 0.0

    def __init__(self, session, **kwargs) -> None:
        super().__init__(session, **kwargs)
        self.data: Any = None
        self.error = ""
        self.gone = False
        self._loading = False
        self._loaded_at = 0.0

    # For subclasses ------------------------------------------------------------------------
    def request_key(self) -> Hashable:
        """Identifies the current request; replies to an older one are ignored."""
        return None

    def fetch(self, connection: Connection) -> Any:
        """Blocking: runs on a worker thread."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Put a reply on screen (UI thread)."""

    def status_text(self) -> Text:
        return Text(self.title_text, style="bold")

    # Machinery -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.update_status()
        self.load()

    def load(self) -> None:
        self._loading = True
        self._loaded_at = time.monotonic()
        self._load_in_worker(self.request_key(), self.session.connection)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _load_in_worker(self, request: Hashable, connection: Connection) -> None:
        self.post_message(ask(lambda: self.fetch(connection), request, error_means_gone=True))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        self._loading = False
        if message.request != self.request_key():
            return
        self.data = message.data
        self.error = ""
        self.gone = False
        self.show(message.data)
        self.update_status()

    def on_detail_failed(self, message: DetailFailed) -> None:
        self._loading = False
        if message.request != self.request_key():
            return
        self.error = message.reason
        self.gone = message.gone
        self.update_status()

    def model_changed(self) -> None:
        """Refresh with the live loop's rhythm, but never pile requests onto a slow probe: skip
        while the previous one is still out (a group of 100,000 takes the probe a while)."""
        if self.session.paused or self.gone or self._loading:
            return
        if time.monotonic() - self._loaded_at < self.min_refresh:
            return
        self.load()

    def status_changed(self) -> None:
        self.update_status()

    def on_screen_resume(self) -> None:
        self.update_status()
        if self.data is not None and not self.session.paused:
            self.load()

    def update_status(self) -> None:
        text = state_badge(self.session)
        text.append("  ")
        text.append_text(self.status_text())
        if self.error:
            text.append("\n")
            what = "gone" if self.gone else "not updated"
            text.append(f" {what.upper()} ", style="bold white on red")
            text.append(f" {self.error}")
            if self.data is not None:
                text.append(" (showing the last data)", style="dim")
        self.query_one("#status", Static).update(text)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reload(self) -> None:
        self.gone = False
        self.load()
