"""``tasktop rules``: Prometheus alerting rules for the exporter's metrics (``tasktop.fleet.rules``)."""
from __future__ import annotations

import argparse

from ..errors import CliError

name = "rules"
description = "Print Prometheus alerting rules for tasktop exporter's metrics."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tasktop.fleet import rules

    rules.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tasktop.fleet import FleetError, rules

    try:
        return rules.run(args)
    except FleetError as exc:
        raise CliError(str(exc)) from None
