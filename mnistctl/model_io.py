"""Moving models in and out of the registry: export to .keras/.h5/.tflite/SavedModel, import files.

Imports are looked at before Keras opens them (see ``model_files``), loaded with Keras' safe mode (a
Lambda layer or other embedded code is refused unless the user says ``--unsafe``), checked to map 28x28
digits to 10 finite probabilities (a model ending in logits gets a softmax), and wrapped so that they
take raw 0..255 pixels like every other registered model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistctl.errors import DataMissingError, MnistctlError, UsageError
from mnistctl.fsutil import atomic_write_bytes, sha256_file, temp_path_for
from mnistctl.model_files import H5_SUFFIXES, KERAS_SUFFIXES, InvalidModelError, check_model_file
from mnistctl.registry import ModelVersion, Registry

if TYPE_CHECKING:
    import keras

ACCEPTED_INPUTS = {(28, 28), (784,), (28, 28, 1)}
# float32 softmax rows sum to 1 within ~1e-6; this leaves room for the TFLite converter and odd layers.
PROBABILITY_TOLERANCE = 1e-3


class UnsafeModelError(MnistctlError):
    """The file embeds code (a Lambda layer, a custom object) that safe mode refuses to run."""

    default_hint = "if you trust the file, pass --unsafe"


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
        if "truncated file" in text:  # h5py's words for an HDF5 file shorter than its superblock says
            raise InvalidModelError(f"{path} is a truncated .h5 file", hint="copy or export it again") from None
        first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise InvalidModelError(f"cannot load {path} as a Keras model: {first_line}") from None


def _check_signature(model: keras.Model, path: Path) -> None:
    """One input of 28x28 (or 784) pixels, one output of 10 values."""
    if len(model.inputs) != 1:
        raise InvalidModelError(f"{path} has {len(model.inputs)} inputs; expected one input of 28x28 pixels")
    if len(model.outputs) != 1:
        raise InvalidModelError(
            f"{path} has {len(model.outputs)} outputs; expected one output of 10 class probabilities"
        )
    input_shape = tuple(model.inputs[0].shape[1:])
    output_shape = tuple(model.outputs[0].shape[1:])
    if input_shape not in ACCEPTED_INPUTS or output_shape != (10,):
        raise InvalidModelError(
            f"{path} maps {input_shape} to {output_shape}; expected 28x28 (or 784) pixels to 10 classes"
        )


def check_finite_weights(model: keras.Model, source: Path | str) -> None:
    """Refuse NaN or infinite weights (trainable or not: a BatchNorm's moving variance counts too).

    ``source`` names the model in the message (a file, a training run).
    """
    import numpy as np

    for variable in model.weights:
        if not np.isfinite(variable.numpy()).all():
            raise InvalidModelError(
                f"{source} has non-finite weights (NaN or infinity) in {variable.path}",
                hint="the training that wrote it diverged; use an earlier checkpoint or train it again",
            )


def _output_layer(model: keras.Model) -> Any:
    """The layer that computes the model's output, looking inside nested models."""
    import keras

    history = getattr(model.outputs[0], "_keras_history", None)
    layer = history.operation if history is not None else model.layers[-1]
    return _output_layer(layer) if isinstance(layer, keras.Model) else layer


def ends_in_logits(model: keras.Model) -> bool:
    """Whether the output comes straight from a linear layer (``Dense(10)`` with no activation): logits."""
    activation = getattr(_output_layer(model), "activation", None)
    return getattr(activation, "__name__", None) == "linear"


def _takes_raw_pixels(model: keras.Model) -> bool:
    """Whether the model scales its own input: its first layer (past the input) is a ``Rescaling``."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return bool(layers) and isinstance(layers[0], keras.layers.Rescaling)


def _wrap_for_raw_pixels(model: keras.Model, *, add_softmax: bool) -> keras.Model:
    """A model taking (N, 28, 28) pixels in 0..255 and giving probabilities, whatever ``model`` takes."""
    import keras

    input_shape = tuple(model.inputs[0].shape[1:])
    takes_raw = _takes_raw_pixels(model)
    if takes_raw and input_shape == (28, 28) and not add_softmax:
        return model
    pixels = keras.Input(shape=(28, 28), name="pixels")
    # Models from the classic tutorials expect pixels / 255; one with its own Rescaling takes them raw.
    x = pixels if takes_raw else keras.layers.Rescaling(1.0 / 255, name="scale")(pixels)
    if input_shape != (28, 28):
        x = keras.layers.Reshape(input_shape, name="to_model_input")(x)
    outputs = model(x)
    if add_softmax:
        outputs = keras.layers.Softmax(name="probabilities")(outputs)
    return keras.Model(pixels, outputs, name=model.name)


def _probe_images() -> Any:
    """A few 28x28 images spanning what a model will meet: black, white, noise, a stroke, pixels 0..255."""
    import numpy as np

    black, white = np.zeros((1, 28, 28)), np.full((1, 28, 28), 255.0)
    noise = np.random.default_rng(0).uniform(0, 255, size=(4, 28, 28))
    stroke = np.zeros((1, 28, 28))
    stroke[0, 4:24, 12:16] = 255.0
    return np.concatenate([black, white, noise, stroke]).astype(np.float32)


def _check_probabilities(probabilities: Any, path: Path, inputs: str) -> None:
    """Refuse outputs that are not probabilities: NaN or infinite, negative, or rows not summing to 1."""
    import numpy as np

    probabilities = np.asarray(probabilities, dtype=np.float64)
    if not np.isfinite(probabilities).all():
        reason = "NaN or infinity"
    elif probabilities.min() < -PROBABILITY_TOLERANCE:
        reason = f"negative values (down to {probabilities.min():.3g})"
    else:
        sums = probabilities.sum(axis=1)
        if np.abs(sums - 1).max() <= PROBABILITY_TOLERANCE:
            return
        reason = f"rows summing to {sums.min():.3g}..{sums.max():.3g} instead of 1"
    raise InvalidModelError(
        f"{path} gives outputs that are not 10 class probabilities: {reason} on {inputs}",
        hint="end the model with a softmax (a model ending in a linear layer gets one added)",
    )


def _checked_model(path: Path, unsafe: bool) -> tuple[keras.Model, bool]:
    """The file's model, checked and wrapped to take raw pixels; and whether a softmax had to be added."""
    model = _load_user_model(path, unsafe)
    _check_signature(model, path)
    check_finite_weights(model, path)
    add_softmax = ends_in_logits(model)
    model = _wrap_for_raw_pixels(model, add_softmax=add_softmax)
    _check_probabilities(model.predict(_probe_images(), verbose=0), path, "probe images")
    return model, add_softmax


def _test_metrics(model: keras.Model, path: Path) -> dict[str, Any]:
    """Accuracy and loss on the MNIST test split when it is downloaded (also a last check of the outputs)."""
    import numpy as np

    from mnistctl.data.loader import load
    from mnistctl.metrics import evaluate

    try:
        images, labels = load("test")
    except DataMissingError:
        return {}
    probabilities = model.predict(images.astype(np.float32), batch_size=1024, verbose=0)
    _check_probabilities(probabilities, path, "the MNIST test images")
    result = evaluate(labels, probabilities)
    return {"test_accuracy": result.accuracy, "test_loss": result.loss}


def import_notes(version: ModelVersion) -> list[str]:
    """What a person should know about an imported version (for the CLI to show on stderr)."""
    notes = []
    if version.params.get("added_softmax"):
        notes.append(
            f"note: {version.params.get('source')} ends in a linear layer (logits); "
            "a softmax was added so that it gives probabilities"
        )
    return notes


def import_model_file(path: Path, *, name: str, unsafe: bool = False) -> ModelVersion:
    """Check, load, wrap, evaluate (when MNIST is downloaded) and register a model file."""
    from mnistctl.convert import keras_bytes, layer_table, tflite_bytes, weights_sha256
    from mnistctl.data.loader import fingerprint
    from mnistctl.registry import check_new_name
    from mnistctl.training import environment

    check_new_name(name)
    if not path.is_file():
        raise UsageError(f"{path} does not exist or is not a file")
    if path.suffix.lower() not in (*KERAS_SUFFIXES, *H5_SUFFIXES):
        raise UsageError(f"{path} is not a .keras or .h5 file")
    check_model_file(path)  # before Keras reads a byte of it
    model, added_softmax = _checked_model(path, unsafe)
    metrics = _test_metrics(model, path)
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
            "source_sha256": sha256_file(path),
            "unsafe": unsafe,
            "added_softmax": added_softmax,
            "total_params": int(model.count_params()),
        },
        metrics=metrics,
        layers=layer_table(model),
        weights_sha256=weights_sha256(model),
        data_fingerprint=data_fingerprint,
        environment=environment(),
        artifacts=artifacts,
    )
