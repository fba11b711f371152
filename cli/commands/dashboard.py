"""``tasktop dashboard``: a Grafana dashboard for the exporter's metrics (``tasktop.fleet.dashboard``)."""
from __future__ import annotations

import argparse

from ..errors import CliError

name = "dashboard"
description = "Print a Grafana dashboard for tasktop exporter's metrics."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tasktop.fleet import dashboard

    dashboard.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tasktop.fleet import FleetError, dashboard

    try:
        return dashboard.run(args)
    except FleetError as exc:
        raise CliError(str(exc)) from None
