"""Ctrl-C, remembered: a KeyboardInterrupt that library code swallows still ends the command as interrupted.

Python raises KeyboardInterrupt wherever the main thread happens to be. When that is inside TensorFlow's
import or Keras' start-up, library code may catch it, or leave a half-built object that fails later with an
unrelated error (``AttributeError: ... _type_spec``), or carry on training for thousands of epochs. The CLI
installs this handler: it raises KeyboardInterrupt as Python's own does, and also records that the user
asked to stop, so that the CLI reports any later failure as "interrupted" (exit 130) and training stops at
its next batch.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_requested = False


def install() -> None:
    """Use this module's SIGINT handler where Python's default one is in place (main thread only)."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _handler)


def requested() -> bool:
    """Whether Ctrl-C (SIGINT) arrived since the handler was installed."""
    return _requested


def _handler(signum: int, frame: Any) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt
