"""Error types shared by every pipectl module, each mapped to a CLI exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a check or verification failed (e.g. `audit verify`)
EXIT_BAD_INPUT = 2  # bad flags, bad config, bad files: nothing was changed
EXIT_BLOCKED = 3  # the gate said no


class PipectlError(Exception):
    """An error with a one-line, user-facing message and an exit code."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(PipectlError):
    """The caller asked for something invalid; nothing was written."""


class ConfigError(BadInput):
    """pipeline.yaml (or another input file) is invalid; the message names file and key."""
