"""``tasktop detach PID``: stop the probe of a process (attached, or started with
``TASKTOP=1``): its thread ends, its socket is removed, and the hooks it set are put back.  A
process without a probe is left as it is (exit status 0)."""
from __future__ import annotations

import argparse

from .. import arguments
from ..errors import CliError

name = "detach"
description = "Stop the probe inside a process: its socket is removed and its hooks are put back."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pid", type=arguments.pid, help="the process")


def run(args: argparse.Namespace) -> int:
    from tasktop.client import attach

    try:
        stopped = attach.detach(args.pid)
    except attach.AttachError as exc:
        raise CliError(str(exc)) from None
    if stopped:
        print(f"tasktop: probe of process {args.pid} stopped")
    else:
        print(f"tasktop: process {args.pid} has no probe (nothing done)")
    return 0
