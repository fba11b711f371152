"""``tasktop exporter``: serve Prometheus metrics for every probed process of this user (the
exporter itself is ``tasktop.exporter``, also run as ``python -m tasktop.exporter``)."""
from __future__ import annotations

import argparse

from ..errors import CliError

name = "exporter"
description = "Serve Prometheus metrics for every probed process of this user."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tasktop.exporter import server  # prometheus_client: only for this command

    from tasktop.fleet import otlp_push

    server.add_arguments(parser)
    otlp_push.add_arguments(parser)  # --otlp URL: push OpenTelemetry metrics instead of serving


def run(args: argparse.Namespace) -> int:
    from tasktop.exporter import server
    from tasktop.fleet import FleetError, otlp_push

    try:
        return otlp_push.run(args) if args.otlp else server.run(args)
    except (server.ExporterError, FleetError) as exc:
        raise CliError(str(exc)) from None
