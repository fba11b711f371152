"""The ``tasktop`` command.

    tasktop                     pick a probed process and watch it live
    tasktop PID | --socket P    watch one process live
    tasktop dump PID [--full] [--format text|json|folded|pprof] [-o FILE] [--socket P]
    tasktop check PID [--max-tasks N] [--max-growth PER_MIN] [--max-blocked S] [--max-lag MS]
    tasktop diff OLD.json NEW.json [--json]
    tasktop ls [--json]
    tasktop run [--] CMD ARGS…
    tasktop demo
    tasktop exporter [--port N] …

Each command is a module of ``tasktop.cli.commands`` (see ``registry``).  Every failure is one
line on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from . import registry
from .errors import CliError


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = None
    try:
        # The tasktop command itself is not a target, even when TASKTOP=1 is exported.
        import tasktop.probe

        tasktop.probe.stop()
        command, rest = registry.choose(argv)
        return command.run(registry.parser_for(command).parse_args(rest))
    except CliError as exc:
        print(f"tasktop: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as exc:  # a bug of ours: still one line, with a hint to report it
        print(f"tasktop: error: {exc.__class__.__name__}: {exc} (this is a bug in tasktop)",
              file=sys.stderr)
        return registry.bug_status(command)


if __name__ == "__main__":
    sys.exit(main())
