"""Moving models in and out of the registry: export to .keras/.h5/.tflite/SavedModel, import files.

Imports are looked at before Keras opens them (see ``model_files``), loaded with Keras' safe mode (a
Lambda layer or other embedded code is refused unless the user says ``--unsafe``), checked to map 28x28
digits to 10 finite probabilities (a model ending in logits gets a softmax), and wrapped so that they
take raw 0..255 pixels like every other registered model.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistctl.errors import DataMissingError, MnistctlError, UsageError
from mnistctl.fsutil import atomic_write_bytes, check_output_file, fsync_dir, sha256_file, temp_path_for
from mnistctl.model_files import H5_SUFFIXES, KERAS_SUFFIXES, InvalidModelError, check_model_file
from mnistctl.registry import ModelVersion, Registry

if TYPE_CHECKING:
    import keras

ACCEPTED_INPUTS = {(28, 28), (784,), (28, 28, 1)}
# float32 softmax rows sum to 1 within ~1e-6; this leaves room for the TFLite converter and odd layers.
# float16 softmaxes sum to 1 only within a few 1e-3 (10 values, each rounded to 11 bits); non-probabilities
# (sigmoid, ReLU, log-softmax outputs) miss by far more.
PROBABILITY_TOLERANCE = 1e-2
# The names each file format must end in: Keras loads a model by its name's exact (lowercase) suffix.
EXPORT_SUFFIXES = {"keras": KERAS_SUFFIXES, "h5": H5_SUFFIXES, "tflite": (".tflite",)}
# Everything a SavedModel export writes (TensorFlow's names). A folder holding anything else is not replaced.
SAVEDMODEL_FILES = frozenset({"saved_model.pb", "saved_model.pbtxt", "fingerprint.pb", "keras_metadata.pb"})
SAVEDMODEL_FOLDERS = frozenset({"variables", "assets", "assets.extra"})


class UnsafeModelError(MnistctlError):
    """The file embeds code (a Lambda layer, a custom object) that safe mode refuses to run."""

    default_hint = "if you trust the file, pass --unsafe"


def load_version_model(registry: Registry, version: ModelVersion) -> keras.Model:
    """The Keras model of a registered version."""
    from mnistctl.convert import load_keras_bytes

    return load_keras_bytes(registry.artifact(version, "model.keras"), safe_mode=not version.params.get("unsafe"))


def _export_format(output: Path, fmt: str | None) -> str:
    """The format to write to ``output``: ``fmt``, which its name must agree with, or (``None``) read from its suffix.

    A file whose name contradicts its content fails later, far from the cause (Keras refuses a zip not named .keras,
    ``models import`` a flatbuffer named .keras), so a contradiction is refused here.
    """
    named = next((known for known, suffixes in EXPORT_SUFFIXES.items() if output.name.endswith(suffixes)), None)
    if fmt is None:
        if named is None:
            raise UsageError(
                f"cannot tell the format from the name {output.name!r}",
                hint="end it in .keras, .h5 or .tflite, or pass --format (--format savedmodel writes a folder)",
            )
        return named
    if fmt not in (*EXPORT_SUFFIXES, "savedmodel"):
        raise UsageError(f"unknown format {fmt!r}", hint="use keras, h5, tflite or savedmodel")
    if fmt == "savedmodel" and named is not None:
        raise UsageError(
            f"{output} is named like a .{named} file, but --format savedmodel writes a folder",
            hint=f"give a folder name without a model file suffix, or pass --format {named}",
        )
    if fmt != "savedmodel" and named != fmt:
        suffixes = " or ".join(EXPORT_SUFFIXES[fmt])
        other = f", or pass --format {named}" if named else ""
        raise UsageError(f"{output} does not end in {suffixes}, as --format {fmt} files must", hint=f"rename it{other}")
    return fmt


def check_export_target(output: Path, fmt: str | None, *, force: bool, home: Path) -> str:
    """The format to export to ``output`` in (see ``_export_format``), once ``output`` is known to be writable.

    Refused: a path in (or holding) the home folder or the builtin model's folder, even with ``force``; an existing
    one without ``force``; a folder that holds more than an earlier SavedModel export.
    """
    what = "folder" if fmt == "savedmodel" else "file"
    if output.name in ("", ".", ".."):
        raise UsageError(f"no {what} name in {str(output)!r}", hint=f"give a new {what} name")
    _refuse_protected(output, home)
    fmt = _export_format(output, fmt)
    if fmt == "savedmodel":
        _check_savedmodel_target(output, force=force)
        return fmt
    check_output_file(output)
    if (output.exists() or output.is_symlink()) and not force:
        raise UsageError(f"{output} exists", hint="pass --force to overwrite it")
    return fmt


def _refuse_protected(output: Path, home: Path) -> None:
    """Export never writes into, or over a folder holding, the registry, its blobs or the builtin model's files.

    Paths are compared with symbolic links resolved: ``link/registry.db`` is refused when ``link`` points home.
    """
    from mnistctl import builtin

    target = output.resolve()
    for root, what in ((home.resolve(), "mnistctl's home folder"), (builtin.FOLDER, "the builtin model's folder")):
        if target == root or root in target.parents:
            where = f"is {what}" if target == root else f"is inside {what} ({root})"
            raise UsageError(f"{output} {where}", hint="export to a path outside it (--force does not change this)")
        if target in root.parents:
            raise UsageError(f"{output} holds {what} ({root})", hint="export to a new folder elsewhere")


def _check_savedmodel_target(output: Path, *, force: bool) -> None:
    if output.is_symlink():
        raise UsageError(f"{output} is a symbolic link", hint="give a new folder name, or the folder it points to")
    if not output.exists():
        check_output_file(output)  # a parent that is a file
        return
    if not output.is_dir():
        raise UsageError(f"{output} is a file; a SavedModel is written as a folder", hint="give a new folder name")
    if not force:
        raise UsageError(f"{output} exists", hint="pass --force to overwrite it")
    problem = savedmodel_problem(output)
    if problem is not None:
        raise UsageError(
            f"{output} is not a SavedModel export ({problem}); --force replaces only an earlier SavedModel export",
            hint="give a new folder name",
        )


def savedmodel_problem(folder: Path) -> str | None:
    """Why ``folder`` is not just a SavedModel export (so that replacing it could lose someone's files), or None."""
    entries = sorted(folder.iterdir())
    if not any(path.name in ("saved_model.pb", "saved_model.pbtxt") for path in entries):
        return "it has no saved_model.pb"
    foreign = []
    for path in entries:
        if path.is_symlink():
            foreign.append(path.name)
        elif path.name in SAVEDMODEL_FILES and path.is_file():
            continue
        elif path.name in SAVEDMODEL_FOLDERS and path.is_dir():
            # variables/ holds the index and data shards; assets/ stays empty in a Keras export.
            foreign += [
                f"{path.name}/{inner.name}"
                for inner in sorted(path.iterdir())
                if not (
                    path.name == "variables"
                    and inner.is_file()
                    and not inner.is_symlink()
                    and (inner.name == "variables.index" or inner.name.startswith("variables.data-"))
                )
            ]
        else:
            foreign.append(path.name)
    if not foreign:
        return None
    shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    return f"it also holds {shown}"


def export_notes(version: ModelVersion) -> list[str]:
    """What a person should know about an exported version (for the CLI to show on stderr)."""
    temperature = version.temperature
    if abs(temperature - 1.0) < 1e-9:
        return []
    return [
        "note: the exported model gives uncalibrated probabilities; "
        f"mnistctl's calibration (temperature {temperature:.3f}) is stored in the registry only"
    ]


def export_model(registry: Registry, version: ModelVersion, fmt: str, output: Path, *, force: bool = False) -> None:
    """Write ``version`` to ``output`` in ``fmt``; the target appears whole or not at all.

    ``force`` replaces an existing file, or a folder that holds nothing but an earlier SavedModel export; nothing
    inside the home folder is ever written (see ``check_export_target``).
    """
    check_export_target(output, fmt, force=force, home=registry.root)
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
            else:
                model.export(str(staging), format="tf_saved_model")
        # Checked again: the target may have changed while the model was written.
        check_export_target(output, fmt, force=force, home=registry.root)
        if fmt == "h5":
            staging.replace(output)
        else:
            _replace_folder(staging, output)
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)


