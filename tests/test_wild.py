"""The synthetic scans of ``tests.wild`` (the benchmarks' test material and the builtin model's WILD set): ink on
paper behaves as ink does."""

from __future__ import annotations

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
