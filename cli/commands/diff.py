"""``tasktop diff OLD.json NEW.json``: what changed, group by group, between two dumps."""
from __future__ import annotations

import argparse
import sys

from ..errors import CliError
from ..output import print_json

name = "diff"
description = "Per-group change between two tasktop dump --json documents."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD.json")
    parser.add_argument("new", metavar="NEW.json")
    parser.add_argument("--json", action="store_true", help="the result as JSON")


def run(args: argparse.Namespace) -> int:
    from tasktop.render import diff

    try:
        old, new = diff.load(args.old), diff.load(args.new)
    except diff.DocumentError as exc:
        raise CliError(str(exc)) from None
    result = diff.diff(old, new, args.old, args.new)
    if args.json:
        print_json(result)
    else:
        sys.stdout.write(diff.render(result))
    return 0
