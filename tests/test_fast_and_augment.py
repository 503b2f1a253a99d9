"""The fast architecture, its one-cycle schedule, and ``--augment``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnistctl.archs import get_arch, one_cycle
from mnistctl.registry import Registry
from tests.conftest import run_cli
from tests.test_train import spawn_train, wait_for_line


def test_fastcnn_is_small_and_pools_before_widening():
    model = get_arch("fastcnn").build()
    assert model.count_params() < 40_000
    convolutions = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [layer.filters for layer in convolutions] == [16, 32, 64]
    assert [tuple(layer.input.shape[1:3]) for layer in convolutions] == [(28, 28), (14, 14), (7, 7)]


def test_one_cycle_warms_up_then_decays():
    recipe = get_arch("fastcnn").recipe
    schedule = one_cycle(recipe.learning_rate, total_steps=1000)
    rates = [float(schedule(step)) for step in (0, 200, 600, 999)]
    assert rates[0] == pytest.approx(recipe.learning_rate / 10)
    assert rates[1] == pytest.approx(recipe.learning_rate, rel=1e-3)
    assert rates[1] > rates[2] > rates[3]


def test_augmented_batches_keep_labels_and_range():
    from mnistctl.augment import augmented_dataset
    from tests.synthetic import make_digits

    images, labels = make_digits(64, seed=2)
    onehot = np.eye(10, dtype=np.float32)[labels]
    batch, targets = next(iter(augmented_dataset(images.astype(np.float32), onehot, 64, seed=1)))
    batch, targets = np.asarray(batch), np.asarray(targets)
    assert batch.shape == (64, 28, 28) and batch.min() >= 0 and batch.max() <= 255.5
    assert sorted(targets.argmax(axis=1).tolist()) == sorted(labels.tolist())  # shuffled, not changed
    assert not np.allclose(np.sort(batch.reshape(64, -1).sum(1)), np.sort(images.reshape(64, -1).sum(1)))


@pytest.mark.slow
def test_train_fastcnn_with_augment_records_it(data_home):
    result = run_cli("train", "--arch", "fastcnn", "--augment", "--epochs", "1", "--limit", "200", "--json")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout)
    assert report["params"]["augment"] is True and report["params"]["schedule"] == "one-cycle"
    assert "shuffle=True" not in result.stderr.decode()


@pytest.mark.slow
def test_fastcnn_resumes_with_its_schedule(data_home):
    process = spawn_train("--arch", "fastcnn", "--augment", "--epochs", "2", "--limit", "300", "--seed", "2")
    wait_for_line(process, b"1/2")
    process.kill()
    process.wait(timeout=30)
    resumed = run_cli("train", "--resume", "--json", timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert json.loads(resumed.stdout)["metrics"]["epochs_trained"] == 2
    assert [v.ref for v in Registry().list() if not v.builtin] == ["fastcnn:1"]


@pytest.mark.parametrize("strokes", [True, False])
def test_stroke_width_changes_only_when_asked(strokes):
    from mnistctl.augment import augmented_dataset
    from tests.synthetic import make_digits

    images, labels = make_digits(1, seed=3)
    copies = np.repeat(images.astype(np.float32), 64, axis=0)  # one digit, so every ratio has the same base
    onehot = np.eye(10, dtype=np.float32)[np.repeat(labels, 64)]
    batch, _ = next(iter(augmented_dataset(copies, onehot, 64, 5, strokes=strokes)))
    ratios = np.asarray(batch).reshape(64, -1).sum(axis=1) / copies[0].sum()
    # Moving, turning and scaling by 10% keeps a digit's ink within about +-25%; a 3x3 dilation or
    # erosion changes it far more (and each happens to 20% of the digits).
    changed = np.count_nonzero((ratios < 0.6) | (ratios > 1.6))
    assert bool(changed) is strokes, sorted(ratios.round(2))


def test_the_wild_profile_distorts_each_digit_its_own_way_and_keeps_some_clean():
    from mnistctl.augment import augmented_dataset
    from tests.synthetic import make_digits

    images, labels = make_digits(128, seed=4)
    onehot = np.eye(10, dtype=np.float32)[labels]
    batch, targets = next(iter(augmented_dataset(images.astype(np.float32), onehot, 128, 7, profile="wild")))
    batch, targets = np.asarray(batch), np.asarray(targets)
    assert batch.shape == (128, 28, 28) and batch.min() >= 0 and batch.max() <= 255.0 + 1e-3
    assert sorted(targets.argmax(axis=1).tolist()) == sorted(labels.tolist())
    # Inside tf.data, Keras' RandomElasticTransform once gave a whole batch one image; no two may be equal.
    flat = batch.reshape(128, -1).round(1)
    assert len({row.tobytes() for row in flat}) == 128
    originals = {image.astype(np.float32).round(1).tobytes() for image in images}
    clean = sum(row.tobytes() in originals for row in flat)
    assert 0.1 * 128 <= clean <= 0.5 * 128  # about 30% are left as they are


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--augment-profile", "sparkly"), "unknown augmentation profile 'sparkly'"),
        (("--no-augment", "--augment", "wild"), "--no-augment contradicts --augment wild"),
    ],
)
def test_augment_profile_mistakes_are_usage_errors(data_home, args, message):
    result = run_cli("train", "--arch", "fastcnn", *args, "--epochs", "1", "--limit", "100")
    assert result.returncode == 2
    assert message in result.stderr.decode() and "Traceback" not in result.stderr.decode()


@pytest.mark.slow
@pytest.mark.parametrize("spelling", [("--augment", "wild"), ("--augment=wild",), ("--augment-profile", "wild")])
def test_train_with_the_wild_profile_records_it(data_home, spelling):
    result = run_cli("train", "--arch", "fastcnn", *spelling, "--epochs", "1", "--limit", "200", "--json")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    params = json.loads(result.stdout)["params"]
    assert (params["augment"], params["augment_profile"]) == (True, "wild")
    assert "augmented (wild)" in result.stderr.decode()


def test_wildcnn_trains_wild_by_default_and_fits_litert_speed():
    from mnistctl.training import TrainConfig

    config = TrainConfig.create("wildcnn", seed=1)
    assert (config.augment, config.augment_profile) == (True, "wild")
    assert TrainConfig.create("wildcnn", seed=1, augment=False).augment_profile == ""
    assert TrainConfig.create("fastcnn", seed=1, augment_profile="geometry").augment_strokes is False
    model = get_arch("wildcnn").build()
    assert 90_000 < model.count_params() < 120_000


def test_fastcnn_batchnorm_follows_a_short_epoch():
    # Keras' default momentum (0.99) left fastcnn's first epoch validating at 0.13 against 0.91 in training.
    model = get_arch("fastcnn").build()
    momenta = [layer.momentum for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert momenta == [0.9, 0.9, 0.9]
