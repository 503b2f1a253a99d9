"""Exporting trained versions in every format and importing model files, with safe mode enforced."""

from __future__ import annotations

import json

import pytest

from mnistctl.registry import Registry
from tests.conftest import registered_refs, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def trained(data_home):
    result = run_cli("train", "--arch", "mlp", "--epochs", "1", "--limit", "200", "--seed", "1", "--json")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout)


def test_export_every_format_then_import_round_trips(trained, tmp_path):
    for fmt, name in (("keras", "m.keras"), ("h5", "m.h5"), ("savedmodel", "saved"), ("tflite", "m.tflite")):
        result = run_cli("models", "export", "mlp:1", "--format", fmt, "-o", str(tmp_path / name), timeout=300)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        assert (tmp_path / name).exists()
    assert (tmp_path / "saved" / "saved_model.pb").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]

    for source, name in (("m.keras", "again"), ("m.h5", "fromh5")):
        imported = run_cli("models", "import", str(tmp_path / source), "--name", name, "--json", timeout=300)
        assert imported.returncode == 0, imported.stderr.decode()[-2000:]
        document = json.loads(imported.stdout)
        assert document["model"] == f"{name}:1" and document["arch"] == "imported"
        # The same weights give the same test accuracy as the trained version.
        assert document["metrics"]["test_accuracy"] == pytest.approx(trained["metrics"]["test_accuracy"], abs=1e-6)


def test_import_refuses_a_lambda_layer_unless_unsafe(data_home, tmp_path):
    from mnistctl.tf_runtime import import_keras

    keras = import_keras()
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Lambda(lambda x: x / 255.0),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    path = tmp_path / "lambda.keras"
    model.save(path)
    refused = run_cli("models", "import", str(path), "--name", "risky", timeout=300)
    assert refused.returncode == 1
    assert "--unsafe" in refused.stderr.decode() and "Traceback" not in refused.stderr.decode()
    assert registered_refs() == []
    accepted = run_cli("models", "import", str(path), "--name", "risky", "--unsafe", timeout=300)
    assert accepted.returncode == 0, accepted.stderr.decode()[-2000:]
    assert Registry().resolve("risky").params["unsafe"] is True


def test_import_rejects_a_model_of_the_wrong_shape(data_home, tmp_path):
    from mnistctl.tf_runtime import import_keras

    keras = import_keras()
    model = keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    path = tmp_path / "cifar.keras"
    model.save(path)
    result = run_cli("models", "import", str(path), "--name", "cifar", timeout=300)
    assert result.returncode == 1
    assert "expected 28x28" in result.stderr.decode()


def test_import_of_a_file_that_is_not_a_model(data_home, tmp_path):
    path = tmp_path / "junk.keras"
    path.write_text("not a zip")
    result = run_cli("models", "import", str(path), "--name", "junk", timeout=300)
    assert result.returncode == 1
    assert result.stderr.decode().startswith(f"Error: {path} is not a .keras file (not a zip archive)")
    assert registered_refs() == []
