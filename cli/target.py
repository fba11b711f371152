"""The process a command is about: its probe's socket from a pid or ``--socket``, or one line
saying why it cannot be reached (shared by the live view, ``dump`` and ``check``)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tasktop.wire import paths

from .errors import CliError

if TYPE_CHECKING:
    from tasktop.client.probe_client import ProbeClient


class NoProbe(CliError):
    """The process is alive but has no probe: each command says what to do about it."""

    def __init__(self, pid: int) -> None:
        super().__init__(f"process {pid} has no tasktop probe")
        self.pid = pid


def resolve_socket(pid: int | None, socket_path: str | None) -> str:
    """The socket of a probed process, or a one-line error explaining what is wrong."""
    if socket_path:
        if not os.path.exists(socket_path):
            raise CliError(f"no probe socket at {socket_path}")
        return socket_path
    assert pid is not None
    if not paths.pid_alive(pid):
        raise CliError(f"no process with pid {pid}")
    path = paths.socket_path(pid)
    if not os.path.exists(path):
        raise NoProbe(pid)
    return path


def connect(path: str) -> ProbeClient:
    """A connected client of the probe at ``path``; a failure is a ``CliError``."""
    # Imported here, not above: ``tasktop --help`` and ``tasktop diff`` need no socket client.
    from tasktop.client.probe_client import ProbeClient, ProbeError, ProbeUnavailable

    client = ProbeClient(path)
    try:
        client.connect()
    except (ProbeUnavailable, ProbeError) as exc:
        raise CliError(str(exc)) from None
    return client
