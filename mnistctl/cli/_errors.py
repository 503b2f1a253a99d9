"""One table that turns exceptions into a one-line message and an exit code.

Most specific first; each message says what went wrong and what to do about it.
``MNISTCTL_DEBUG=1`` prints the traceback as well.
"""

from __future__ import annotations

import errno
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from mnistctl.cli._output import printable
from mnistctl.errors import ExitCode, MnistctlError
from mnistctl.interrupts import Terminated
from mnistctl.paths import ENV_HOME, debug_enabled


@dataclass(frozen=True)
class ErrorRule:
    """How to report one kind of exception."""

    matches: Callable[[BaseException], bool]
    message: Callable[[BaseException], str]
    exit_code: Callable[[BaseException], int]


def _is(kind: type[BaseException]) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, kind)


def _oserror_with(code: int) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, OSError) and exc.errno == code


def _filename(exc: BaseException) -> str:
    name = getattr(exc, "filename", None)
    return f" ({name})" if name else ""


def _runtime(_: BaseException) -> int:
    return ExitCode.RUNTIME


ERROR_TABLE: tuple[ErrorRule, ...] = (
    ErrorRule(_is(MnistctlError), str, lambda exc: int(exc.exit_code)),  # type: ignore[attr-defined]
    ErrorRule(_is(Terminated), lambda _: "terminated (SIGTERM)", lambda _: ExitCode.TERMINATED),
    ErrorRule(_is(KeyboardInterrupt), lambda _: "interrupted", lambda _: ExitCode.INTERRUPTED),
    ErrorRule(
        _oserror_with(errno.ENOSPC),
        lambda exc: f"no space left on device{_filename(exc)}; free some space or point {ENV_HOME} elsewhere",
        _runtime,
    ),
    ErrorRule(
        _oserror_with(errno.EROFS),
        lambda exc: f"read-only file system{_filename(exc)}; point {ENV_HOME} at a writable folder",
        _runtime,
    ),
    ErrorRule(
        _is(PermissionError),
        lambda exc: f"permission denied{_filename(exc)}; check its permissions or point {ENV_HOME} elsewhere",
        _runtime,
    ),
    ErrorRule(
        _is(OSError),
        lambda exc: f"{getattr(exc, 'strerror', None) or exc}{_filename(exc)}",
        _runtime,
    ),
    ErrorRule(
        _is(Exception),
        lambda exc: f"unexpected {type(exc).__name__}: {exc}; rerun with MNISTCTL_DEBUG=1 and report the traceback",
        _runtime,
    ),
)


def report(exc: BaseException) -> int:
    """Print ``Error: ...`` for ``exc`` on stderr and return the exit code to use."""
    if debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)
    for rule in ERROR_TABLE:
        if rule.matches(exc):
            # One line, whatever the message quotes: a file name with a newline must not start a second one.
            print(f"Error: {printable(rule.message(exc))}", file=sys.stderr)
            return rule.exit_code(exc)
    raise exc  # BaseExceptions we do not own (SystemExit) keep their meaning
