"""``tasktop dump PID``: where every task and thread of a process is blocked, as text, the JSON
document, folded stacks or pprof.  Without a probe, the threads alone, read by py-spy (or a
probe started in the process first with ``--inject``, as ``tasktop attach`` does)."""
from __future__ import annotations

import argparse
import gc
import sys
from typing import Iterable

from tasktop.client.recorded import TIME_HELP
from tasktop.wire import ProtocolError

from .. import arguments
from ..arguments import checked
from ..errors import EXIT_USAGE, CliError
from ..target import NoProbe, connect, resolve_socket

name = "dump"
description = "Print where every task and thread of a process is blocked."

FORMATS = ("text", "json", "folded", "pprof")  # of tasktop dump (tasktop.render.profiles)
_budget = checked(float, "not a number", lambda v: 0 <= v <= 60, "must be from 0 to 60 seconds: {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    arguments.takes_negative_durations(parser)
    parser.add_argument("pid", nargs="?", type=arguments.pid_or_recording, metavar="PID|RECORDING",
                        help="a process, or a recording (tasktop record, or a TASKTOP_RECORD directory)")
    parser.add_argument("--socket", metavar="PATH", help="probe socket instead of a pid")
    parser.add_argument("--at", metavar="TIME", help="of a recording: the moment to dump (default: its "
                        "last sample). " + TIME_HELP)
    parser.add_argument("--full", action="store_true", help="every task and thread, not only groups")
    parser.add_argument("--format", choices=FORMATS, help="text (default), json (the versioned "
                        "document, schema 1), folded (collapsed stacks for flame graphs) or pprof "
                        "(gzipped profile.proto)")
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    parser.add_argument("--no-verdicts", dest="verdicts", action="store_false",
                        help="skip the leak verdicts")
    parser.add_argument("--budget", type=_budget, default=2.0, metavar="SECONDS",
                        help="time the probe may spend proving leaks, 0 to 60 (default 2; 0: growing and "
                             "stuck verdicts only)")
    parser.add_argument("--native", action="store_true",
                        help="without a probe: thread stacks with native frames (py-spy --native)")
    parser.add_argument("--inject", action="store_true",
                        help="without a probe: start one in the process first (as tasktop attach does)")


def run(args: argparse.Namespace) -> int:
    from tasktop.client.probe_client import ProbeError, ProbeUnavailable

    if args.pid is None and not args.socket:
        raise CliError("dump needs a PID or --socket PATH", EXIT_USAGE)
    fmt = _dump_format(args)
    if isinstance(args.pid, str):
        if args.full:
            raise CliError("a recording holds summaries (groups), not every task and thread: "
                           "--full is for a live process", EXIT_USAGE)
        _write_dump(recorded_moment(args.pid, args.at, args.verdicts), fmt, args)
        return 0
    if args.at is not None:
        raise CliError("--at is for a recording: tasktop dump FILE --at TIME", EXIT_USAGE)
    try:
        path = resolve_socket(args.pid, args.socket)
    except NoProbe as exc:
        if not args.inject:
            return _dump_without_probe(exc.pid, args, fmt)
        from tasktop.client import attach

        try:
            path = attach.attach(exc.pid).socket
        except attach.AttachError as err:
            raise CliError(str(err)) from None
    if args.full or fmt in ("folded", "pprof"):
        # A reply of every task, printed, and the command exits: the collector would walk
        # its rows again and again as they are made (over half of decoding a million at
        # once, as the profiles do), for nothing: none of them is in a cycle.
        gc.disable()
    client = connect(path)
    try:
        # The profiles take every member: the summary lists only the largest groups, and
        # blocked sums need each member's time.
        # A one-shot dump is complete: every await chain walked, however long that takes.
        # The waits and the leak verdicts come from its pass (``same_pass``): one moment.
        if fmt in ("folded", "pprof"):
            data = client.full()
        elif args.full:
            data = client.full_rows_packed()  # printed once, a row at a time
        else:
            data = client.summary(complete=True)
        if fmt in ("text", "json"):
            _add_ends(client, data, args.full)
        if args.verdicts and fmt in ("text", "json"):
            judged = client.verdicts(args.budget, same_pass=True)
            data["verdicts"] = judged["verdicts"]
            data["verdicts_unsettled"] = judged.get("unsettled")
    except (ProbeUnavailable, ProbeError) as exc:
        raise CliError(str(exc)) from None
    finally:
        client.close()
    try:
        _write_dump(data, fmt, args)
    except ProtocolError as exc:  # a row of the reply, unpacked as it is printed
        raise CliError(f"the probe's reply could not be read: {exc}") from None
    return 0


def _add_ends(client, data: dict, full: bool) -> None:
    """What tasks wait on, and with ``full`` how they ended; a probe too old to answer these
    requests gives a dump without them."""
    from tasktop.client.probe_client import ProbeError

    try:
        data["waits"] = client.waits(same_pass=True)
        if full:
            data["ends"] = client.ends()
    except ProbeError as exc:
        if "unknown request" not in str(exc):
            raise
def recorded_moment(path: str, at: str | None, verdicts: bool = True) -> dict:
    """The summary a recording holds at ``at`` (a TIME), with the last leak verdicts recorded
    at or before it; a bad file or TIME is a ``CliError``."""
    from tasktop.client.recorded import RecordingError, moment, open_recording

    try:
        recording = open_recording(path)
        t = moment(at or "end", recording.start, recording.end)
        data = recording.summary(recording.index_at(t))
        found = recording.extra_at("verdicts", data.get("time") or t) if verdicts else None
    except (RecordingError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if found is not None:
        data["verdicts"] = found[1].get("verdicts")
        data["verdicts_unsettled"] = found[1].get("unsettled")
    return data


def _dump_format(args: argparse.Namespace) -> str:
    """The output format; ``--json`` is ``--format json``.  Checked before any work is done."""
    fmt = args.format or ("json" if args.json else "text")
    if args.json and fmt != "json":
        raise CliError(f"--json conflicts with --format {fmt}", EXIT_USAGE)
    if fmt == "pprof" and not args.output and sys.stdout.isatty():
        raise CliError("the pprof format is binary: write it with -o FILE or redirect the output",
                       EXIT_USAGE)
    return fmt


def _dump_without_probe(pid: int, args: argparse.Namespace, fmt: str) -> int:
    """Threads by py-spy; on CPython 3.14+, the tasks too, read from outside (``remote_tasks``)."""
    from tasktop.client import pyspy, remote_tasks

    try:
        data, note = remote_tasks.snapshot(pid, native=args.native)
    except pyspy.PySpyError as exc:
        raise CliError(f"process {pid} has no tasktop probe, and {exc}") from None
    print(f"tasktop: {note}", file=sys.stderr)
    _write_dump(data, fmt, args)
    return 0


def _write_dump(data: dict, fmt: str, args: argparse.Namespace) -> None:
    """Render ``data`` in ``fmt`` to ``-o FILE`` or standard output."""
    from tasktop.render import text as report

    out: str | bytes
    if fmt in ("folded", "pprof"):
        from tasktop.render import profiles as formats

        out = formats.folded(data) if fmt == "folded" else formats.pprof(data)
        missing = formats.missing_groups(data, formats.groups_of(data))
        if missing:
            print(f"tasktop: note: {missing} smaller groups are not in the snapshot", file=sys.stderr)
    elif fmt == "json":
        out = report.json_pieces(report.to_document(data))
    else:
        out = report.text_pieces(data, full=args.full)
    _write_output(out, args.output)


def _write_output(out: str | bytes | Iterable[str], output: str | None) -> None:
    """``out`` (text, bytes, or text in pieces: see ``json_pieces``) to ``output`` or standard output."""
    binary = isinstance(out, bytes)
    pieces = (out,) if isinstance(out, (str, bytes)) else out
    if output and output != "-":
        try:
            with (open(output, "wb") if binary else open(output, "w", encoding="utf-8")) as fh:
                for piece in pieces:
                    fh.write(piece)
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    elif binary:
        sys.stdout.flush()
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    else:
        for piece in pieces:
            sys.stdout.write(piece)
