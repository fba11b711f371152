"""``tasktop replay FILE``: the live view on a recording (``tasktop record``, the live view's
record key, or a flight recorder's ``TASKTOP_RECORD`` directory), with time controls."""
from __future__ import annotations

import argparse

from tasktop.client.recorded import TIME_HELP

from .. import arguments
from ..errors import CliError

name = "replay"
description = ("Replay a recording in the live view: step, jump, play at 1x, 10x or 100x.  FILE is a "
               "tasktop record file or a flight recording directory (TASKTOP_RECORD=DIR: DIR/PID-…).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    arguments.takes_negative_durations(parser)
    parser.add_argument("file", metavar="FILE", help="the recording")
    parser.add_argument("--at", metavar="TIME", help="the moment to open at (default: the end). " + TIME_HELP)


def run(args: argparse.Namespace) -> int:
    from tasktop.client.recorded import RecordingError, moment, open_recording

    try:
        recording = open_recording(args.file)
        at = moment(args.at, recording.start, recording.end) if args.at else recording.end
    except (RecordingError, ValueError) as exc:
        raise CliError(str(exc)) from None
    from tasktop.tui.replay import run_replay

    return run_replay(recording, at)
