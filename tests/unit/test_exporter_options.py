"""The exporter's options (their defaults, and bad values refused with a one-line error) and the
command label of a process.  (The exporter at work is in integration/test_exporter.py.)"""
from __future__ import annotations

import argparse

import pytest

from support.exporter_args import exporter_args
from tasktop.exporter import collector, server


def test_command_label_is_argv_cut_to_width():
    assert collector.command_label({"argv": ["/srv/app/worker.py", "--queue", "mail"]}) == "worker.py --queue mail"
    long = collector.command_label({"argv": ["/srv/app.py", "x" * 200]})
    assert len(long) == collector.COMMAND_WIDTH and long.endswith("…")
    assert collector.command_label({"argv": ["a.py", "two\nlines"]}) == "a.py two lines"


def test_defaults():
    args = exporter_args()
    assert (args.port, args.address, args.directory, args.top, args.timeout) == (
        server.DEFAULT_PORT, "127.0.0.1", None, 10, 2.0)


class _Raising(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise ValueError(message)


@pytest.mark.parametrize("argv, expected", [
    (["--port", "70000"], "not a port number: '70000'"),
    (["--port", "http"], "not a port number: 'http'"),
    (["--top", "-1"], "not a number of groups: '-1'"),
    (["--timeout", "0"], "the timeout must be between"),
])
def test_bad_options(argv, expected):
    parser = _Raising()
    server.add_arguments(parser)
    with pytest.raises(ValueError, match=expected):
        parser.parse_args(argv)
