"""The exporter's parsed arguments, defaults and all, as ``tasktop exporter`` would get them.

Shared by the tests of the options (unit/test_exporter_options.py) and those that run the
exporter's server in this process (integration/test_exporter.py).
"""
from __future__ import annotations

import argparse

from tasktop.exporter import server


def exporter_args(**overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    server.add_arguments(parser)
    args = parser.parse_args([])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args
