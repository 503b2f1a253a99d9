"""The strong architecture and recipes that augment by default (``--augment/--no-augment``)."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from mnistctl.archs import get_arch
from mnistctl.training import TrainConfig
from tests.conftest import run_cli


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


def test_runs_recorded_before_augment_strokes_resume_with_strokes(isolated_home):
    from mnistctl.paths import runs_dir
    from mnistctl.training import CONFIG_FILE, find_run

    old = asdict(TrainConfig.create("fastcnn", seed=1, augment=True))
    del old["augment_strokes"]
    run = runs_dir() / "fastcnn-20261101-000000-0001"
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text(json.dumps(old))
    assert find_run(run.name, None)[1].augment_strokes is True


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
    assert report["metrics"]["epochs_trained"] == 1
    assert "shuffle=True" not in result.stderr.decode()
