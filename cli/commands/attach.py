"""``tasktop attach PID``: start the probe inside a running CPython process (3.9 to 3.15) that
was started without it, with no restart; ``tasktop PID`` is its live view afterwards.  A process
that has a probe already is left as it is (exit status 0).  Each refusal is one line with its
remedy (see ``client.processes.refusal`` and ``client.attach``)."""
from __future__ import annotations

import argparse
import sys

from .. import arguments
from ..errors import CliError

name = "attach"
description = ("Start the probe inside a running Python process (CPython 3.9-3.15) started without it: "
               "ptrace injection, or sys.remote_exec on 3.14+ where tasktop cannot inject.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pid", type=arguments.pid, help="the process")
    parser.add_argument("--timeout", type=arguments.seconds("timeout", 1, 300), default=15.0,
                        metavar="SECONDS", help="how long to wait for the probe to answer (default 15)")
    parser.add_argument("--via", choices=("auto", "ptrace", "remote-exec"), default="auto",
                        help="how to get in: ptrace injection (auto, where tasktop can inject) or "
                             "sys.remote_exec (3.14+ processes; auto where tasktop cannot inject)")


def run(args: argparse.Namespace) -> int:
    from tasktop.client import attach

    try:
        done = attach.attach(args.pid, timeout=args.timeout, via=args.via)
    except attach.AttachError as exc:
        raise CliError(str(exc)) from None
    if done.already:
        print(f"tasktop: process {args.pid} already has a probe (nothing done): tasktop {args.pid}")
        return 0
    python = ".".join(map(str, done.version)) if done.version else "?"
    print(f"tasktop: probe started in process {args.pid} (Python {python}, by {done.how}) in "
          f"{done.seconds:.2f}s: tasktop {args.pid} for the live view, tasktop detach {args.pid} to stop it")
    note = attach.python_note(done.version)
    if note:
        print(f"tasktop: {note}", file=sys.stderr)
    return 0