def _replace_folder(staging: Path, output: Path) -> None:
    """Move ``staging`` to ``output``; an old ``output`` is set aside first and deleted last, so that a failure at
    any step leaves the old folder or the new one at ``output``, never neither."""
    if not output.exists():
        staging.rename(output)
    else:
        aside = temp_path_for(output)
        output.rename(aside)
        try:
            staging.rename(output)
        except BaseException:
            aside.rename(output)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    fsync_dir(output.parent)


@contextlib.contextmanager
def _lower_case_suffix(path: Path) -> Iterator[Path]:
    """``path``, or a symlink to it named with a lower-case suffix: Keras picks the format from the suffix and
    knows ".keras" and ".h5" only, so "MODEL.H5" (as Windows tools like to write) would be refused."""
    if path.suffix == path.suffix.lower():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="mnistctl-import-") as folder:
        alias = Path(folder) / f"model{path.suffix.lower()}"
        try:
            alias.symlink_to(path.resolve())
        except OSError:  # no symlinks here (Windows without the privilege): the file is small, copy it
            shutil.copyfile(path, alias)
        yield alias


def _load_user_model(path: Path, unsafe: bool) -> keras.Model:
    from mnistctl.tf_runtime import import_keras, quiet_native_output

    keras = import_keras()
    try:
        with quiet_native_output(), _lower_case_suffix(path) as readable:
            return keras.models.load_model(readable, safe_mode=not unsafe, compile=False)
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
    try:
        model.inputs  # noqa: B018 -- a Sequential saved without an Input layer has none, and says so by raising
    except (AttributeError, ValueError):
        raise InvalidModelError(
            f"{path} has no input shape (a Sequential model saved before it was built)",
            hint="start the model with keras.Input((28, 28)), build it, and save it again",
        ) from None
    if not model.inputs or not model.outputs:
        raise InvalidModelError(f"{path} has no inputs or no outputs; expected 28x28 pixels to 10 classes")
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


