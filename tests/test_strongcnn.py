"""The strong architecture and recipes that augment by default (``--augment/--no-augment``)."""

from __future__ import annotations

import json

import pytest

from mnistctl.archs import get_arch
from mnistctl.training import TrainConfig
from tests.conftest import run_cli


def test_strongcnn_convolves_once_at_full_size_then_twice_per_halving():
    model = get_arch("strongcnn").build()
    convolutions = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [layer.filters for layer in convolutions] == [32, 48, 48, 96, 96]
    sizes = [tuple(layer.input.shape[1:3]) for layer in convolutions]
    assert sizes == [(28, 28), (14, 14), (14, 14), (7, 7), (7, 7)]
    assert sum(type(layer).__name__ == "BatchNormalization" for layer in model.layers) == 5
    assert model.output.shape[1:] == (10,)
    assert 150_000 < model.count_params() < 250_000


def test_strongcnn_recipe_augments_unless_told_not_to():
    assert TrainConfig.create("strongcnn", seed=1).augment is True
    assert TrainConfig.create("strongcnn", seed=1, augment=False).augment is False
    assert TrainConfig.create("fastcnn", seed=1).augment is False
    assert TrainConfig.create("fastcnn", seed=1, augment=True).augment is True
    recipe = get_arch("strongcnn").recipe
    assert (recipe.schedule, recipe.optimizer) == ("one-cycle", "Adam")


def test_resume_refuses_an_augment_flag(isolated_home):
    result = run_cli("train", "--resume", "--no-augment")
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert "drop --augment/--no-augment" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(("flag", "augmented"), [((), True), (("--no-augment",), False)])
def test_train_strongcnn_records_whether_it_augmented(data_home, flag, augmented):
    result = run_cli("train", "--arch", "strongcnn", *flag, "--epochs", "1", "--limit", "200", "--json", timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout)
    assert report["arch"] == "strongcnn" and report["params"]["augment"] is augmented
    assert 0.0 <= report["metrics"]["test_accuracy"] <= 1.0
