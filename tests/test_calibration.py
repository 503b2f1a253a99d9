"""Honest confidence: temperature scaling, the calibration error, and where they are applied."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnistctl.calibration import calibrated, expected_calibration_error, fit_temperature
from mnistctl.inference import Predictor
from mnistctl.registry import Registry
from tests.conftest import run_cli


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def overconfident_sample(true_temperature: float, count: int = 20000, seed: int = 0):
    """Labels drawn from softmax(logits / T), and the over-confident softmax(logits) a network would report."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (count, 10))
    truth = softmax(logits / true_temperature)
    labels = np.array([rng.choice(10, p=row) for row in truth])
    return labels, softmax(logits)


def test_fitting_recovers_the_temperature_that_made_the_labels():
    labels, reported = overconfident_sample(2.5)
    fitted = fit_temperature(labels, reported)
    assert fitted.temperature == pytest.approx(2.5, rel=0.05)
    assert fitted.nll_after < fitted.nll_before
    assert fitted.ece_after < 0.02 < fitted.ece_before


def test_a_held_out_set_without_mistakes_leaves_the_temperature_alone():
    rng = np.random.default_rng(2)
    probabilities = softmax(rng.normal(0, 2, (200, 10)))
    labels = probabilities.argmax(axis=1)  # every answer right: the likelihood would want T -> 0
    assert fit_temperature(labels, probabilities).temperature == 1.0


def test_calibrated_probabilities_keep_the_answer_and_sum_to_one():
    _, reported = overconfident_sample(2.0, count=500)
    for temperature in (0.5, 1.0, 3.0):
        scaled = calibrated(reported, temperature)
        assert np.array_equal(scaled.argmax(axis=1), reported.argmax(axis=1))
        assert np.allclose(scaled.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(calibrated(reported, 1.0), reported)
    assert np.all(calibrated(reported, 3.0).max(axis=1) <= reported.max(axis=1) + 1e-6)


def test_probabilities_that_underflowed_to_zero_stay_finite():
    reported = np.zeros((3, 10), np.float32)
    reported[:, 4] = 1.0
    scaled = calibrated(reported, 2.0)
    assert np.isfinite(scaled).all() and np.array_equal(scaled.argmax(axis=1), [4, 4, 4])


def test_calibration_error_of_perfect_and_of_overconfident_answers():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, 50000)
    correct = rng.uniform(size=confidence.size) < confidence  # right exactly as often as claimed
    probabilities = np.full((confidence.size, 10), 0.0)
    probabilities[:, 0] = confidence
    probabilities[:, 1] = 1 - confidence
    labels = np.where(correct, 0, 2)
    assert expected_calibration_error(labels, probabilities) < 0.01
    sure = np.zeros_like(probabilities)
    sure[:, 0] = 1.0
    assert expected_calibration_error(labels, sure) == pytest.approx(1 - correct.mean(), abs=1e-9)
    assert expected_calibration_error(np.array([], int), np.zeros((0, 10))) == 0.0


def test_the_predictor_applies_the_versions_temperature():
    registry = Registry()
    builtin = registry.resolve("builtin")
    assert builtin.temperature != 1.0 and builtin.params["calibration"]["fitted_on"] == "validation"
    images = np.zeros((2, 28, 28), np.float32)
    images[0, 6:22, 13:15] = 255  # a "1"
    images[1, 8:20, 8:20] = 255  # a square blob
    predictor = Predictor(registry, builtin)
    raw = predictor.predict(images, calibrate=False)
    assert np.allclose(predictor.predict(images), calibrated(raw, builtin.temperature))


@pytest.mark.slow
def test_train_fits_a_temperature_on_held_out_images_and_reports_calibrated_metrics(data_home):
    result = run_cli("train", "--arch", "mlp", "--epochs", "1", "--limit", "300", "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout)
    calibration = report["params"]["calibration"]
    assert calibration["fitted_on"] == "validation" and calibration["images"] == 30
    assert calibration["temperature"] > 0 and calibration["nll_after"] <= calibration["nll_before"] + 1e-9
    assert "calibrated on 30 held-out images: temperature" in result.stderr.decode()
    # The test metrics are those of the calibrated probabilities that evaluate reports too.
    evaluated = json.loads(run_cli("evaluate", "--json").stdout)
    assert evaluated["loss"] == pytest.approx(report["metrics"]["test_loss"], rel=1e-3)
    assert 0 <= report["metrics"]["test_calibration_error"] <= 1


@pytest.mark.slow
def test_without_held_out_images_a_model_says_it_is_not_calibrated(data_home):
    result = run_cli("train", "--arch", "mlp", "--epochs", "1", "--limit", "200", "--val-split", "0", "--json")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    calibration = json.loads(result.stdout)["params"]["calibration"]
    assert calibration == {
        "temperature": 1.0,
        "images": 0,
        "fitted_on": None,
        "reason": "no held-out images: --val-split 0",
    }
    assert "not calibrated (no held-out images: --val-split 0)" in result.stderr.decode()


def test_models_show_says_how_a_version_is_calibrated():
    shown = run_cli("models", "show", "builtin")
    assert shown.returncode == 0
    assert b"calibration" in shown.stdout and b"held-out images" in shown.stdout
