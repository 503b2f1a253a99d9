"""Imported model files that are not what they claim: wrong outputs, logits, NaN weights, zip bombs,
empty or truncated files; and NaN never reaching a JSON document."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistctl.errors import MnistctlError
from mnistctl.metrics import evaluate
from tests.conftest import registered_refs, run_cli


def _keras():
    from mnistctl.tf_runtime import import_keras

    return import_keras()


def _strict_json(text: str | bytes) -> object:
    """Parse JSON as a strict parser would: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON document")

    return json.loads(text, parse_constant=refuse)


def _digits_model(activation: str | None = "softmax", units: int = 10):
    """A tutorial-style model: 28x28 pixels / 255 -> Dense(units) with ``activation``."""
    keras = _keras()
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [keras.Input(shape=(28, 28)), keras.layers.Flatten(), keras.layers.Dense(units, activation=activation)]
    )


def _save(model, path: Path) -> Path:
    model.save(path)
    return path


def _refusal(result) -> str:
    """The one line a refused command prints (asserting it is one line, exit 1, no traceback)."""
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1, result.stderr.decode()[-2000:]
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    return lines[0]


def _import(path: Path, name: str = "imported"):
    from mnistctl.model_io import import_model_file

    return import_model_file(path, name=name)


# -- item 3: outputs that are not one softmax over 10 classes ----------------------------------------------


def test_a_model_with_two_outputs_is_refused_in_a_home_with_mnist(data_home, tmp_path):
    keras = _keras()
    pixels = keras.Input(shape=(28, 28))
    flat = keras.layers.Flatten()(pixels)
    heads = [keras.layers.Dense(10, activation="softmax")(flat), keras.layers.Dense(10, activation="softmax")(flat)]
    path = _save(keras.Model(pixels, heads), tmp_path / "two.keras")
    line = _refusal(run_cli("models", "import", str(path), "--name", "two", timeout=300))
    assert "has 2 outputs; expected one output of 10 class probabilities" in line
    assert registered_refs() == []


def test_a_model_with_two_outputs_is_refused_without_mnist(tmp_path):
    keras = _keras()
    pixels = keras.Input(shape=(28, 28))
    flat = keras.layers.Flatten()(pixels)
    heads = [keras.layers.Dense(3, activation="softmax")(flat), keras.layers.Dense(10, activation="softmax")(flat)]
    path = _save(keras.Model(pixels, heads), tmp_path / "two.keras")
    with pytest.raises(MnistctlError, match="has 2 outputs"):
        _import(path)
    assert registered_refs() == []


def test_a_model_with_two_inputs_is_refused(tmp_path):
    keras = _keras()
    first, second = keras.Input(shape=(28, 28)), keras.Input(shape=(28, 28))
    joined = keras.layers.Flatten()(keras.layers.Add()([first, second]))
    model = keras.Model([first, second], keras.layers.Dense(10, activation="softmax")(joined))
    with pytest.raises(MnistctlError, match="has 2 inputs; expected one input of 28x28 pixels"):
        _import(_save(model, tmp_path / "two-in.keras"))


def test_a_model_ending_in_logits_gets_a_softmax_and_says_so(tmp_path):
    from mnistctl.inference import Predictor, litert_available
    from mnistctl.registry import Registry

    model = _digits_model(activation=None)
    # Large weights make the logits far from probabilities: without a softmax a confidence would exceed 1.
    model.layers[-1].set_weights([w * 50 for w in model.layers[-1].get_weights()])
    path = _save(model, tmp_path / "logits.keras")
    result = run_cli("models", "import", str(path), "--name", "logits", "--json", timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "softmax" in result.stderr.decode()
    document = _strict_json(result.stdout)
    assert document["params"]["added_softmax"] is True
    version = Registry().resolve("logits")
    images = np.random.default_rng(0).integers(0, 256, size=(8, 28, 28)).astype(np.float32)
    for backend in ("keras", "litert") if litert_available() else ("keras",):
        probabilities = Predictor(Registry(), version, backend=backend).predict(images, calibrate=False)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert probabilities.min() >= 0 and probabilities.max() <= 1


def test_a_model_that_already_gives_probabilities_is_not_given_a_second_softmax(tmp_path):
    version = _import(_save(_digits_model(), tmp_path / "soft.keras"))
    assert version.params["added_softmax"] is False


def test_a_model_with_nan_weights_is_refused(data_home, tmp_path):
    model = _digits_model()
    kernel, bias = model.layers[-1].get_weights()
    kernel[3, 7] = np.nan
    model.layers[-1].set_weights([kernel, bias])
    path = _save(model, tmp_path / "nan.keras")
    line = _refusal(run_cli("models", "import", str(path), "--name", "nan", timeout=300))
    assert "non-finite" in line and "dense" in line
    assert registered_refs() == []


def test_an_infinite_weight_is_refused_even_when_not_trainable(tmp_path):
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    norm = model.layers[1]
    weights = norm.get_weights()
    weights[3][0] = np.inf  # the moving variance: not trainable, still used at inference
    norm.set_weights(weights)
    with pytest.raises(MnistctlError, match="non-finite"):
        _import(_save(model, tmp_path / "inf.keras"))


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "log_softmax"])
def test_outputs_that_are_not_probabilities_are_refused(tmp_path, activation):
    with pytest.raises(MnistctlError, match="not 10 class probabilities"):
        _import(_save(_digits_model(activation=activation), tmp_path / f"{activation}.keras"))
    assert registered_refs() == []


