"""``tasktop [PID | --socket PATH]``: the live view of one process, or the picker of every
probed one.  The default command: ``tasktop`` with no command word runs it."""
from __future__ import annotations

import argparse

from .. import arguments
from ..errors import CliError
from ..target import NoProbe, connect, resolve_socket

name = "watch"
description = "See what is piling up inside a Python process."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pid", nargs="?", type=arguments.pid, help="process to watch (default: pick one)")
    parser.add_argument("--socket", metavar="PATH", help="probe socket to attach to")
    parser.add_argument("--interval", type=arguments.interval, default=1.0, metavar="SECONDS",
                        help="refresh interval (default 1)")


def run(args: argparse.Namespace) -> int:
    if args.pid is None and not args.socket:
        return run_app(None, args.interval)
    try:
        path = resolve_socket(args.pid, args.socket)
    except NoProbe as exc:
        return _watch_without_probe(exc.pid, args.interval)
    connect(path).close()  # fail now, with one line, rather than inside the app
    return run_app(path, args.interval)


def _watch_without_probe(pid: int, interval: float) -> int:
    """On CPython 3.14+, the live view of tasks read from outside (``RemoteSource``, slower);
    else one line saying what to do."""
    from tasktop.client import pyspy, remote_tasks

    try:
        remote_tasks.read(pid)  # fail now, with one line, rather than inside the app
    except remote_tasks.NoReader:
        raise CliError(f"process {pid} has no tasktop probe; {pyspy.ENABLE_HINT}; "
                       f"its threads alone: tasktop dump {pid}") from None
    except remote_tasks.RemoteTasksError as exc:
        raise CliError(f"process {pid} has no tasktop probe, and {exc}; {pyspy.ENABLE_HINT}; "
                       f"its threads alone: tasktop dump {pid}") from None
    return run_app(remote_tasks.RemoteSource(pid), interval)


def run_app(socket_path, interval: float) -> int:
    """The Textual app on ``socket_path`` (or a summary source), or on the picker when it is None."""
    from tasktop.tui.app import run

    return run(socket_path, interval)
