"""The ``tasktop`` command.

    tasktop                     pick a probed process and watch it live
    tasktop PID | --socket P    watch one process live
    tasktop dump PID [--full] [--format text|json|folded|pprof] [-o FILE] [--socket P]
    tasktop check PID [--max-tasks N] [--max-growth PER_MIN] [--max-blocked S] [--max-lag MS]
    tasktop diff OLD.json NEW.json [--json]
    tasktop ls [--json]
    tasktop run [--] CMD ARGS…
    tasktop demo

Every failure is one line on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Sequence

from tasktop.probe import paths

from .arguments import checked, seconds

SUBCOMMANDS = ("dump", "check", "diff", "ls", "run", "demo", "exporter", "rules", "dashboard")
# Commands of tasktop.fleet: a module each, with add_arguments(parser) and run(args) -> int.
FLEET = {"rules": "Print Prometheus alerting rules for tasktop exporter's metrics.",
         "dashboard": "Print a Grafana dashboard for tasktop exporter's metrics."}
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNCHECKED = 3  # tasktop check: no verdict (the probe cannot be reached)
FORMATS = ("text", "json", "folded", "pprof")  # of tasktop dump (tasktop.tui.formats)


class CliError(Exception):
    """A failure to report as one line: ``tasktop: error: …``."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage dump
        raise CliError(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


_pid = checked(int, "not a process id", lambda v: v > 0)
_interval = seconds("interval", 0.1, 3600)
_window = seconds("window", 0.1, 3600)
_count = checked(int, "not a whole number", lambda v: v >= 0, "must not be negative: {text!r}")
_budget = checked(float, "not a number", lambda v: 0 <= v <= 60, "must be from 0 to 60 seconds: {text!r}")
# Not negative, and finite (NaN fails the first test).
_amount = checked(float, "not a number", lambda v: v >= 0 and v != float("inf"),
                  "must be a finite number, not negative: {text!r}")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tasktop")
    except Exception:
        return "unknown"


# -- finding a probe -------------------------------------------------------------------------------
def _resolve_socket(pid: int | None, socket_path: str | None) -> str:
    """The socket of a probed process, or a one-line error explaining what is wrong."""
    if socket_path:
        if not os.path.exists(socket_path):
            raise CliError(f"no probe socket at {socket_path}")
        return socket_path
    assert pid is not None
    if not paths.pid_alive(pid):
        raise CliError(f"no process with pid {pid}")
    path = paths.socket_path(pid)
    if not os.path.exists(path):
        raise NoProbe(pid)
    return path


class NoProbe(CliError):
    def __init__(self, pid: int) -> None:
        super().__init__(f"process {pid} has no tasktop probe")
        self.pid = pid


def _connect(path: str):
    from tasktop.tui.client import ProbeClient, ProbeError, ProbeUnavailable

    client = ProbeClient(path)
    try:
        client.connect()
    except (ProbeUnavailable, ProbeError) as exc:
        raise CliError(str(exc)) from None
    return client


# -- dump ---------------------------------------------------------------------------------------------
def _dump_format(args: argparse.Namespace) -> str:
    """The output format; ``--json`` is ``--format json``.  Checked before any work is done."""
    fmt = args.format or ("json" if args.json else "text")
    if args.json and fmt != "json":
        raise CliError(f"--json conflicts with --format {fmt}", EXIT_USAGE)
    if fmt == "pprof" and not args.output and sys.stdout.isatty():
        raise CliError("the pprof format is binary: write it with -o FILE or redirect the output",
                       EXIT_USAGE)
    return fmt


def cmd_dump(args: argparse.Namespace) -> int:
    from tasktop.tui.client import ProbeError, ProbeUnavailable

    if args.pid is None and not args.socket:
        raise CliError("dump needs a PID or --socket PATH", EXIT_USAGE)
    fmt = _dump_format(args)
    try:
        path = _resolve_socket(args.pid, args.socket)
    except NoProbe as exc:
        if not args.inject:
            return _dump_without_probe(exc.pid, args, fmt)
        from tasktop.tui import inject

        try:
            path = inject.inject(exc.pid)
        except inject.InjectError as err:
            raise CliError(str(err)) from None
    client = _connect(path)
    try:
        # The profiles take every member: the summary lists only the largest groups, and
        # blocked sums need each member's time.
        data = client.full() if args.full or fmt in ("folded", "pprof") else client.summary()
        if args.verdicts and fmt in ("text", "json"):
            judged = client.verdicts(args.budget)
            data["verdicts"] = judged["verdicts"]
            data["verdicts_unsettled"] = judged.get("unsettled")
    except (ProbeUnavailable, ProbeError) as exc:
        raise CliError(str(exc)) from None
    finally:
        client.close()
    _write_dump(data, fmt, args)
    return 0


def _dump_without_probe(pid: int, args: argparse.Namespace, fmt: str) -> int:
    from tasktop.tui import pyspy

    try:
        data = pyspy.thread_dump(pid, native=args.native)
    except pyspy.PySpyError as exc:
        raise CliError(f"process {pid} has no tasktop probe, and {exc}") from None
    print(f"tasktop: process {pid} has no probe: showing its threads only, read by py-spy. "
          f"{pyspy.ENABLE_HINT}.", file=sys.stderr)
    _write_dump(data, fmt, args)
    return 0


def _write_dump(data: dict, fmt: str, args: argparse.Namespace) -> None:
    """Render ``data`` in ``fmt`` to ``-o FILE`` or standard output."""
    from tasktop.tui import report

    out: str | bytes
    if fmt in ("folded", "pprof"):
        from tasktop.tui import formats

        out = formats.folded(data) if fmt == "folded" else formats.pprof(data)
        missing = formats.missing_groups(data, formats.groups_of(data))
        if missing:
            print(f"tasktop: note: {missing} smaller groups are not in the snapshot", file=sys.stderr)
    elif fmt == "json":
        out = json.dumps(report.to_document(data), indent=2) + "\n"
    else:
        out = report.render_text(data, full=args.full)
    _write_output(out, args.output)


def _write_output(out: str | bytes, output: str | None) -> None:
    if output and output != "-":
        try:
            if isinstance(out, bytes):
                with open(output, "wb") as fh:
                    fh.write(out)
            else:
                with open(output, "w", encoding="utf-8") as fh:
                    fh.write(out)
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    elif isinstance(out, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(out)


# -- check ----------------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    from tasktop.tui import check

    limits = check.Limits(tasks=args.max_tasks, growth=args.max_growth, blocked=args.max_blocked,
                          lag=args.max_lag, window=args.window)
    if args.pid is None and not args.socket:
        raise CliError("check needs a PID or --socket PATH", EXIT_USAGE)
    if not limits.given():
        raise CliError("check needs at least one threshold: --max-tasks, --max-growth, "
                       "--max-blocked or --max-lag", EXIT_USAGE)
    try:
        path = _resolve_socket(args.pid, args.socket)
    except NoProbe as exc:
        from tasktop.tui.pyspy import ENABLE_HINT

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
        json.dump(check.to_json(verdicts, last, first, limits), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(check.render(verdicts))
    return check.status(verdicts)


def _fetch_summary(path: str) -> dict:
    """One summary on a connection of its own (a window may outlast the probe's idle timeout)."""
    from tasktop.tui.client import ProbeClient, ProbeError, ProbeUnavailable

    client = ProbeClient(path)
    try:
        client.connect()
        return client.summary()
    except (ProbeUnavailable, ProbeError) as exc:
        raise CliError(str(exc), EXIT_UNCHECKED) from None
    finally:
        client.close()


# -- diff -------------------------------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace) -> int:
    from tasktop.tui import diff

    try:
        old, new = diff.load(args.old), diff.load(args.new)
    except diff.DocumentError as exc:
        raise CliError(str(exc)) from None
    result = diff.diff(old, new, args.old, args.new)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(diff.render(result))
    return 0


# -- ls -----------------------------------------------------------------------------------------------
def probed_processes(directory: str | None = None, clean: bool = True) -> list[dict]:
    """Every live probe of this user, with its totals; removes sockets of dead processes."""
    from tasktop.tui.client import ProbeClient, ProbeError, ProbeUnavailable

    rows = []
    for pid, path in paths.list_sockets(directory):
        if not paths.pid_alive(pid):
            if clean:
                _remove_stale(path)
            continue
        client = ProbeClient(path, timeout=5.0)
        try:
            client.connect()
            data = client.summary()
        except ConnectionRefusedError:
            if clean:
                _remove_stale(path)  # the pid was reused; nobody listens there any more
            continue
        except (ProbeUnavailable, ProbeError) as exc:
            if "Connection refused" in str(exc) and clean:
                _remove_stale(path)
                continue
            rows.append({"pid": pid, "command": f"(not answering: {exc})", "socket": path})
            continue
        finally:
            client.close()
        proc = data.get("process", {})
        totals = data.get("totals", {})
        started = proc.get("started_at")
        rows.append({
            "pid": pid,
            "command": " ".join(proc.get("argv") or []) or proc.get("executable", ""),
            "python": proc.get("python"),
            "tasks": totals.get("tasks"),
            "threads": totals.get("threads"),
            "rss_bytes": data.get("memory", {}).get("rss_bytes"),
            "uptime_s": (data.get("time", time.time()) - started) if started else None,
            "socket": path,
        })
    return rows


def _remove_stale(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def cmd_ls(args: argparse.Namespace) -> int:
    from tasktop.tui import report

    rows = probed_processes()
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.render_ls(rows))
    return 0


# -- run / demo ----------------------------------------------------------------------------------------
def probe_env(base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    env["TASKTOP"] = "1"
    return env


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise CliError("run needs a command: tasktop run -- CMD ARGS…", EXIT_USAGE)
    exe = shutil.which(command[0])
    if exe is None:
        raise CliError(f"command not found: {command[0]}", 127)
    sys.stdout.flush()
    try:
        os.execve(exe, command, probe_env())  # the command becomes this process: same pid, signals, exit code
    except OSError as exc:
        raise CliError(f"cannot run {command[0]}: {exc.strerror or exc}", 126) from None
    return 0  # not reached


def cmd_demo(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "tasktop.probe.demo", "--rate", str(args.rate)]
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
            return cmd_dump(_subparser("dump").parse_args(["--socket", path]))
        return _run_app(path, args.interval)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def cmd_fleet(args: argparse.Namespace) -> int:
    import importlib

    from tasktop.fleet import FleetError

    try:
        return importlib.import_module(f"tasktop.fleet.{args.fleet_command}").run(args)
    except FleetError as exc:
        raise CliError(str(exc)) from None


def cmd_exporter(args: argparse.Namespace) -> int:
    from tasktop.tui import exporter

    if args.otlp:
        args.fleet_command = "otlp_push"
        return cmd_fleet(args)
    try:
        return exporter.run(args)
    except exporter.ExporterError as exc:
        raise CliError(str(exc)) from None


# -- the live view ----------------------------------------------------------------------------------------
def _run_app(socket_path: str | None, interval: float) -> int:
    from tasktop.tui.app import run

    return run(socket_path, interval)


def cmd_watch(args: argparse.Namespace) -> int:
    if args.pid is None and not args.socket:
        return _run_app(None, args.interval)
    try:
        path = _resolve_socket(args.pid, args.socket)
    except NoProbe as exc:
        from tasktop.tui.pyspy import ENABLE_HINT

        raise CliError(f"process {exc.pid} has no tasktop probe; {ENABLE_HINT}; "
                       f"its threads alone: tasktop dump {exc.pid}") from None
    _connect(path).close()  # fail now, with one line, rather than inside the app
    return _run_app(path, args.interval)


# -- parsing ---------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tasktop", description="See what is piling up inside a Python process.")
    parser.add_argument("--version", action="version", version=f"tasktop {_version()}")
    parser.add_argument("pid", nargs="?", type=_pid, help="process to watch (default: pick one)")
    parser.add_argument("--socket", metavar="PATH", help="probe socket to attach to")
    parser.add_argument("--interval", type=_interval, default=1.0, metavar="SECONDS",
                        help="refresh interval (default 1)")
    return parser


def _subparser(name: str) -> argparse.ArgumentParser:
    prog = f"tasktop {name}"
    if name == "dump":
        p = _Parser(prog=prog, description="Print where every task and thread of a process is blocked.")
        p.add_argument("pid", nargs="?", type=_pid)
        p.add_argument("--socket", metavar="PATH", help="probe socket instead of a pid")
        p.add_argument("--full", action="store_true", help="every task and thread, not only groups")
        p.add_argument("--format", choices=FORMATS, help="text (default), json (the versioned "
                       "document, schema 1), folded (collapsed stacks for flame graphs) or pprof "
                       "(gzipped profile.proto)")
        p.add_argument("--json", action="store_true", help="the same as --format json")
        p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
        p.add_argument("--no-verdicts", dest="verdicts", action="store_false",
                       help="skip the leak verdicts")
        p.add_argument("--budget", type=_budget, default=2.0, metavar="SECONDS",
                       help="time the probe may spend proving leaks, 0 to 60 (default 2; 0: growing and "
                            "stuck verdicts only)")
        p.add_argument("--native", action="store_true",
                       help="without a probe: thread stacks with native frames (py-spy --native)")
        p.add_argument("--inject", action="store_true",
                       help="without a probe: start one in the process (Python 3.14+, sys.remote_exec)")
    elif name == "exporter":
        from tasktop.tui import exporter

        p = _Parser(prog=prog, description="Serve Prometheus metrics for every probed process of this user.")
        exporter.add_arguments(p)
        from tasktop.fleet import otlp_push

        otlp_push.add_arguments(p)
    elif name in FLEET:
        import importlib

        p = _Parser(prog=prog, description=FLEET[name])
        importlib.import_module(f"tasktop.fleet.{name}").add_arguments(p)
        p.set_defaults(fleet_command=name)
    elif name == "check":
        p = _Parser(prog=prog, description="Exit non-zero when a threshold is passed (exit status: "
                    "0 all passed, 1 a threshold passed, 2 usage error, 3 the probe cannot be reached).")
        p.add_argument("pid", nargs="?", type=_pid)
        p.add_argument("--socket", metavar="PATH", help="probe socket instead of a pid")
        p.add_argument("--max-tasks", type=_count, metavar="N", help="at most N live asyncio tasks")
        p.add_argument("--max-growth", type=_amount, metavar="PER_MIN",
                       help="no group (and not the task total) grows faster than PER_MIN a minute")
        p.add_argument("--max-blocked", type=_amount, metavar="SECONDS",
                       help="no task or thread blocked longer than SECONDS")
        p.add_argument("--max-lag", type=_amount, metavar="MS",
                       help="no event-loop lag, nor stall in the window, longer than MS milliseconds")
        p.add_argument("--window", type=_window, default=10.0, metavar="SECONDS",
                       help="seconds between the two snapshots of --max-growth, and how far back "
                       "--max-lag looks for stalls (default 10)")
        p.add_argument("--json", action="store_true", help="the result as JSON")
    elif name == "diff":
        p = _Parser(prog=prog, description="Per-group change between two tasktop dump --json documents.")
        p.add_argument("old", metavar="OLD.json")
        p.add_argument("new", metavar="NEW.json")
        p.add_argument("--json", action="store_true", help="the result as JSON")
    elif name == "ls":
        p = _Parser(prog=prog, description="List this user's processes that have a live probe.")
        p.add_argument("--json", action="store_true")
    elif name == "run":
        p = _Parser(prog=prog, description="Run a command with the probe enabled (TASKTOP=1).")
        p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")
    else:
        p = _Parser(prog=prog, description="Start the built-in leaky demo target and watch it.")
        p.add_argument("--rate", type=float, default=5.0, help="simulated requests per second")
        p.add_argument("--interval", type=_interval, default=1.0, metavar="SECONDS")
        p.add_argument("--dump", action="store_true", help="print a dump instead of the live view")
        p.add_argument("--wait", type=float, default=3.0, help="seconds to let it run before --dump")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = None
    try:
        # The tasktop command itself is not a target, even when TASKTOP=1 is exported.
        import tasktop.probe

        tasktop.probe.stop()
        if argv and argv[0] in SUBCOMMANDS:
            name = argv.pop(0)
            args = _subparser(name).parse_args(argv)
            return {"dump": cmd_dump, "check": cmd_check, "diff": cmd_diff, "ls": cmd_ls,
                    "run": cmd_run, "demo": cmd_demo, "exporter": cmd_exporter,
                    "rules": cmd_fleet, "dashboard": cmd_fleet}[name](args)
        return cmd_watch(_parser().parse_args(argv))
    except CliError as exc:
        print(f"tasktop: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as exc:  # a bug of ours: still one line, with a hint to report it
        print(f"tasktop: error: {exc.__class__.__name__}: {exc} (this is a bug in tasktop)",
              file=sys.stderr)
        # For check, 1 means "a threshold was passed": a bug must not read as a verdict.
        return EXIT_UNCHECKED if name == "check" else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
