"""The second look (``mnistctl.second_look``): unsure answers read again turned 10 degrees each way."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnistctl.inference import Predictor
from mnistctl.prediction import predict_readings, weigh_readings
from mnistctl.preprocess import to_mnist
from mnistctl.registry import Registry
from mnistctl.second_look import LOOK_AGAIN_BELOW, looked_again, turned
from tests import wild


def _bar() -> np.ndarray:
    bar = np.zeros((1, 28, 28), np.float32)
    bar[0, 4:24, 13:15] = 255
    return bar


def test_a_turn_leans_the_top_of_an_upright_bar_clockwise_and_keeps_its_ink():
    image = turned(_bar(), 10.0)[0]
    rows = np.flatnonzero(image.max(axis=1) > 100)
    columns = np.arange(28)

    def middle(row: int) -> float:
        return float((image[row] * columns).sum() / image[row].sum())

    lean = (middle(rows[0]) - middle(rows[-1])) / (rows[-1] - rows[0])  # columns per row, top to the right
    assert lean == pytest.approx(math.tan(math.radians(10)), abs=0.03)
    assert image.sum() == pytest.approx(_bar().sum(), rel=1e-3)
    assert np.allclose(turned(_bar(), 0.0), _bar())
    assert np.allclose(turned(turned(_bar(), 10.0), -10.0)[:, 6:22, 6:22], _bar()[:, 6:22, 6:22], atol=80)


def test_what_turns_in_from_outside_is_background_even_along_the_edges():
    full = turned(np.full((1, 28, 28), 255.0, np.float32), 10.0)[0]
    assert full[0, 0] == full[0, 27] == full[27, 0] == full[27, 27] == 0.0
    assert full[14, 14] == pytest.approx(255.0)
    top_row = np.zeros((1, 28, 28), np.float32)
    top_row[0, 0, :] = 255
    # Turned clockwise, the line's left half leaves the picture and its right half goes down: nothing is left
    # in the top row's last columns, which an edge smeared outwards would fill.
    line = turned(top_row, 10.0)[0]
    assert line[0, 22:].max() == 0.0 and line[2:5, 24:].max() > 100


def _fake_predict(calls: list[np.ndarray]):
    """A "model" that reads an image as sure "1" when its ink stands upright and as "7" when it leans."""

    def predict(images: np.ndarray) -> np.ndarray:
        calls.append(images)
        out = np.full((len(images), 10), 0.001, np.float32)
        for row, image in enumerate(images):
            ink = np.argwhere(image > 100)
            upright = np.ptp(ink[:, 1]) <= 3
            out[row, 1 if upright else 7] = 1.0
        return out / out.sum(axis=1, keepdims=True)

    return predict


def test_only_unsure_answers_are_looked_at_again_and_disputed_ones_lose_confidence():
    images = np.concatenate([_bar(), _bar(), _bar()])
    sure = np.full(10, 0.0005, np.float32)
    sure[1] = 1 - 9 * 0.0005
    unsure = np.full(10, 0.01, np.float32)
    unsure[1] = 0.91
    broken = np.full(10, np.nan, np.float32)
    calls: list[np.ndarray] = []
    looked = looked_again(images, np.stack([sure, unsure, broken]), _fake_predict(calls))
    # One call, for the one unsure answer's two turned images; the sure row and the NaN row are left as they were.
    assert len(calls) == 1 and calls[0].shape == (2, 28, 28)
    assert np.array_equal(looked[0], sure) and np.isnan(looked[2]).all()
    # Both turned readings say "7" and the first said "1": whichever wins, the answer is flagged.
    assert looked[1].max() < 0.9 and looked[1][[1, 7]].sum() > 0.9
    assert looked[1].sum() == pytest.approx(1.0, abs=1e-5)
    assert unsure.max() < LOOK_AGAIN_BELOW <= sure.max()


def test_turned_readings_that_agree_leave_an_unsure_answer_as_sure_as_it_was():
    probabilities = np.full((1, 10), 0.01, np.float32)
    probabilities[0, 4] = 0.91

    def agrees(images: np.ndarray) -> np.ndarray:
        return np.repeat(probabilities, len(images), axis=0)

    looked = looked_again(np.zeros((1, 28, 28), np.float32), probabilities, agrees)
    assert np.allclose(looked, probabilities, atol=1e-6)


def test_a_turned_six_read_as_a_sure_five_is_flagged_after_a_second_look():
    """A phone photo of a "6" turned 15-35 degrees (``tests.wild.turned``, seed [78, 1426]): the builtin model
    read it as "5" at 0.92; the turned readings dispute it."""
    registry = Registry()
    predictor = Predictor(registry, registry.resolve("builtin"))
    readings = to_mnist(wild.turned_six(), readings=True)
    first = predictor.predict(readings)
    before = weigh_readings(first[0], first[1]) if len(first) > 1 else first[0]
    assert before.argmax() == 5 and before.max() >= 0.9
    after = predict_readings([readings], predictor.predict)[1][0]
    assert after.max() < 0.9
