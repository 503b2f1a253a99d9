"""Continental handwriting (``tests.wild.continental``): a "1" with a flag and a "7" with a bar across its stem,
as writers taught in continental Europe draw them, and the builtin model that has seen them."""

from __future__ import annotations

import numpy as np
import pytest

from mnistctl.inference import Predictor
from mnistctl.preprocess import to_mnist
from mnistctl.registry import Registry
from tests import wild
from tests.photos import as_uint8, draw, handwritten_digit


def straight_one() -> np.ndarray:
    """A "1" as MNIST's writers drew most of theirs: one stroke, no flag."""
    return as_uint8(draw((((15, 5), (13, 24)),), side=28, width=2.2) * 255)


@pytest.mark.parametrize("label", [0, 2, 3, 4, 5, 6, 8, 9])
def test_other_digits_come_back_unchanged(label):
    digit = handwritten_digit(label)
    assert np.array_equal(wild.continental(digit, label, np.random.default_rng(0)), digit)


@pytest.mark.parametrize("seed", range(5))
def test_a_ones_flag_runs_from_its_top_down_to_the_left(seed):
    one = straight_one()
    flagged = wild.continental(one, 1, np.random.default_rng(seed))
    added = (flagged >= 128) & (one < 128)
    rows, cols = np.nonzero(added)
    top = int(np.flatnonzero((one >= 128).any(axis=1))[0])
    stem = float(np.nonzero(one >= 128)[1].mean())
    assert added.sum() >= 6
    assert cols.min() < stem - 2  # to the left of the stem...
    assert rows.max() > top + 2 and rows.min() <= top + 2  # ...from its top, downwards


@pytest.mark.parametrize("seed", range(5))
def test_a_sevens_bar_crosses_its_stem_below_the_top(seed):
    seven = handwritten_digit(7)
    crossed = wild.continental(seven, 7, np.random.default_rng(seed))
    rows = np.flatnonzero(((crossed >= 128) & (seven < 128)).any(axis=1))
    ink_rows = np.flatnonzero((seven >= 128).any(axis=1))
    middle = (ink_rows[0] + ink_rows[-1]) / 2
    assert rows.size and abs(float(rows.mean()) - middle) <= 0.25 * (ink_rows[-1] - ink_rows[0])
    row = int(np.round(rows.mean()))
    # Across the bar the digit is at least twice as wide as its stem was there.
    assert (crossed[row] >= 128).sum() >= 2 * max((seven[row] >= 128).sum(), 1)


def test_the_same_seed_draws_the_same_digit():
    one = straight_one()
    first = wild.continental(one, 1, np.random.default_rng(3))
    assert np.array_equal(first, wild.continental(one, 1, np.random.default_rng(3)))


@pytest.mark.parametrize("label", [1, 7])
def test_the_builtin_model_reads_continental_ones_and_sevens(isolated_home, label):
    """MNIST's writers drew no flag on a "1": the builtin model fine-tuned without them read a third of these
    flagged ones as "7" (16 of 24 right). Its fine-tuning set now draws a quarter of its 1s and 7s in continental
    style. (Crossed 7s were read right before too: that case guards against losing them.)"""
    registry = Registry()
    predictor = Predictor(registry, registry.resolve("builtin"))
    pictures = []
    for width in (1.8, 2.2, 2.6):
        for seed in range(8):
            digit = wild.continental(handwritten_digit(label, width=width), label, np.random.default_rng(seed))
            pictures.append(to_mnist(255 - digit))
    answers = predictor.predict(np.stack(pictures)).argmax(axis=1)
    assert (answers == label).mean() >= 0.9, np.bincount(answers, minlength=10)
