"""The synthetic scans of ``tests.wild`` (the benchmarks' test material and the builtin model's WILD set): ink on
paper behaves as ink does."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests import wild


def test_ink_shows_its_grey_on_paper_and_darkens_a_printed_rule_under_it():
    sheet = wild.Sheet(np.full((10, 10), 200.0, dtype=np.float32))
    rule, stroke = np.zeros((10, 10), dtype=np.float32), np.zeros((10, 10), dtype=np.float32)
    rule[5, :] = 1.0
    stroke[:, 5] = 1.0
    sheet.ink(rule, 100.0)
    sheet.ink(stroke, 120.0)  # a pen lighter than the rule: it still darkens the rule where it crosses
    assert sheet.pixels[0, 5] == pytest.approx(120.0)  # the pen on paper
    assert sheet.pixels[5, 0] == pytest.approx(100.0)  # the rule on paper
    assert sheet.pixels[5, 5] == pytest.approx(200.0 * (100 / 200) * (120 / 200))  # reflectances multiply
    assert sheet.pixels[0, 0] == pytest.approx(200.0)


def test_half_covered_pixels_blend_with_what_is_under_them():
    paper = np.full((4, 4), 180.0, dtype=np.float32)
    paper[0] = 150.0  # a stain: ink shows darker on it too
    sheet = wild.Sheet(paper)
    sheet.ink(np.full((4, 4), 0.5, dtype=np.float32), 90.0)
    assert sheet.pixels[1, 0] == pytest.approx(180.0 * (1 - 0.5 * (1 - 90 / 180)))
    assert sheet.pixels[0, 0] == pytest.approx(150.0 * (1 - 0.5 * (1 - 90 / 150)))


@pytest.mark.parametrize("width", [2, 3, 5])
def test_a_pen_lift_cuts_clean_through_the_stroke(width):
    """A round cut narrower than the stroke would punch a hole in it; each cut must leave a row of the bar bare."""
    bar = np.zeros((28, 28), dtype=np.uint8)
    bar[4:24, 12 : 12 + width] = 255
    for seed in range(20):
        cut = wild.pen_lifts(bar, np.random.default_rng(seed), cuts=1)
        assert (cut <= bar).all() and (cut < bar).any()
        bare = ~cut[4:24, 12 : 12 + width].any(axis=1)
        removed_rows = np.flatnonzero((cut < bar).any(axis=1))
        at_an_end = removed_rows.min() <= 4 or removed_rows.max() >= 23
        assert bare.any() or at_an_end


def _bar_photo_moments(generate, seed: int, paper_by_column: bool = False) -> tuple[float, float, float]:
    """Second moments (rows, columns, rows x columns) of the ink about its centre of mass in the photo that
    ``generate`` makes of an upright bar. The paper's tone is the photo's median, or each column's where the light
    changes across it."""
    bar = np.zeros((28, 28), dtype=np.uint8)
    bar[4:24, 12:16] = 255
    pixels = np.asarray(generate(bar, np.random.default_rng(seed)), dtype=np.float32)
    ink = np.median(pixels, axis=0 if paper_by_column else None) - pixels
    ink = np.where(ink > 0.5 * ink.max(), ink, 0.0)
    rows, cols = np.indices(ink.shape)
    row, col = (ink * rows).sum() / ink.sum(), (ink * cols).sum() / ink.sum()
    moments = ((rows - row) ** 2, (cols - col) ** 2, (rows - row) * (cols - col))
    return tuple(float((ink * moment).sum()) for moment in moments)


def test_a_slanted_digit_leans_25_to_45_degrees_mostly_forward():
    """An upright bar comes out leaning tan(25)-tan(45) columns per row; forward (top to the right) in most."""
    leans = []
    for seed in range(12):
        mu20, _, mu11 = _bar_photo_moments(wild.slanted, seed, paper_by_column=True)
        leans.append(-mu11 / mu20)
    assert all(0.42 <= abs(lean) <= 1.05 for lean in leans), leans
    assert sum(lean > 0 for lean in leans) >= 7, leans


def test_a_turned_digit_turns_15_to_35_degrees_either_way():
    """An upright bar comes out with its long axis 15-35 degrees off the vertical, turned both ways over seeds."""
    angles = []
    for seed in range(12):
        mu20, mu02, mu11 = _bar_photo_moments(wild.turned, seed)
        angles.append(math.degrees(0.5 * math.atan2(2 * mu11, mu20 - mu02)))
    assert all(13 <= abs(angle) <= 37 for angle in angles), angles
    assert 3 <= sum(angle > 0 for angle in angles) <= 9, angles
