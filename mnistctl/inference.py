"""Predictor: runs a registered version on (N, 28, 28) pixel arrays and returns class probabilities.

The fast path is the version's ``model.tflite`` through LiteRT (``ai_edge_litert``): about 0.2 s to
start against 6-8 s for TensorFlow. Where LiteRT is not installed, or a version has no .tflite, it
falls back to Keras. Both give the same digits (tested).
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING

import numpy as np

from mnistctl.tf_runtime import quiet_native_output

if TYPE_CHECKING:
    from mnistctl.registry import ModelVersion, Registry

BATCH_SIZE = 256  # bounds activation memory (the CNN needs ~0.2 MB per image)
BACKENDS = ("auto", "litert", "keras")


def litert_available() -> bool:
    return importlib.util.find_spec("ai_edge_litert") is not None


class Predictor:
    """Class probabilities from one registered version."""

    def __init__(self, registry: Registry, version: ModelVersion, backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}")
        version.check_usable()
        if backend == "auto":
            backend = "litert" if "model.tflite" in version.artifacts and litert_available() else "keras"
        self.version = version
        self.backend = backend
        self._registry = registry
        self._interpreter = None
        self._model = None
        self._batch = 0

    def _run_litert(self, batch: np.ndarray) -> np.ndarray:
        if self._interpreter is None:
            from ai_edge_litert.interpreter import Interpreter

            with quiet_native_output():  # LiteRT announces its XNNPACK delegate on stderr
                self._interpreter = Interpreter(
                    model_content=self._registry.artifact(self.version, "model.tflite"),
                    num_threads=os.cpu_count() or 1,  # LiteRT defaults to one thread
                )
        interpreter = self._interpreter
        source = interpreter.get_input_details()[0]
        if len(batch) != self._batch:
            interpreter.resize_tensor_input(source["index"], [len(batch), 28, 28])
            with quiet_native_output():
                interpreter.allocate_tensors()
            self._batch = len(batch)
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()

    def _run_keras(self, batch: np.ndarray) -> np.ndarray:
        if self._model is None:
            from mnistctl.model_io import load_version_model

            self._model = load_version_model(self._registry, self.version)
        return np.asarray(self._model(batch, training=False))

    def predict(self, images: np.ndarray, *, calibrate: bool = True) -> np.ndarray:
        """Probabilities (N, 10) for pixels (N, 28, 28) in 0..255 (any numeric dtype).

        They are calibrated with the version's temperature unless ``calibrate`` is false (the network's
        own softmax, which is what a temperature is fitted to).
        """
        from mnistctl.calibration import calibrated

        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"expected (N, 28, 28) images, got {images.shape}")
        run = self._run_litert if self.backend == "litert" else self._run_keras
        outputs = [run(images[start : start + BATCH_SIZE]) for start in range(0, len(images), BATCH_SIZE)]
        probabilities = np.concatenate(outputs) if outputs else np.zeros((0, 10), np.float32)
        return calibrated(probabilities, self.version.temperature) if calibrate else probabilities
