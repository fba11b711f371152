"""``tasktop demo``: start the built-in leaky target (``tasktop.demo``) with the probe, and
watch it live, or dump it when ``--dump`` is given or the output is not a terminal."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from tasktop.wire import paths

from .. import arguments, registry
from ..errors import CliError
from . import dump, watch
from .run import probe_env

name = "demo"
description = "Start the built-in leaky demo target and watch it."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=5.0, help="simulated requests per second")
    parser.add_argument("--interval", type=arguments.interval, default=1.0, metavar="SECONDS")
    parser.add_argument("--dump", action="store_true", help="print a dump instead of the live view")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds to let it run before --dump")


def run(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "tasktop.demo", "--rate", str(args.rate)]
    proc = subprocess.Popen(cmd, env=probe_env(), stdin=subprocess.DEVNULL)
    try:
        path = paths.socket_path(proc.pid)
        deadline = time.monotonic() + 20
        while not os.path.exists(path):
            if proc.poll() is not None:
                raise CliError(f"the demo target exited with status {proc.returncode}")
            if time.monotonic() > deadline:
                raise CliError("the demo target's probe did not start within 20 seconds")
            time.sleep(0.05)
        if args.dump or not sys.stdout.isatty():
            time.sleep(max(0.0, args.wait))
            return dump.run(registry.parser_for(dump).parse_args(["--socket", path]))
        return watch.run_app(path, args.interval)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
