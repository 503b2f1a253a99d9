"""Turning a Keras model into the bytes we store and export: .keras, .tflite, .h5, SavedModel.

TensorFlow's converter prints pages of notices (some from C++, straight to the file descriptors);
they are silenced unless ``MNISTCTL_DEBUG`` is set.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistctl.tf_runtime import import_keras, quiet_native_output

if TYPE_CHECKING:
    import keras


def weights_sha256(model: keras.Model) -> str:
    """sha256 over every weight array (shape, dtype, bytes) in layer order: equal iff the weights are."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(f"{array.shape}|{array.dtype}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def keras_bytes(model: keras.Model) -> bytes:
    """The model (architecture, weights, optimizer state) in the native .keras format."""
    with tempfile.TemporaryDirectory(prefix="mnistctl-") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def tflite_bytes(model: keras.Model) -> bytes:
    """The model as a float32 .tflite flatbuffer with a dynamic batch dimension."""
    import_keras()
    import tensorflow as tf

    with quiet_native_output():
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        return converter.convert()


def load_keras_bytes(data: bytes, *, safe_mode: bool = True) -> keras.Model:
    """Load a .keras model from bytes (``safe_mode`` refuses Lambda layers and other code)."""
    keras = import_keras()

    with tempfile.TemporaryDirectory(prefix="mnistctl-") as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(data)
        return keras.models.load_model(path, safe_mode=safe_mode, compile=False)


def layer_table(model: keras.Model) -> list[dict[str, Any]]:
    """What ``model.summary()`` shows, as data: name, type, output shape, parameter count."""
    rows = []
    for layer in model.layers:
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            shape = None
        rows.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": list(shape) if shape is not None else None,
                "params": int(layer.count_params()),
            }
        )
    return rows
