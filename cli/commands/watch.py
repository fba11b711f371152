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
        from tasktop.client.pyspy import ENABLE_HINT

        raise CliError(f"process {exc.pid} has no tasktop probe; {ENABLE_HINT}; "
                       f"its threads alone: tasktop dump {exc.pid}") from None
    connect(path).close()  # fail now, with one line, rather than inside the app
    return run_app(path, args.interval)


def run_app(socket_path: str | None, interval: float) -> int:
    """The Textual app on ``socket_path``, or on the picker when it is None."""
    from tasktop.tui.app import run

    return run(socket_path, interval)
