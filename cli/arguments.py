"""Command-line value types: each turns a bad value into argparse's one-line usage error."""
from __future__ import annotations

import argparse
from typing import Any, Callable


def checked(parse: Callable[[str], Any], not_parsed: str, ok: Callable[[Any], bool],
            out_of_range: str | None = None) -> Callable[[str], Any]:
    """An argparse ``type``: ``parse(text)``, then ``ok(value)``.  A value that does not parse
    is ``"<not_parsed>: 'text'"``; one that is out of range is ``out_of_range`` (which may name
    ``{text!r}``), or the same message when there is none."""
    def check(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{not_parsed}: {text!r}") from None
        if not ok(value):
            message = out_of_range if out_of_range is not None else not_parsed + ": {text!r}"
            raise argparse.ArgumentTypeError(message.format(text=text))
        return value

    return check


def seconds(what: str, low: float, high: float) -> Callable[[str], float]:
    """Seconds between ``low`` and ``high``; ``what`` names the option in the message."""
    return checked(float, "not a number of seconds", lambda v: low <= v <= high,
                   f"the {what} must be between {low:g} and {high:g} seconds")


# The values more than one command takes.
pid = checked(int, "not a process id", lambda v: v > 0)
interval = seconds("interval", 0.1, 3600)


def _pid_or_recording(text: str) -> "int | str":
    # A path that exists is a recording (checked by the command); anything else must be a pid.
    import os

    if not text.isdigit() and (os.path.exists(text) or os.sep in text):
        return text
    return pid(text)


#: ``dump``'s target: a pid, or the path of a recording (``tasktop record``, ``TASKTOP_RECORD``).
pid_or_recording = _pid_or_recording


def takes_negative_durations(parser: argparse.ArgumentParser) -> None:
    """Let ``parser`` take ``-5m`` as a value (``--at -5m``), as argparse takes ``-5``.

    argparse decides what looks like an option with this pattern (set per parser, the same
    attribute from 3.9 to 3.15); only negative durations are added to it."""
    import re

    parser._negative_number_matcher = re.compile(r"^-(\d+(\.\d+)?[hms]?)+$|^-\.\d+$")