def test_a_model_whose_outputs_turn_nan_on_some_inputs_is_refused(tmp_path):
    keras = _keras()
    # Finite weights whose sums overflow float32 to inf on a bright image: the softmax of inf is NaN.
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, use_bias=False),
            keras.layers.Activation("softmax"),
        ]
    )
    model.layers[1].set_weights([np.full((784, 10), 1e37, dtype=np.float32)])
    with pytest.raises(MnistctlError, match="not 10 class probabilities"):
        _import(_save(model, tmp_path / "overflow.keras"))


# -- item 3 sibling: export of an imported model, then import again ------------------------------------------


@pytest.mark.parametrize("activation", ["softmax", None])
@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_an_exported_import_imports_again_with_the_same_answers(tmp_path, fmt, activation):
    from mnistctl.inference import Predictor
    from mnistctl.model_io import export_model
    from mnistctl.registry import Registry

    first = _import(_save(_digits_model(activation), tmp_path / "tutorial.keras"), name="first")
    export_model(Registry(), first, fmt, tmp_path / f"exported.{fmt}")
    second = _import(tmp_path / f"exported.{fmt}", name="second")
    assert second.params["added_softmax"] is False  # the softmax added at the first import is in the file
    images = np.random.default_rng(0).integers(0, 256, size=(16, 28, 28)).astype(np.float32)
    # Pixels must be scaled by 1/255 once: an exported import already carries its own Rescaling.
    np.testing.assert_allclose(
        Predictor(Registry(), second, backend="keras").predict(images, calibrate=False),
        Predictor(Registry(), first, backend="keras").predict(images, calibrate=False),
        atol=1e-5,
    )


# -- NaN never reaches a JSON document ---------------------------------------------------------------------


def test_json_safe_turns_non_finite_floats_into_null():
    from mnistctl.jsonsafe import json_safe

    document = {
        "loss": float("nan"),
        "rows": [1.5, float("inf"), (float("-inf"), 2)],
        "numpy": np.float32("nan"),
        "array": np.array([0.5, np.nan]),
        "fine": {"accuracy": 0.5, "count": 3, "ok": True, "name": "NaN"},
    }
    assert json.dumps(json_safe(document), allow_nan=False) and json_safe(document) == {
        "loss": None,
        "rows": [1.5, None, [None, 2]],
        "numpy": None,
        "array": [0.5, None],
        "fine": {"accuracy": 0.5, "count": 3, "ok": True, "name": "NaN"},
    }


def test_print_json_never_writes_nan(capsys):
    from mnistctl.cli._output import print_json

    print_json({"confidence": float("nan"), "top": [{"p": float("inf")}]})
    assert _strict_json(capsys.readouterr().out) == {"confidence": None, "top": [{"p": None}]}


def test_metrics_count_a_nan_answer_as_wrong_and_stay_finite():
    labels = np.array([0, 1, 2, 3])
    probabilities = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]
    probabilities[1] = np.nan  # no answer for the second image
    probabilities[3, 3] = np.inf
    result = evaluate(labels, probabilities)
    assert result.accuracy == 0.5
    assert np.isfinite(result.loss)
    assert result.per_class[1].recall == 0.0 and result.per_class[1].support == 1
    assert result.per_class[3].support == 1
    assert result.confusion.sum() == 2  # the unanswered rows have no predicted column
    # ...nor are they right or wrong answers for the low-confidence flag's counts.
    assert (result.flagged.right, result.flagged.wrong) == (2, 0)


def test_the_flag_counts_compare_as_predict_does():
    from mnistctl.metrics import flag_counts
    from mnistctl.prediction import LOW_CONFIDENCE, answer

    # float32(0.9) is just under 0.9: predict flags it, and so must evaluate's counts.
    probabilities = np.full((3, 10), 0.0, dtype=np.float32)
    probabilities[:, 1] = [np.float32(LOW_CONFIDENCE), 0.95, 0.5]
    probabilities[:, 2] = 1 - probabilities[:, 1]
    flags = [answer(row, 1)["low_confidence"] for row in probabilities]
    counted = flag_counts(np.array([1, 1, 2]), probabilities)
    assert counted.right_flagged == sum(flags[:2]) and counted.wrong_flagged == flags[2]
    assert (counted.right, counted.wrong) == (2, 1)


