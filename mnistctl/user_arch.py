"""Your own architecture: ``train --arch FILE.py:FUNCTION`` or ``train --arch FILE.json``.

``FILE.py:FUNCTION`` names a Python file and a function in it; mnistctl runs the file (this is the user's own
code, run by design) and calls ``FUNCTION((28, 28), 10)``, which returns an uncompiled Keras model mapping
28x28 images to 10 classes. ``FILE.json`` is a model config as ``model.to_json()`` writes it (no weights, and
no code: it is loaded in Keras' safe mode).

The model sees pixels scaled to 0..1, as in every Keras tutorial: mnistctl puts its ``Rescaling(1/255)`` in
front (unless the model starts with a ``Rescaling`` layer of its own), so that the stored model and its .tflite
take raw 0..255 pixels as every other version does. A model ending in logits (a ``Dense(10)`` without
activation) gets a softmax added.

The file's text and sha256 travel with the run (``run.json``) and the version (``params["arch_source"]``):
a resumed run builds from the recorded text, never from the file as it is now.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistctl.errors import MnistctlError, UsageError

if TYPE_CHECKING:
    import keras

INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10
MAX_SOURCE_BYTES = 256 * 1024
KINDS = ("python", "keras-config")
SOURCE_KEYS = {"path", "kind", "function", "sha256", "text"}
# The name a user's file runs under (as a module: dataclasses and pickling want one in sys.modules).
MODULE_NAME = "mnistctl_user_arch"
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class UserArchError(MnistctlError):
    """The user's architecture file did not give a usable model (its code raised, or it built the wrong thing)."""


def is_user_arch(spec: str) -> bool:
    """Whether an ``--arch`` value names a file rather than a built-in architecture."""
    return spec.endswith(".json") or ".py" in spec or "/" in spec or "\\" in spec


def parse_spec(spec: str) -> tuple[Path, str | None]:
    """``FILE.py:FUNCTION`` -> (FILE.py, FUNCTION); ``FILE.json`` -> (FILE.json, None)."""
    if spec.endswith(".json"):
        return Path(spec), None
    path, colon, function = spec.rpartition(":")
    if not colon or not path.endswith(".py"):
        raise UsageError(
            f"--arch {spec}: name a Python file and its function, FILE.py:FUNCTION, or a model config FILE.json",
            hint="e.g. --arch model.py:build",
        )
    if not _FUNCTION_NAME.fullmatch(function):
        raise UsageError(f"--arch {spec}: {function!r} is not a Python function name", hint="e.g. model.py:build")
    return Path(path), function


