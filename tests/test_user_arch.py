"""``train --arch FILE.py:FUNCTION`` and ``--arch FILE.json``: the user's own architecture."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from mnistctl.errors import UsageError
from mnistctl.user_arch import MAX_SOURCE_BYTES, UserArchError, build_user_model, read_source
from tests.conftest import run_cli

QUICK = ("--epochs", "1", "--limit", "200")

MODEL_PY = """\
import keras
from keras import layers


def build(input_shape, num_classes):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def raises(input_shape, num_classes):
    raise RuntimeError("no GPU here")


def not_a_model(input_shape, num_classes):
    return 42


def seven_classes(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(), layers.Dense(7)])


def logits(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(), layers.Dense(num_classes)])
"""


@pytest.fixture
def model_py(tmp_path: Path) -> Path:
    path = tmp_path / "tinynet.py"
    path.write_text(MODEL_PY)
    return path


@pytest.fixture
def config_json(tmp_path: Path) -> Path:
    import keras

    model = keras.Sequential(
        [keras.Input(shape=(28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    path = tmp_path / "config.json"
    path.write_text(model.to_json())
    return path


# Reading the file: no Keras needed.


def test_read_source_records_path_function_sha256_and_text(model_py):
    source = read_source(f"{model_py}:build")
    assert source == {
        "path": str(model_py.resolve()),
        "kind": "python",
        "function": "build",
        "sha256": hashlib.sha256(MODEL_PY.encode()).hexdigest(),
        "text": MODEL_PY,
    }


@pytest.mark.parametrize("spec", ["missing.py:build", "missing.json"])
def test_missing_file_is_a_usage_error(tmp_path, spec):
    with pytest.raises(UsageError, match="no such file"):
        read_source(str(tmp_path / spec))


def test_python_file_without_a_function_is_a_usage_error(model_py):
    with pytest.raises(UsageError, match=r"FILE\.py:FUNCTION"):
        read_source(str(model_py))


def test_a_file_over_the_cap_is_refused(tmp_path):
    path = tmp_path / "big.py"
    path.write_text("#" * (MAX_SOURCE_BYTES + 1))
    with pytest.raises(UsageError, match="at most"):
        read_source(f"{path}:build")


# Building the model.


def test_build_wraps_the_model_to_take_raw_pixels(model_py):
    model = build_user_model(read_source(f"{model_py}:build"))
    assert tuple(model.inputs[0].shape[1:]) == (28, 28)
    assert type(model.layers[1]).__name__ == "Rescaling"
    probabilities = np.asarray(model(np.full((2, 28, 28), 255.0, dtype=np.float32)))
    assert probabilities.shape == (2, 10) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_a_model_ending_in_logits_gets_a_softmax(model_py):
    model = build_user_model(read_source(f"{model_py}:logits"))
    assert model.layers[-1].name == "probabilities"


def test_no_such_function_names_the_ones_there(model_py):
    with pytest.raises(UsageError, match="no function 'buld'") as caught:
        build_user_model(read_source(f"{model_py}:buld"))
    assert "build" in caught.value.hint


def test_function_that_raises_names_its_exception(model_py):
    with pytest.raises(UserArchError, match=r"raises\(\(28, 28\), 10\) raised RuntimeError: no GPU here"):
        build_user_model(read_source(f"{model_py}:raises"))


def test_function_returning_a_non_model_is_refused(model_py):
    with pytest.raises(UserArchError, match=r"returned a builtins\.int, not a Keras model"):
        build_user_model(read_source(f"{model_py}:not_a_model"))


def test_wrong_output_shape_is_refused(model_py):
    with pytest.raises(UserArchError, match=r"output has shape \(7,\); expected \(10,\)"):
        build_user_model(read_source(f"{model_py}:seven_classes"))


def test_config_json_builds(config_json):
    model = build_user_model(read_source(str(config_json)))
    assert tuple(model.outputs[0].shape[1:]) == (10,)


def test_config_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(UserArchError, match="is not JSON"):
        build_user_model(read_source(str(path)))


def test_json_that_is_not_a_model_config_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"layers": [1, 2]}')
    with pytest.raises(UserArchError, match="not a Keras model config"):
        build_user_model(read_source(str(path)))


# The recorded source in a run's config.


def test_run_config_with_tampered_source_is_damaged(model_py):
    from mnistctl.training import TrainConfig

    source = read_source(f"{model_py}:build")
    config = TrainConfig.create("custom", name="tinynet", arch_source=source, seed=1)
    record = json.loads(json.dumps(asdict(config)))
    assert TrainConfig.from_record(record) == config
    record["arch_source"]["text"] += "\nimport os\n"
    with pytest.raises(ValueError, match="arch_source: text does not match its sha256"):
        TrainConfig.from_record(record)
    with pytest.raises(UsageError):
        TrainConfig.create("custom", name="x")


# The command line.


def test_help_says_it_runs_your_own_code():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    assert "your own code" in " ".join(result.stdout.decode().split())


def test_cli_missing_file_is_one_line_exit_2(data_home, tmp_path):
    result = run_cli("train", "--arch", f"{tmp_path / 'nope.py'}:build")
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert "no such file" in stderr and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1


def test_cli_function_that_raises_is_one_line_exit_1_and_leaves_no_run(data_home, model_py):
    result = run_cli("train", "--arch", f"{model_py}:raises", *QUICK, timeout=300)
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "RuntimeError: no GPU here" in stderr and "Traceback" not in stderr
    assert not (data_home / "runs").exists() or not any((data_home / "runs").iterdir())


@pytest.mark.slow
def test_user_arch_trains_registers_predicts_through_litert_and_shows_its_source(data_home, model_py):
    from mnistctl.inference import litert_available

    result = run_cli("train", "--arch", f"{model_py}:build", *QUICK, "--seed", "1", "--json", timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout)
    assert report["model"] == "tinynet:1" and report["arch"] == "custom"
    params = report["params"]
    assert (params["optimizer"], params["learning_rate"], params["batch_size"]) == ("Adam", 0.001, 128)
    assert params["arch_source"]["sha256"] == hashlib.sha256(MODEL_PY.encode()).hexdigest()
    assert params["arch_source"]["text"] == MODEL_PY and params["arch_source"]["function"] == "build"

    shown = run_cli("models", "show", "tinynet:1")
    assert shown.returncode == 0, shown.stderr.decode()
    text = shown.stdout.decode()
    assert f"{model_py.resolve()}:build" in text.replace("\n", "") or str(model_py.name) in text
    assert params["arch_source"]["sha256"] in text
    assert "def build(input_shape, num_classes):" in text

    if not litert_available():
        pytest.skip("LiteRT (ai-edge-litert) is not installed")
    from mnistctl.inference import Predictor
    from mnistctl.registry import Registry

    registry = Registry()
    version = registry.resolve("tinynet:1")
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28)).astype(np.float32)
    litert = Predictor(registry, version, "litert").predict(images, calibrate=False)
    keras_ = Predictor(registry, version, "keras").predict(images, calibrate=False)
    assert litert.shape == (4, 10) and np.allclose(litert, keras_, atol=1e-4)


@pytest.mark.slow
def test_config_json_trains_and_registers(data_home, config_json):
    result = run_cli("train", "--arch", str(config_json), *QUICK, "--name", "fromjson", "--json", timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout)
    assert report["model"] == "fromjson:1" and report["params"]["arch_source"]["kind"] == "keras-config"


@pytest.mark.slow
def test_resume_builds_from_the_recorded_text_when_the_file_changed(data_home, model_py):
    from mnistctl.paths import runs_dir
    from mnistctl.training import CONFIG_FILE, TrainConfig

    source = read_source(f"{model_py}:build")
    config = TrainConfig.create("custom", name="tinynet", arch_source=source, seed=1, epochs=1, limit=200)
    run = runs_dir() / "tinynet-20240101-000000-abcd"
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text(json.dumps(asdict(config)))
    model_py.write_text(MODEL_PY.replace("def build(", "def renamed("))  # the file no longer has build()

    result = run_cli("train", "--resume", "--json", timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "changed since the run started" in result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["model"] == "tinynet:1" and report["params"]["arch_source"]["text"] == MODEL_PY
