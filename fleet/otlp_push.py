"""``tasktop exporter --otlp URL``: push the fleet's metrics over OTLP/HTTP (work in progress)."""
from __future__ import annotations

import argparse

from . import FleetError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--otlp", metavar="URL", help="push OTLP/HTTP metrics to URL instead of serving /metrics")


def run(args: argparse.Namespace) -> int:
    raise FleetError("--otlp is not ready yet")
