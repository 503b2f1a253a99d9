"""Errors that mnistctl raises on purpose, each with its exit code and the hint that fixes it.

The CLI turns these into one line on stderr (see ``mnistctl.cli._errors``); the library only raises.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, shared by every command."""

    OK = 0
    RUNTIME = 1
    USAGE = 2
    INTERRUPTED = 130
    TERMINATED = 143  # 128 + SIGTERM: `train` stopped by `kill`, its run kept for --resume


class MnistctlError(Exception):
    """Base class: a message for the user plus an optional hint naming the fix."""

    exit_code: ExitCode = ExitCode.RUNTIME
    default_hint: str | None = None

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(MnistctlError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = ExitCode.USAGE


class DataMissingError(MnistctlError):
    """The data set is not in the home folder (or is incomplete)."""

    default_hint = 'run "mnistctl download" first'


class InvalidDataError(MnistctlError):
    """A data file exists but its content is not valid MNIST-style data."""


class DownloadError(MnistctlError):
    """Every mirror failed for at least one file."""