def read_source(spec: str) -> dict[str, Any]:
    """The file ``spec`` names, read and fingerprinted: {"path", "kind", "function", "sha256", "text"}."""
    path, function = parse_spec(spec)
    if not path.is_file():
        raise UsageError(f"--arch {spec}: no such file {path}" if not path.exists() else f"{path} is not a file")
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise UsageError(
            f"{path} is {size:,} bytes; an architecture file may hold at most {MAX_SOURCE_BYTES:,}",
            hint="its text is stored with every version: keep data and weights out of it",
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserArchError(f"{path} is not UTF-8 text") from None
    return {
        "path": str(path.resolve()),
        "kind": "keras-config" if function is None else "python",
        "function": function,
        "sha256": hashlib.sha256(data).hexdigest(),
        "text": text,
    }


def source_problem(source: Any) -> str | None:
    """What is wrong with a recorded ``arch_source`` (from run.json, which may have been edited), or None."""
    if not isinstance(source, dict) or set(source) != SOURCE_KEYS:
        return "not an object of " + ", ".join(sorted(SOURCE_KEYS))
    if source["kind"] not in KINDS or not isinstance(source["path"], str) or not isinstance(source["text"], str):
        return "kind, path or text is not what mnistctl records"
    if (source["kind"] == "python") != isinstance(source["function"], str):
        return "function does not match kind"
    if hashlib.sha256(source["text"].encode("utf-8")).hexdigest() != source["sha256"]:
        return "text does not match its sha256"
    return None


def default_name(source: dict[str, Any]) -> str:
    """The model name when no --name is given: the file's stem ("model" for model.py), or "custom"."""
    from mnistctl.registry import check_new_name

    try:
        return check_new_name(Path(source["path"]).stem)
    except UsageError:
        return "custom"


def described(source: dict[str, Any]) -> str:
    """E.g. "/home/me/model.py:build" or "/home/me/config.json"."""
    return source["path"] + (f":{source['function']}" if source.get("function") else "")


def build_user_model(source: dict[str, Any]) -> keras.Model:
    """The model ``source`` describes, taking raw 0..255 pixels of shape (N, 28, 28) to 10 probabilities."""
    from mnistctl.tf_runtime import import_keras

    keras = import_keras()
    model = _python_model(source) if source["kind"] == "python" else _config_model(source)
    if not isinstance(model, keras.Model):
        raise UserArchError(f"{described(source)} returned {_kind_of(model)}, not a Keras model")
    return _wrapped(model, source)


def _kind_of(value: Any) -> str:
    return "None" if value is None else f"a {type(value).__module__}.{type(value).__qualname__}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _python_model(source: dict[str, Any]) -> Any:
    path, function = source["path"], source["function"]
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = path
    previous = sys.modules.get(MODULE_NAME)
    sys.modules[MODULE_NAME] = module
    try:
        try:
            exec(compile(source["text"], path, "exec"), module.__dict__)  # the user's own code, by design
        except Exception as exc:
            raise UserArchError(f"{path} failed to run: {_one_line(exc)}") from None
        builder = module.__dict__.get(function)
        if not callable(builder):
            functions = sorted(
                name
                for name, value in module.__dict__.items()
                if isinstance(value, types.FunctionType) and value.__module__ == MODULE_NAME
            )
            raise UsageError(
                f"{path} has no function {function!r}",
                hint="functions there: " + ", ".join(functions)
                if functions
                else "define def build(input_shape, num_classes)",
            )
        try:
            return builder(INPUT_SHAPE, NUM_CLASSES)
        except Exception as exc:
            raise UserArchError(f"{path}:{function}({INPUT_SHAPE}, {NUM_CLASSES}) raised {_one_line(exc)}") from None
    finally:
        if previous is None:
            sys.modules.pop(MODULE_NAME, None)
        else:
            sys.modules[MODULE_NAME] = previous


def _config_model(source: dict[str, Any]) -> Any:
    import keras

    path = source["path"]
    try:
        config = json.loads(source["text"])
    except ValueError as exc:
        raise UserArchError(f"{path} is not JSON: {exc}") from None
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise UserArchError(
            f"{path} is not a Keras model config",
            hint='write one with Path("config.json").write_text(model.to_json())',
        )
    try:
        return keras.models.model_from_json(source["text"])
    except Exception as exc:  # Keras raises TypeError, ValueError, KeyError… for configs it cannot build
        raise UserArchError(f"{path} is not a Keras model config Keras can build: {_one_line(exc)}") from None


def _wrapped(model: keras.Model, source: dict[str, Any]) -> keras.Model:
    """``model`` behind an (N, 28, 28) pixel input and Rescaling(1/255) (unless it scales its own input)."""
    import keras

    from mnistctl.model_io import _takes_raw_pixels, ends_in_logits

    where = described(source)
    takes_raw = _takes_raw_pixels(model)
    pixels = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = pixels if takes_raw else keras.layers.Rescaling(1.0 / 255, name="scale")(pixels)
    try:
        outputs = model(x)
    except Exception as exc:
        raise UserArchError(f"{where}: the model cannot take {INPUT_SHAPE} images: {_one_line(exc)}") from None
    if not isinstance(outputs, keras.KerasTensor) or tuple(outputs.shape[1:]) != (NUM_CLASSES,):
        shape = tuple(outputs.shape[1:]) if isinstance(outputs, keras.KerasTensor) else _kind_of(outputs)
        raise UserArchError(
            f"{where}: the model's output has shape {shape}; expected ({NUM_CLASSES},), one value per class",
            hint=f"end it with Dense(num_classes, activation='softmax') (num_classes is {NUM_CLASSES})",
        )
    if ends_in_logits(model):
        outputs = keras.layers.Softmax(name="probabilities")(outputs)
    return keras.Model(pixels, outputs, name=model.name)


def check_user_model(source: dict[str, Any]) -> keras.Model:
    """Build the model once before a run starts, and check that it saves and loads back as a .keras file
    (checkpoints, --resume and predict need that): a custom layer class defined in the file cannot."""
    model = build_user_model(source)
    from mnistctl.convert import keras_bytes, load_keras_bytes

    try:
        load_keras_bytes(keras_bytes(model))
    except Exception as exc:
        raise UserArchError(
            f"{described(source)}: the model does not load back from a .keras file: {_one_line(exc)}",
            hint="build it from Keras' own layers (custom layer classes and Lambda layers cannot be stored)",
        ) from None
    return model


def changed_on_disk(source: dict[str, Any]) -> bool:
    """Whether the recorded file now holds something else (or is gone)."""
    try:
        return hashlib.sha256(Path(source["path"]).read_bytes()).hexdigest() != source["sha256"]
    except OSError:
        return True
