"""The strong architecture and recipes that augment by default (``--augment/--no-augment``)."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from mnistctl.archs import build_loss, build_model, float32_copy, get_arch, native_bfloat16
from mnistctl.training import TrainConfig
from tests.conftest import run_cli
from tests.test_train import kill_after_the_first_epoch, train_json


def test_strongcnn_convolves_once_at_full_size_then_twice_per_halving():
    model = get_arch("strongcnn").build()
    convolutions = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [layer.filters for layer in convolutions] == [32, 64, 64, 128, 128]
    sizes = [tuple(layer.input.shape[1:3]) for layer in convolutions]
    assert sizes == [(28, 28), (14, 14), (14, 14), (7, 7), (7, 7)]
    assert sum(type(layer).__name__ == "BatchNormalization" for layer in model.layers) == 5
    assert tuple(model(np.zeros((2, 28, 28), dtype=np.float32)).shape) == (2, 10)
    assert model.count_params() == 341_162


def test_strongcnn_recipe_augments_unless_told_not_to():
    assert TrainConfig.create("strongcnn", seed=1).augment is True
    assert TrainConfig.create("strongcnn", seed=1, augment=False).augment is False
    assert TrainConfig.create("fastcnn", seed=1).augment is False
    assert TrainConfig.create("fastcnn", seed=1, augment=True).augment is True
    assert TrainConfig.create("strongcnn", seed=1).augment_strokes is False
    assert TrainConfig.create("fastcnn", seed=1, augment=True).augment_strokes is True
    assert TrainConfig.create("fastcnn", seed=1).augment_strokes is False  # records what the run did
    assert TrainConfig.create("strongcnn", seed=1, augment=False).augment_strokes is False
    recipe = get_arch("strongcnn").recipe
    assert (recipe.optimizer, recipe.learning_rate, recipe.batch_size, recipe.epochs) == ("Adam", 0.004, 128, 26)
    assert (recipe.schedule, recipe.optimizer_options) == ("one-cycle", {"beta_1": 0.9, "beta_2": 0.99})
    assert (recipe.label_smoothing, recipe.mixed_bfloat16) == (0.1, True)


def test_mixed_bfloat16_only_where_the_cpu_has_it(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    assert native_bfloat16(cpuinfo) is True
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert native_bfloat16(cpuinfo) is True
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16x\n")
    assert native_bfloat16(cpuinfo) is False
    assert native_bfloat16(tmp_path / "missing") is False
    expected = "mixed_bfloat16" if native_bfloat16() else "float32"
    assert TrainConfig.create("strongcnn", seed=1).precision == expected
    assert TrainConfig.create("fastcnn", seed=1).precision == "float32"
    assert TrainConfig.create("fastcnn", seed=1).label_smoothing == 0.0


def test_label_smoothing_builds_a_smoothed_cross_entropy():
    assert build_loss("categorical_crossentropy") == "categorical_crossentropy"
    assert build_loss("categorical_crossentropy", 0.1).get_config()["label_smoothing"] == 0.1
    with pytest.raises(ValueError, match="label smoothing"):
        build_loss("mean_squared_error", 0.1)


def test_a_mixed_precision_model_is_stored_as_float32_with_the_same_weights():
    import keras

    mixed = build_model("strongcnn", "mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    assert mixed.layers[0].compute_dtype == "bfloat16"
    assert mixed.layers[-1].compute_dtype == "float32"  # the softmax is never rounded to bfloat16
    copy = float32_copy(mixed, "strongcnn")
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    for ours, theirs in zip(mixed.get_weights(), copy.get_weights(), strict=True):
        assert ours.dtype == theirs.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs)
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(mixed(pixels), copy(pixels), atol=0.02)


def test_runs_recorded_before_augment_strokes_resume_with_strokes(isolated_home):
    from mnistctl.paths import runs_dir
    from mnistctl.training import CONFIG_FILE, find_run

    old = asdict(TrainConfig.create("fastcnn", seed=1, augment=True))
    for newer in ("augment_strokes", "label_smoothing", "precision"):
        del old[newer]
    run = runs_dir() / "fastcnn-20261101-000000-0001"
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text(json.dumps(old))
    config = find_run(run.name, None)[1]
    assert (config.augment_strokes, config.label_smoothing, config.precision) == (True, 0.0, "float32")


@pytest.mark.parametrize("flag", ["--augment", "--no-augment"])
def test_resume_refuses_an_augment_flag(isolated_home, flag):
    result = run_cli("train", "--resume", flag)
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert f"drop {flag}\n" in stderr and "Traceback" not in stderr


@pytest.mark.slow
@pytest.mark.parametrize(("flag", "augmented"), [((), True), (("--no-augment",), False)])
def test_train_strongcnn_records_whether_it_augmented(data_home, flag, augmented):
    result = run_cli("train", "--arch", "strongcnn", *flag, "--epochs", "1", "--limit", "200", "--json", timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout)
    assert report["arch"] == "strongcnn" and report["params"]["augment"] is augmented
    assert report["params"]["augment_strokes"] is False
    assert report["params"]["label_smoothing"] == 0.1
    assert report["params"]["precision"] == ("mixed_bfloat16" if native_bfloat16() else "float32")
    assert report["metrics"]["epochs_trained"] == 1
    stderr = result.stderr.decode()
    assert "shuffle=True" not in stderr
    assert "label smoothing 0.1" in stderr and ("augmented (geometry only)" in stderr) is augmented


@pytest.mark.slow
def test_a_killed_strongcnn_run_resumes_in_its_precision_and_stores_float32(data_home):
    from mnistctl.model_io import load_version_model
    from mnistctl.registry import Registry

    kill_after_the_first_epoch("strongcnn", 2)
    report = train_json("--resume")
    assert report["metrics"]["epochs_trained"] == 2 and len(report["history"]["loss"]) == 2
    registry = Registry()
    model = load_version_model(registry, registry.resolve(report["model"]))
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
