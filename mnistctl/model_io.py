"""Moving models in and out of the registry: export to .keras/.h5/.tflite/SavedModel, import files.

Imports are loaded with Keras' safe mode (a Lambda layer or other embedded code is refused unless
the user says ``--unsafe``), checked to map 28x28 digits to 10 probabilities, and wrapped so that
they take raw 0..255 pixels like every other registered model.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistctl.errors import DataMissingError, MnistctlError, UsageError
from mnistctl.fsutil import atomic_write_bytes, temp_path_for
from mnistctl.registry import ModelVersion, Registry

if TYPE_CHECKING:
    import keras

ACCEPTED_INPUTS = {(28, 28), (784,), (28, 28, 1)}


class UnsafeModelError(MnistctlError):
    """The file embeds code (a Lambda layer, a custom object) that safe mode refuses to run."""

    default_hint = "if you trust the file, pass --unsafe"


class InvalidModelError(MnistctlError):
    """The file is not a Keras model we can use for MNIST."""


def load_version_model(registry: Registry, version: ModelVersion) -> keras.Model:
    """The Keras model of a registered version."""
    from mnistctl.convert import load_keras_bytes

    return load_keras_bytes(registry.artifact(version, "model.keras"), safe_mode=not version.params.get("unsafe"))


def export_model(registry: Registry, version: ModelVersion, fmt: str, output: Path) -> None:
    """Write ``version`` to ``output`` in ``fmt``; the target appears whole or not at all."""
    if fmt in ("keras", "tflite"):
        atomic_write_bytes(output, registry.artifact(version, f"model.{fmt}"))
        return
    from mnistctl.tf_runtime import quiet_native_output

    model = load_version_model(registry, version)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_path_for(output)
    try:
        with quiet_native_output():
            if fmt == "h5":
                staging = staging.with_suffix(".h5")  # Keras picks the format from the suffix
                model.save(staging)
            elif fmt == "savedmodel":
                model.export(str(staging), format="tf_saved_model")
            else:
                raise UsageError(f"unknown format {fmt!r}", hint="use keras, h5, tflite or savedmodel")
        if output.is_dir():
            shutil.rmtree(output)
        staging.replace(output)
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)


def _load_user_model(path: Path, unsafe: bool) -> keras.Model:
    from mnistctl.tf_runtime import import_keras, quiet_native_output

    keras = import_keras()
    try:
        with quiet_native_output():
            return keras.models.load_model(path, safe_mode=not unsafe, compile=False)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError… for bad files
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "unsafe" in text.lower():
            raise UnsafeModelError(f"{path} contains a Lambda layer or other code; refused in safe mode") from None
        first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise InvalidModelError(f"cannot load {path} as a Keras model: {first_line}") from None


def _wrap_for_raw_pixels(model: keras.Model) -> keras.Model:
    """A model taking (N, 28, 28) pixels in 0..255, whatever ``model`` takes."""
    import keras

    input_shape = tuple(model.inputs[0].shape[1:])
    output_shape = tuple(model.outputs[0].shape[1:])
    if input_shape not in ACCEPTED_INPUTS or output_shape != (10,):
        raise InvalidModelError(
            f"the model maps {input_shape} to {output_shape}; expected 28x28 (or 784) pixels to 10 classes"
        )
    takes_raw = bool(model.layers) and isinstance(model.layers[0], keras.layers.Rescaling)
    if takes_raw and input_shape == (28, 28):
        return model
    pixels = keras.Input(shape=(28, 28), name="pixels")
    # Models from the classic tutorials expect pixels / 255; one with its own Rescaling takes them raw.
    x = pixels if takes_raw else keras.layers.Rescaling(1.0 / 255, name="scale")(pixels)
    if input_shape != (28, 28):
        x = keras.layers.Reshape(input_shape, name="to_model_input")(x)
    return keras.Model(pixels, model(x), name=model.name)


def _test_metrics(model: keras.Model) -> dict[str, Any]:
    import numpy as np

    from mnistctl.data.loader import load

    try:
        images, labels = load("test")
    except DataMissingError:
        return {}
    probabilities = model.predict(images.astype(np.float32), batch_size=1024, verbose=0)
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "test_accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "test_loss": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
    }


def import_model_file(path: Path, *, name: str, unsafe: bool = False) -> ModelVersion:
    """Load, check, wrap, evaluate (when MNIST is downloaded) and register a model file."""
    from mnistctl.convert import keras_bytes, layer_table, tflite_bytes, weights_sha256
    from mnistctl.data.loader import fingerprint
    from mnistctl.registry import check_new_name
    from mnistctl.training import environment

    check_new_name(name)
    if not path.is_file():
        raise UsageError(f"{path} does not exist or is not a file")
    if path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise UsageError(f"{path} is not a .keras or .h5 file")
    model = _wrap_for_raw_pixels(_load_user_model(path, unsafe))
    try:
        data_fingerprint = fingerprint()
    except DataMissingError:
        data_fingerprint = ""
    artifacts = {"model.keras": keras_bytes(model), "model.tflite": tflite_bytes(model)}
    return Registry().register(
        name=name,
        arch="imported",
        params={
            "source": str(path.resolve()),
            "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "unsafe": unsafe,
            "total_params": int(model.count_params()),
        },
        metrics=_test_metrics(model),
        layers=layer_table(model),
        weights_sha256=weights_sha256(model),
        data_fingerprint=data_fingerprint,
        environment=environment(),
        artifacts=artifacts,
    )
