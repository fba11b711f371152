"""Running until SIGINT or SIGTERM: the exporter's serve loop and its OTLP push loop.

Both wait in a loop that must end cleanly (sockets closed, the last push flushed) on Ctrl-C or
a service manager's SIGTERM, so SIGTERM is turned into the same clean exit as Ctrl-C.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class _Stop(BaseException):
    """Raised by our SIGINT/SIGTERM handler to leave the loop inside ``until_stopped``."""


def _stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


@contextlib.contextmanager
def until_stopped() -> Iterator[None]:
    """Run the block until SIGINT or SIGTERM ends it (quietly); the previous handlers come back.
    Off the main thread, where handlers cannot be set, only KeyboardInterrupt ends it."""
    previous = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, _stop)
        yield
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
