"""The commands of ``tasktop``: every module of ``tasktop.cli.commands`` is one, found there.

A command module declares what the ``Command`` protocol names (the module itself is the
command, as memray's ``commands/`` classes are); nothing else lists the commands, so adding one
is adding one module.  The registry builds each command's parser (its ``--help``) and picks the
command from the first word: ``tasktop dump …`` is ``dump``; any other first word (a pid, an
option, a typo) goes to the default command, the live view, so ``tasktop 1234`` and ``tasktop``
need no subcommand and ``tasktop frobnicate`` is a bad pid, not an unknown command.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
from functools import lru_cache
from types import ModuleType
from typing import Protocol, Sequence, runtime_checkable

from .errors import EXIT_ERROR, EXIT_USAGE, CliError

#: The command of ``tasktop [ARGS]``: its parser is ``tasktop``'s own, and its name is no word
#: of the command line (``tasktop watch`` is a bad pid, as it always was).
DEFAULT = "watch"
PROGRAM = "tasktop"


@runtime_checkable
class Command(Protocol):
    """What a module of ``tasktop.cli.commands`` declares.

    It may also declare ``bug_status``, the exit status when tasktop itself fails during the
    command (default 1; ``check`` says 3, since its 1 means "a threshold was passed").
    """

    #: The word after ``tasktop`` (``tasktop dump``).
    name: str
    #: The first paragraph of its ``--help``.
    description: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's arguments on its own parser."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the command; return the exit status, or raise ``CliError`` to fail in one line."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # one line, not argparse's usage dump
        raise CliError(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


def discover(package: ModuleType) -> dict[str, Command]:
    """The commands of ``package``, by name: each of its modules not named ``_…``."""
    found: dict[str, Command] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if not isinstance(module, Command):
            raise TypeError(f"{module.__name__} is not a tasktop command: it must declare "
                            "name, description, add_arguments(parser) and run(args)")
        if module.name in found:
            raise ValueError(f"two commands named {module.name!r}: "
                             f"{found[module.name].__name__} and {module.__name__}")
        found[module.name] = module
    return found


@lru_cache(maxsize=None)
def commands() -> dict[str, Command]:
    """Every command of ``tasktop``, by name (the default one included)."""
    from . import commands as package

    return discover(package)


def choose(argv: Sequence[str]) -> tuple[Command, list[str]]:
    """The command that ``argv`` names, and the arguments left for its parser."""
    found = commands()
    if argv and argv[0] != DEFAULT and argv[0] in found:
        return found[argv[0]], list(argv[1:])
    return found[DEFAULT], list(argv)


def parser_for(command: Command) -> argparse.ArgumentParser:
    """The parser of ``command``; the default command's is ``tasktop``'s, with ``--version``."""
    if command.name == DEFAULT:
        parser = Parser(prog=PROGRAM, description=command.description)
        parser.add_argument("--version", action="version", version=f"{PROGRAM} {_version()}")
    else:
        parser = Parser(prog=f"{PROGRAM} {command.name}", description=command.description)
    command.add_arguments(parser)
    return parser


def bug_status(command: Command | None) -> int:
    """The exit status when tasktop itself fails while running ``command``."""
    return int(getattr(command, "bug_status", EXIT_ERROR))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tasktop")
    except Exception:
        return "unknown"