def nonfinite_weight(model: keras.Model) -> str | None:
    """The path of the first variable holding NaN or infinity (trainable or not: a BatchNorm's moving variance
    counts too), or None when every weight is finite."""
    import numpy as np

    return next((v.path for v in model.weights if not np.isfinite(np.asarray(v.numpy())).all()), None)


def check_finite_weights(model: keras.Model, source: Path | str) -> None:
    """Refuse NaN or infinite weights; ``source`` names the model in the message (a file, a training run)."""
    variable = nonfinite_weight(model)
    if variable is not None:
        raise InvalidModelError(
            f"{source} has non-finite weights (NaN or infinity) in {variable}",
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
        reason = f"rows summing to {sums.min():.4f}..{sums.max():.4f} instead of 1"
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
    if version.params.get("tflite_error"):
        notes.append(
            "note: it could not be converted to TFLite, so predict runs it with Keras (a slower start); "
            f"the converter said: {version.params['tflite_error']}"
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
    artifacts = {"model.keras": keras_bytes(model)}
    tflite_error = None
    try:
        artifacts["model.tflite"] = tflite_bytes(model)
    except Exception as exc:  # the converter refuses some layers and dtypes (e.g. float16 MatMul); Keras runs them
        tflite_error = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return Registry().register(
        name=name,
        arch="imported",
        params={
            "source": str(path.resolve()),
            "source_sha256": sha256_file(path),
            "unsafe": unsafe,
            "added_softmax": added_softmax,
            "tflite_error": tflite_error,
            "total_params": int(model.count_params()),
        },
        metrics=metrics,
        layers=layer_table(model),
        weights_sha256=weights_sha256(model),
        data_fingerprint=data_fingerprint,
        environment=environment(),
        artifacts=artifacts,
    )
