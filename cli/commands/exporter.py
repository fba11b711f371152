"""``tasktop exporter``: serve Prometheus metrics for every probed process of this user (the
exporter itself is ``tasktop.exporter``, also run as ``python -m tasktop.exporter``)."""
from __future__ import annotations

import argparse

from ..errors import CliError

name = "exporter"
description = "Serve Prometheus metrics for every probed process of this user."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tasktop.exporter import server  # prometheus_client: only for this command

    server.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tasktop.exporter import server

    try:
        return server.run(args)
    except server.ExporterError as exc:
        raise CliError(str(exc)) from None
