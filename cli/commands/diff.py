"""``tasktop diff OLD NEW``: what changed, group by group, between two dumps, or two moments of
recordings (``FILE@TIME``)."""
from __future__ import annotations

import argparse
import sys

from tasktop.client.recorded import TIME_HELP

from ..errors import CliError
from ..output import print_json

name = "diff"
description = ("Per-group change between two tasktop dump --json documents, or two moments of "
               "recordings: tasktop diff FILE@-10m FILE@end.  " + TIME_HELP + ".")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD.json", help="a dump --json document, or RECORDING@TIME")
    parser.add_argument("new", metavar="NEW.json", help="a dump --json document, or RECORDING@TIME")
    parser.add_argument("--json", action="store_true", help="the result as JSON")


def run(args: argparse.Namespace) -> int:
    from tasktop.render import diff

    try:
        old, new = load_side(args.old), load_side(args.new)
    except diff.DocumentError as exc:
        raise CliError(str(exc)) from None
    result = diff.diff(old, new, args.old, args.new)
    if args.json:
        print_json(result)
    else:
        sys.stdout.write(diff.render(result))
    return 0


def load_side(spec: str) -> dict:
    """A document from a JSON file, or the dump of a recording at a moment (``FILE@TIME``; a
    recording without ``@`` is its last sample)."""
    import os

    from tasktop.client.recorded import looks_like_recording
    from tasktop.render import diff
    from tasktop.render.text import to_document

    from .dump import recorded_moment

    path, at = spec, None
    if not os.path.exists(spec) and "@" in spec:
        path, _, at = spec.rpartition("@")
    if at is not None or looks_like_recording(path):
        return to_document(recorded_moment(path, at))
    return diff.load(path)
