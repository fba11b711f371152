"""``tasktop check PID --max-…``: a health check for scripts and CI, by exit status: 0 every
threshold held, 1 one was passed, 2 a usage error, 3 no verdict (the probe cannot be reached)."""
from __future__ import annotations

import argparse
import sys

from .. import arguments
from ..arguments import checked, seconds
from ..errors import EXIT_UNCHECKED, EXIT_USAGE, CliError
from ..output import print_json
from ..target import NoProbe, resolve_socket

name = "check"
description = ("Exit non-zero when a threshold is passed (exit status: "
               "0 all passed, 1 a threshold passed, 2 usage error, 3 the probe cannot be reached).")
bug_status = EXIT_UNCHECKED  # 1 means "a threshold was passed": a bug must not read as a verdict

_window = seconds("window", 0.1, 3600)
_count = checked(int, "not a whole number", lambda v: v >= 0, "must not be negative: {text!r}")
# Not negative, and finite (NaN fails the first test).
_amount = checked(float, "not a number", lambda v: v >= 0 and v != float("inf"),
                  "must be a finite number, not negative: {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pid", nargs="?", type=arguments.pid)
    parser.add_argument("--socket", metavar="PATH", help="probe socket instead of a pid")
    parser.add_argument("--max-tasks", type=_count, metavar="N", help="at most N live asyncio tasks")
    parser.add_argument("--max-growth", type=_amount, metavar="PER_MIN",
                        help="no group (and not the task total) grows faster than PER_MIN a minute")
    parser.add_argument("--max-blocked", type=_amount, metavar="SECONDS",
                        help="no task or thread blocked longer than SECONDS")
    parser.add_argument("--max-lag", type=_amount, metavar="MS",
                        help="no event-loop lag, nor stall in the window, longer than MS milliseconds")
    parser.add_argument("--max-lost", type=_count, metavar="N",
                        help="at most N tasks destroyed while pending (lost) since the probe started")
    parser.add_argument("--window", type=_window, default=10.0, metavar="SECONDS",
                        help="seconds between the two snapshots of --max-growth, and how far back "
                        "--max-lag looks for stalls (default 10)")
    parser.add_argument("--json", action="store_true", help="the result as JSON")


def run(args: argparse.Namespace) -> int:
    from tasktop.render import check

    limits = check.Limits(tasks=args.max_tasks, growth=args.max_growth, blocked=args.max_blocked,
                          lag=args.max_lag, lost=args.max_lost, window=args.window)
    if args.pid is None and not args.socket:
        raise CliError("check needs a PID or --socket PATH", EXIT_USAGE)
    if not limits.given():
        raise CliError("check needs at least one threshold: --max-tasks, --max-growth, "
                       "--max-blocked, --max-lag or --max-lost", EXIT_USAGE)
    try:
        path = resolve_socket(args.pid, args.socket)
    except NoProbe as exc:
        from tasktop.client.pyspy import ENABLE_HINT

        raise CliError(f"process {exc.pid} has no tasktop probe; {ENABLE_HINT}",
                       EXIT_UNCHECKED) from None
    except CliError as exc:
        raise CliError(str(exc), EXIT_UNCHECKED) from None
    first, last = check.take_snapshots(lambda: _fetch_summary(path), limits)
    if first is not None:
        a, b = first.get("process") or {}, last.get("process") or {}
        if (a.get("pid"), a.get("started_at")) != (b.get("pid"), b.get("started_at")):
            raise CliError(f"the process at {path} changed during the window "
                           f"(pid {a.get('pid')} then {b.get('pid')})", EXIT_UNCHECKED)
    verdicts = check.evaluate(limits, last, first)
    if args.json:
        print_json(check.to_json(verdicts, last, first, limits))
    else:
        sys.stdout.write(check.render(verdicts))
    return check.status(verdicts)


def _fetch_summary(path: str) -> dict:
    """One summary on a connection of its own (a window may outlast the probe's idle timeout)."""
    from tasktop.client.probe_client import ProbeClient, ProbeError, ProbeUnavailable

    client = ProbeClient(path)
    try:
        client.connect()
        return client.summary(complete=True)  # a check judges every group: none half filled in
    except (ProbeUnavailable, ProbeError) as exc:
        raise CliError(str(exc), EXIT_UNCHECKED) from None
    finally:
        client.close()
