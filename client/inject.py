"""Start the probe inside a process that was started without it.

Python 3.14 added ``sys.remote_exec(pid, script)``: the target interpreter runs a script file
at its next safe point (PEP 768).  tasktop writes a two-line script that makes this
installation of tasktop importable and calls ``tasktop.probe.start()``, then waits for the
probe's socket.  Both interpreters must be 3.14 or newer, and the caller needs the right to
ptrace the target (root, or the same user where ptrace is allowed) — the same rule py-spy obeys.
Older Pythons have no safe way in, and get a one-line explanation instead.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

from tasktop.wire import paths


class InjectError(Exception):
    """Injection is impossible here; the message is one line for the user."""


def supported() -> bool:
    return hasattr(sys, "remote_exec")


def _target_python(pid: int) -> str | None:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None


def inject(pid: int, timeout: float = 15.0) -> str:
    """Start the probe in ``pid``; return its socket path once it answers."""
    if not supported():
        raise InjectError(
            f"starting the probe in a running process needs sys.remote_exec (Python 3.14+); "
            f"tasktop runs on Python {sys.version_info.major}.{sys.version_info.minor}: "
            f"restart the process with TASKTOP=1 instead")
    if not paths.pid_alive(pid):
        raise InjectError(f"no process with pid {pid}")
    path = paths.socket_path(pid)
    if os.path.exists(path):
        return path
    import tasktop

    root = os.path.dirname(os.path.dirname(os.path.abspath(tasktop.probe.__file__)))
    script = (f"import sys\nsys.path.append({root!r})\n"
              f"import tasktop.probe\ntasktop.probe.start(directory={paths.socket_dir()!r})\n")
    fd, name = tempfile.mkstemp(prefix="tasktop-inject-", suffix=".py")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(script)
        os.chmod(name, 0o644)  # the target may run as another user (when we are root)
        try:
            sys.remote_exec(pid, name)  # type: ignore[attr-defined]
        except PermissionError:
            raise InjectError(f"permission denied attaching to process {pid}") from None
        except (RuntimeError, OSError, ValueError) as exc:
            raise InjectError(f"could not inject into process {pid} "
                              f"({_target_python(pid) or 'unknown interpreter'}): {exc}") from None
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise InjectError(f"process {pid} did not start the probe within {timeout:.0f}s "
                                  f"(it runs the script at its next safe point: is it stuck in C code?)")
            time.sleep(0.05)
        return path
    finally:
        # The target has read the script by the time its socket exists (or we gave up).
        try:
            os.unlink(name)
        except OSError:
            pass