def _register_broken_version(name: str) -> None:
    """A version whose weights are NaN, as a diverged training or an import before these checks left one."""
    from mnistctl.convert import keras_bytes, layer_table, tflite_bytes, weights_sha256
    from mnistctl.registry import Registry

    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    Registry().register(
        name=name,
        arch="imported",
        params={},
        metrics={},
        layers=layer_table(model),
        weights_sha256=weights_sha256(model),
        data_fingerprint="",
        environment={},
        artifacts={"model.keras": keras_bytes(model), "model.tflite": tflite_bytes(model)},
    )


def test_evaluate_of_a_model_giving_nan_writes_valid_json(data_home):
    _register_broken_version("broken")
    result = run_cli("evaluate", "--model", "broken", "--json", timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    document = _strict_json(result.stdout)
    assert document["accuracy"] == 0.0
    shown = run_cli("models", "show", "broken", "--json", timeout=300)
    _strict_json(shown.stdout)


# -- item 7: caps on what a model file can make us read -----------------------------------------------------


def _rewrite_keras(source: Path, target: Path, extra: dict[str, int] | None = None, pad_config: int = 0) -> Path:
    """Copy the .keras ``source`` to ``target``, padding config.json with ``pad_config`` spaces and adding
    members of zeros (name -> size); everything written deflated and streamed, so it stays small."""
    chunk = 1 << 20
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in original.infolist():
            with out.open(info.filename, "w", force_zip64=True) as member:
                member.write(original.read(info.filename))
                if info.filename == "config.json":
                    for start in range(0, pad_config, chunk):
                        member.write(b" " * min(chunk, pad_config - start))
        for name, size in (extra or {}).items():
            with out.open(name, "w", force_zip64=True) as member:
                for start in range(0, size, chunk):
                    member.write(bytes(min(chunk, size - start)))
    return target


@pytest.fixture
def tutorial_keras(tmp_path) -> Path:
    return _save(_digits_model(), tmp_path / "tutorial.keras")


def test_a_config_padded_with_64_mb_of_spaces_is_refused_before_keras_reads_it(tutorial_keras, tmp_path):
    path = _rewrite_keras(tutorial_keras, tmp_path / "padded.keras", pad_config=64 << 20)
    assert path.stat().st_size < 1 << 20  # the test file itself stays tiny
    line = _refusal(run_cli("models", "import", str(path), "--name", "padded", timeout=300))
    assert "config.json" in line and "16 MB" in line
    assert registered_refs() == []


def test_a_member_that_inflates_far_beyond_its_stored_size_is_refused(tutorial_keras, tmp_path):
    path = _rewrite_keras(tutorial_keras, tmp_path / "bomb.keras", extra={"assets/blob": 8 << 20})
    line = _refusal(run_cli("models", "import", str(path), "--name", "bomb", timeout=300))
    assert "assets/blob" in line and "compressed" in line


def test_an_archive_of_thousands_of_members_is_refused(tutorial_keras, tmp_path):
    path = _rewrite_keras(tutorial_keras, tmp_path / "many.keras", extra={f"assets/{i}": 0 for i in range(2000)})
    line = _refusal(run_cli("models", "import", str(path), "--name", "many", timeout=300))
    assert "2,003 files" in line


def test_the_weights_member_is_capped(tutorial_keras, monkeypatch):
    from mnistctl import model_files

    monkeypatch.setattr(model_files, "MAX_WEIGHTS_BYTES", 1024)  # the real cap is 256 MB: too big to build here
    with pytest.raises(MnistctlError, match=r"model\.weights\.h5 is .* refusing more than 1 KB"):
        model_files.check_model_file(tutorial_keras)


def test_the_members_together_are_capped(tutorial_keras, tmp_path, monkeypatch):
    from mnistctl import model_files

    # Four members each under the cap (and compressible only below the bomb ratio's floor), too much together.
    path = _rewrite_keras(tutorial_keras, tmp_path / "many.keras", extra={f"assets/{i}": 150 << 10 for i in range(4)})
    monkeypatch.setattr(model_files, "MAX_ARCHIVE_BYTES", 200 << 10)  # the real cap is 512 MB
    assert path.stat().st_size < 200 << 10
    with pytest.raises(MnistctlError, match=r"unpacks to .* in all"):
        model_files.check_model_file(path)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_huge_model_file_is_refused_before_it_is_read(tmp_path, suffix):
    path = tmp_path / f"huge{suffix}"
    with open(path, "wb") as handle:
        handle.truncate(600 << 20)  # sparse: 600 MB long, nothing on disk
    line = _refusal(run_cli("models", "import", str(path), "--name", "huge"))
    assert "600 MB" in line and "MB for a model file" in line


# -- item 11: empty, foreign and truncated files say so ------------------------------------------------------


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_an_empty_model_file_is_named_empty(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.touch()
    line = _refusal(run_cli("models", "import", str(path), "--name", "empty"))
    assert line.startswith(f"Error: {path} is empty (0 bytes)")


def test_a_keras_file_that_is_not_a_zip_says_so(tmp_path):
    path = tmp_path / "text.keras"
    path.write_text("not a zip at all")
    line = _refusal(run_cli("models", "import", str(path), "--name", "text"))
    assert line.startswith(f"Error: {path} is not a .keras file (not a zip archive)")


def test_a_truncated_keras_file_says_so(tutorial_keras, tmp_path):
    path = tmp_path / "cut.keras"
    path.write_bytes(tutorial_keras.read_bytes()[:5000])
    line = _refusal(run_cli("models", "import", str(path), "--name", "cut"))
    assert line.startswith(f"Error: {path} is a truncated .keras file")


def test_an_h5_file_that_is_not_hdf5_says_so(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not HDF5")
    line = _refusal(run_cli("models", "import", str(path), "--name", "text"))
    assert line.startswith(f"Error: {path} is not an .h5 file (no HDF5 signature)")


def test_a_truncated_h5_file_says_so(tmp_path):
    whole = _save(_digits_model(), tmp_path / "whole.h5")
    path = tmp_path / "cut.h5"
    path.write_bytes(whole.read_bytes()[:3000])
    line = _refusal(run_cli("models", "import", str(path), "--name", "cut", timeout=300))
    assert line.startswith(f"Error: {path} is a truncated .h5 file")


def test_models_show_says_where_an_import_came_from(tmp_path):
    # Before: "trained  None epochs, batch None, None lr None" and "registered before calibration existed".
    path = _save(_digits_model(activation=None), tmp_path / "logits.keras")
    _import(path, "lg")
    shown = run_cli("models", "show", "lg").stdout.decode()
    assert "None epochs" not in shown and "lr None" not in shown
    assert str(path.resolve()) in shown and "softmax added" in shown
    assert "imported models are not calibrated" in shown


def test_predict_gives_an_error_row_not_nan(tmp_path):
    # Before: "9 nan" (and "NaN" in --json) from a model whose output is not finite.
    _register_broken_version("broken")
    image = tmp_path / "d.png"
    Image.fromarray(np.pad(np.full((18, 3), 255, np.uint8), ((5, 5), (12, 13)))).save(image)
    result = run_cli("predict", "--model", "broken", "--json", str(image), timeout=300)
    assert result.returncode == 1, result.stderr.decode()[-2000:]
    (row,) = _strict_json(result.stdout)["results"]
    assert "no answer" in row["error"] and "digit" not in row


@pytest.mark.parametrize("suffix", [".KERAS", ".H5"])
def test_an_upper_case_suffix_imports(tmp_path, suffix):
    # Before: mnistctl's check passed it, then Keras refused it with a 400-character "File format not supported".
    saved = _save(_digits_model(), tmp_path / f"m{suffix.lower()}")
    shouted = saved.rename(tmp_path / f"M{suffix}")
    version = _import(shouted, "shouted")
    assert version.params["source"].endswith(f"M{suffix}")


@pytest.mark.parametrize("layers", ["flatten_dense", "empty"])
def test_a_model_saved_without_an_input_shape_is_refused_clearly(tmp_path, layers):
    # Before: "unexpected AttributeError: Sequential model 'sequential' has no defined inputs yet".
    keras = _keras()
    stack = [keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")] if layers != "empty" else []
    path = _save(keras.Sequential(stack), tmp_path / "unbuilt.keras")
    line = _refusal(run_cli("models", "import", str(path), "--name", "ub", timeout=300))
    assert "input" in line and "unexpected" not in line


def test_a_float16_softmax_is_accepted(tmp_path):
    # Before: refused for "rows summing to 0.999..1 instead of 1" although it ends in a softmax.
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax", dtype="float16"),
        ]
    )
    path = _save(model, tmp_path / "half.keras")
    imported = run_cli("models", "import", str(path), "--name", "half", timeout=300)
    assert imported.returncode == 0, imported.stderr.decode()[-2000:]
    # The TFLite converter refuses float16 MatMul: registered without a .tflite, and predict runs it with Keras.
    assert "could not be converted to TFLite" in imported.stderr.decode()
    image = tmp_path / "d.png"
    Image.fromarray(np.pad(np.full((18, 3), 255, np.uint8), ((5, 5), (12, 13)))).save(image)
    answered = run_cli("predict", "--model", "half", "--json", str(image), timeout=300)
    assert answered.returncode == 0, answered.stderr.decode()[-2000:]
    assert 0 <= _strict_json(answered.stdout)["results"][0]["digit"] <= 9
