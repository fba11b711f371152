"""Started by ``tasktop.pth`` at interpreter start-up when ``TASKTOP`` is set.

Nothing may escape from here: an exception in a ``.pth`` line would be printed by ``site``
into the host's stderr.  Why the probe did not start is available from
``tasktop.probe.last_error()``.
"""
try:
    from . import start as _start

    _start()
except Exception:  # pragma: no cover - defensive
    pass
