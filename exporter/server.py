"""Serving ``/metrics``: the options of ``tasktop exporter``, its HTTP server, and the program
that serves until SIGINT or SIGTERM (``tasktop exporter`` and ``python -m tasktop.exporter``)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

from tasktop.cli.arguments import checked, seconds
from tasktop.wire import paths

from .collector import DEFAULT_TIMEOUT, DEFAULT_TOP, FleetCollector
from .signals import until_stopped

#: Not in the 9100-9999 range, which the Prometheus default-port list has fully handed out
#: (9464 in particular is OpenTelemetry's Prometheus exporter, often on the same hosts).
DEFAULT_PORT = 10464
DEFAULT_ADDRESS = "127.0.0.1"


class ExporterError(Exception):
    """The exporter cannot start; the message is one line (``tasktop: error: …``)."""

# -- serving -------------------------------------------------------------------------------------------------
class MetricsServer:
    """The HTTP server of one exporter (prometheus_client's threaded WSGI server)."""

    def __init__(self, collector: FleetCollector, address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT) -> None:
        self.collector = collector
        self.registry = CollectorRegistry()  # ours only: not the exporter's own process_* metrics
        self.registry.register(collector)
        try:
            self.httpd, self.thread = start_http_server(port, addr=address, registry=self.registry)
        except (OSError, OverflowError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
            raise ExporterError(f"cannot serve metrics on {_host(address)}:{port}: "
                                f"{reason.splitlines()[0]}") from None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{_host(str(self.httpd.server_address[0]))}:{self.port}/metrics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM, then return 0; raise ``ExporterError`` if it cannot listen."""
    directories = getattr(args, "directory", None) or [None]
    if isinstance(directories, str):
        directories = [directories]
    collector = FleetCollector(directories, top=args.top, timeout=args.timeout)
    server = MetricsServer(collector, args.address, args.port)
    where_ = ", ".join(paths.socket_dir(d) for d in directories)
    try:
        with until_stopped():  # before the line that tells a supervisor (or a test) we are up
            print(f"tasktop exporter: serving {server.url} (probe sockets in {where_})", flush=True)
            server.thread.join()
    finally:
        server.close()
    return 0


# -- options ----------------------------------------------------------------------------------------------------
_port = checked(int, "not a port number", lambda v: 0 <= v <= 65535,
                "not a port number: {text!r} (0-65535; 0 picks a free one)")
_top = checked(int, "not a number of groups", lambda v: v >= 0)
_timeout = seconds("timeout", 0.05, 60)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tasktop exporter``."""
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"TCP port to serve /metrics on (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--address", default=DEFAULT_ADDRESS,
                        help=f"address to listen on (default {DEFAULT_ADDRESS}; 0.0.0.0 or :: for all)")
    parser.add_argument("--directory", action="append", metavar="DIR",
                        help="probe socket directory (default: this user's, as for the probe); "
                             "repeat for several")
    parser.add_argument("--top", type=_top, default=DEFAULT_TOP, metavar="N",
                        help=f"largest groups per process exported as series of their own (default {DEFAULT_TOP})")
    parser.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"how long to wait for each probe during a scrape (default {DEFAULT_TIMEOUT:g})")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasktop.exporter``: the same as ``tasktop exporter``."""
    import tasktop.probe

    tasktop.probe.stop()  # the exporter is not a target, even with TASKTOP=1 exported
    parser = argparse.ArgumentParser(prog="tasktop exporter",
                                     description="Serve Prometheus metrics for every probed process.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ExporterError as exc:
        print(f"tasktop exporter: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
