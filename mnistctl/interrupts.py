"""Ctrl-C and SIGTERM, remembered: an interrupt that library code swallows still ends the command as interrupted.

Python raises KeyboardInterrupt wherever the main thread happens to be. When that is inside TensorFlow's
import or Keras' start-up, library code may catch it, or leave a half-built object that fails later with an
unrelated error (``AttributeError: ... _type_spec``), or carry on training for thousands of epochs. The CLI
installs this handler: it raises KeyboardInterrupt as Python's own does, and also records that the user
asked to stop, so that the CLI reports any later failure as "interrupted" (exit 130) and training stops at
its next batch. ``train`` turns SIGTERM into :class:`Terminated` the same way (``request``), so a swallowed
``kill`` stops it too, and exits 143.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_requested: int | None = None  # the first stop signal that arrived, if any
_held = 0  # stop signals held back by the innermost ``deferred`` block so far


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python raises KeyboardInterrupt for Ctrl-C, so that every
    ``except KeyboardInterrupt`` that keeps a run resumable keeps it for ``kill`` too."""


def install() -> None:
    """Use this module's SIGINT handler where Python's default one is in place (main thread only)."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _handler)


def requested() -> bool:
    """Whether Ctrl-C (SIGINT) or, where ``train`` handles it, SIGTERM arrived since the handler was installed."""
    return _requested is not None


def request(signum: int) -> None:
    """Remember that ``signum`` asked the command to stop (the first one counts)."""
    global _requested
    if _requested is None:
        _requested = signum


def exception() -> KeyboardInterrupt:
    """The exception to raise for the stop that was requested: Terminated for SIGTERM, else KeyboardInterrupt."""
    return Terminated() if _requested == signal.SIGTERM else KeyboardInterrupt()


def stop_if_requested() -> None:
    """At a safe point: raise the stop that was requested (held back, or swallowed by a library), if any."""
    if requested():
        raise exception()


@contextmanager
def deferred() -> Iterator[None]:
    """Within, Ctrl-C (and SIGTERM, where a Python handler for it is installed) are only remembered, for code
    that checks :func:`requested` at a safe point to raise; a second one within raises at once, and one that
    came is raised on leaving. A stop already requested (swallowed before) is raised on entering.

    For ``model.fit``: raised at an arbitrary bytecode, the interrupt lands inside Python code that TensorFlow's
    C++ calls back (``TensorShape.__len__`` under ``TFE_Py_FastPathExecute``), which swallowed it: training
    ran on to its last epoch and exited 0. (Raised there, it may also be what made a few runs die of SIGSEGV
    instead of exiting 130; that was never reproduced.)
    """
    global _held
    stop_if_requested()
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        yield
        return
    saved = {}
    _held = 0
    try:  # (from the first swap on: a signal between two swaps must not leave one swapped for good)
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if callable(handler):  # SIGTERM's default (die at once) is left alone
                saved[signum] = handler
                signal.signal(signum, _remember)
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    stop_if_requested()


def _remember(signum: int, frame: Any) -> None:
    global _held
    _held += 1
    request(signum)
    if _held > 1:  # asked twice: the user means now
        raise exception()


def _handler(signum: int, frame: Any) -> None:
    request(signum)
    raise KeyboardInterrupt
