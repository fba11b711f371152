"""``tasktop ls``: this user's processes with a live probe, with their totals (stale sockets
are removed on the way, see ``client.discovery``)."""
from __future__ import annotations

import argparse
import sys

from tasktop.wire import paths

from ..errors import CliError
from ..output import print_json

name = "ls"
description = ("List this user's processes that have a live probe; with --dead, the flight recordings "
               "(TASKTOP_RECORD) of processes that are gone.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dead", action="store_true",
                        help="flight recordings of processes that ended (killed, crashed or exited)")
    parser.add_argument("--dir", metavar="DIR", help="the flight recorder's directory (default: $TASKTOP_RECORD)")


def run(args: argparse.Namespace) -> int:
    from tasktop.render import text as report

    if args.dead or args.dir:
        return _dead(args)

    rows = probed_processes()
    if args.json:
        print_json(rows)
    else:
        sys.stdout.write(report.render_ls(rows))
        reason = paths.refusal() if not rows else None
        if reason is not None:  # why TASKTOP=1 may have started none (a probe never writes to stderr)
            print(f"tasktop: note: no probe can start there: {reason}", file=sys.stderr)
    return 0


def _dead(args: argparse.Namespace) -> int:
    import os

    from tasktop.client.recorded import RecordingError, flight_recordings
    from tasktop.render import text as report

    directory = args.dir or os.environ.get("TASKTOP_RECORD")
    if not directory:
        raise CliError("ls --dead needs the flight recorder's directory: --dir DIR or TASKTOP_RECORD=DIR")
    try:
        rows = flight_recordings(directory)
    except RecordingError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json(rows)
    else:
        sys.stdout.write(report.render_dead(rows, directory))
    return 0


def probed_processes(directory: str | None = None, clean: bool = True) -> list[dict]:
    """Every live probe of this user, with its totals; stale sockets are removed (see
    ``client.discovery``)."""
    from tasktop.client.discovery import scan

    rows = []
    for info in scan([directory], timeout=5.0, clean=clean):
        if info.summary is None:
            rows.append({"pid": info.pid, "command": f"(not answering: {info.error})", "socket": info.path})
            continue
        proc = info.summary.get("process", {})
        rows.append({
            "pid": info.pid,
            "command": " ".join(proc.get("argv") or []) or proc.get("executable", ""),
            "python": proc.get("python"),
            "tasks": info.tasks,
            "threads": info.threads,
            "rss_bytes": info.rss,
            "uptime_s": info.uptime,
            "socket": info.path,
        })
    return rows
