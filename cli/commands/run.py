"""``tasktop run -- CMD ARGS…``: run a command with the probe enabled.  The command replaces
tasktop (same pid, signals and exit status), so it is a drop-in prefix in any service file."""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from tasktop.wire import paths

from ..errors import EXIT_USAGE, CliError

name = "run"
description = "Run a command with the probe enabled (TASKTOP=1)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")


def run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise CliError("run needs a command: tasktop run -- CMD ARGS…", EXIT_USAGE)
    exe = shutil.which(command[0])
    if exe is None:
        raise CliError(f"command not found: {command[0]}", 127)
    try:  # where the command's probe will put its socket: said now, not found missing later
        paths.ensure_socket_dir()
    except OSError as exc:
        raise CliError(f"the probe cannot start: {exc}") from None
    sys.stdout.flush()
    try:
        os.execve(exe, command, probe_env())  # the command becomes this process: same pid, signals, exit code
    except OSError as exc:
        raise CliError(f"cannot run {command[0]}: {exc.strerror or exc}", 126) from None
    return 0  # not reached


def probe_env(base: dict | None = None) -> dict:
    """``base`` (default: this environment) with the probe enabled."""
    env = dict(os.environ if base is None else base)
    env["TASKTOP"] = "1"
    return env
