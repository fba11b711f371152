"""Requests to one probe from any number of worker threads.

``ProbeClient`` is blocking and strictly one request at a time, so each worker borrows a client
from a small pool: the watcher's summaries and a slow ``full()`` for an export never queue
behind each other, and a second request does not pay for a new connection.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Iterator

from tasktop.wire import paths

from .probe_client import ProbeClient, Requests

POOL = 4


def pid_of(path: str) -> int | None:
    """The pid a socket is named after (``1234.sock``), if it is."""
    stem = os.path.basename(path).partition(".")[0]
    return int(stem) if stem.isdigit() else None


class Connection(Requests):
    """The probe at ``path``.  Every method blocks: call it from a worker thread."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._idle: list[ProbeClient] = []
        self._lock = threading.Lock()
        self._pid = pid_of(path)

    @property
    def pid(self) -> int | None:
        return self._pid

    def process_alive(self) -> bool | None:
        """Whether the target process still exists (None: pid unknown)."""
        return None if self._pid is None else paths.pid_alive(self._pid)

    @contextlib.contextmanager
    def _client(self) -> Iterator[ProbeClient]:
        with self._lock:
            client = self._idle.pop() if self._idle else ProbeClient(self.path, self.timeout)
        try:
            yield client
        finally:
            if client.pid is not None:
                self._pid = client.pid
            with self._lock:
                if len(self._idle) < POOL:
                    self._idle.append(client)
                    client = None
            if client is not None:
                client.close()

    def request(self, op: str, **args: Any) -> Any:
        with self._client() as client:
            return client.request(op, **args)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            client.close()
