"""Importing TensorFlow and Keras quietly, once.

TensorFlow prints oneDNN notices, CUDA probes and absl warnings straight to the process's file
descriptors while it loads; users see none of it unless ``MNISTCTL_DEBUG`` is set.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from mnistctl.paths import debug_enabled


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Send fd 1 and 2 to /dev/null for the duration (Python and C++ writers alike)."""
    if debug_enabled():
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def import_keras() -> ModuleType:
    """``keras`` (with TensorFlow as its backend), imported without start-up chatter."""
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"]
    if not debug_enabled():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with quiet_native_output():
        import keras
        import tensorflow as tf

        # Once loaded, keep TensorFlow's Python-side logger to errors only.
        tf.get_logger().setLevel("ERROR")
    return keras
