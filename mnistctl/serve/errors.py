"""Errors as HTTP answers: an ``ApiError`` carries its status, and the registry's errors map onto statuses.

A response never carries a traceback or a server-side path: what the client cannot act on is logged instead.
"""

from __future__ import annotations

import logging

from mnistctl.errors import MnistctlError, UsageError

log = logging.getLogger("mnistctl.serve")


class ApiError(Exception):
    """A request answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def model_error(exc: MnistctlError) -> ApiError:
    """The answer for a model that cannot be used: 400 for a malformed ref, 404 for one that names nothing usable
    (unknown, removed, damaged, no .tflite), 503 when the registry itself cannot be read (logged: its message
    names files on the server)."""
    from mnistctl.registry import DamagedVersionError, EmptyRegistryError, ModelNotFoundError

    if isinstance(exc, UsageError):
        return ApiError(400, f"invalid model reference: {exc.message}")
    if isinstance(exc, ModelNotFoundError | EmptyRegistryError | DamagedVersionError):
        return ApiError(404, exc.message)
    log.error("model registry unavailable: %s", exc)
    return ApiError(503, "the model registry is unavailable; see the server's log")
