"""How a ``tasktop`` command fails: one line on stderr (``tasktop: error: …``) and an exit status.

The statuses are promised to scripts: 2 is a usage error, 1 a failure, and ``tasktop check``
keeps 1 for "a threshold was passed", so its own failures (no verdict) are 3.
"""
from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNCHECKED = 3  # tasktop check: no verdict (the probe cannot be reached)


class CliError(Exception):
    """A failure to report as one line: ``tasktop: error: …``."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status
