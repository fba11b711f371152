"""``tasktop record PID -o FILE``: the summaries the live view gets, over time, to one compact
append-only file that ``tasktop replay``, ``dump --at`` and ``diff FILE@T`` read (format:
``wire.recording``).  Ctrl-C, the end of ``--duration`` or the process exiting end it with
the file whole."""
from __future__ import annotations

import argparse
import sys
import time

from .. import arguments
from ..arguments import checked
from ..errors import EXIT_USAGE, CliError
from ..target import NoProbe, connect, resolve_socket

name = "record"
description = ("Record a process's summaries (groups, totals, loops and stalls, memory, leak verdicts, "
               "group pages) to FILE, for tasktop replay FILE, dump FILE --at TIME and diff FILE@T1 FILE@T2.")


def _duration(text: str) -> float:
    from tasktop.client.recorded import duration_text

    return duration_text(text)


_length = checked(_duration, "not a duration (90, 90s, 5m, 1h30m)", lambda v: v > 0)
_every = checked(_duration, "not a duration (60, 60s, 5m; 0 turns it off)", lambda v: v >= 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pid", nargs="?", type=arguments.pid, help="process to record")
    parser.add_argument("--socket", metavar="PATH", help="probe socket instead of a pid")
    parser.add_argument("-o", "--output", metavar="FILE", required=True, help="the recording to write")
    parser.add_argument("--interval", type=arguments.interval, default=1.0, metavar="SECONDS",
                        help="seconds between samples (default 1)")
    parser.add_argument("--duration", type=_length, metavar="DURATION",
                        help="stop after this long (90s, 5m, 1h30m; default: until Ctrl-C or the process exits)")
    parser.add_argument("--verdicts", type=_every, default=60.0, metavar="DURATION",
                        help="check the leak verdicts this often (default 60s; 0: never)")
    parser.add_argument("--budget", type=arguments.seconds("budget", 0, 60), default=1.0, metavar="SECONDS",
                        help="time the probe may spend proving leaks at each check (default 1)")
    parser.add_argument("--no-compress", dest="compress", action="store_false",
                        help="leave records uncompressed: readable with msgpack alone (about 3x larger)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    from tasktop.client.probe_client import ProbeError, ProbeUnavailable
    from tasktop.client.recorded import FileRecorder, RecordingError

    if args.pid is None and not args.socket:
        raise CliError("record needs a PID or --socket PATH", EXIT_USAGE)
    try:
        path = resolve_socket(args.pid, args.socket)
    except NoProbe as exc:
        raise CliError(f"process {exc.pid} has no tasktop probe: start it with TASKTOP=1") from None
    client = connect(path)
    try:
        recorder = FileRecorder(args.output, compress=args.compress)
    except RecordingError as exc:
        client.close()
        raise CliError(str(exc)) from None
    started = time.monotonic()
    next_verdicts = started
    reason = "stopped"
    try:
        while True:
            tick = time.monotonic()
            if args.duration is not None and tick - started >= args.duration:
                reason = "duration"
                break
            try:
                summary = client.summary()
                recorder.add(summary)
                recorder.record_pages(client, summary)
                if args.verdicts and tick >= next_verdicts:
                    next_verdicts = tick + args.verdicts
                    recorder.extra("verdicts", client.verdicts(args.budget), summary.get("time"))
            except (ProbeUnavailable, ProbeError) as exc:
                reason = f"the probe went away: {exc}"
                break
            if not args.quiet and sys.stderr.isatty():
                sys.stderr.write(f"\rtasktop: recording {recorder.samples} samples, "
                                 f"{recorder.bytes / 1024:.0f} KB to {args.output} (Ctrl-C ends)  ")
                sys.stderr.flush()
            wait = args.interval - (time.monotonic() - tick)
            if args.duration is not None:
                wait = min(wait, args.duration - (time.monotonic() - started))
            if wait > 0:
                time.sleep(wait)
    except KeyboardInterrupt:
        reason = "stopped"
    finally:
        recorder.close(reason)
        client.close()
    if not args.quiet:
        end = "\n" if sys.stderr.isatty() else ""
        print(f"{end}tasktop: recorded {recorder.samples} samples ({recorder.bytes / 1024:.0f} KB) to "
              f"{args.output}: {reason}", file=sys.stderr)
    if recorder.samples == 0:
        raise CliError(f"nothing recorded: {reason}")
    return 0
