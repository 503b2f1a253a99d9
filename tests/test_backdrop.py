"""A sheet photographed on a desk: the desk around it (or beyond its edge) is painted over before the digit is
looked for; a light digit on a dark ground, or a bold digit running off the picture's edge, is no desk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnistctl.preprocess import NoDigitError, load_gray, to_mnist
from mnistctl.preprocess.backdrop import backdrop_region
from mnistctl.preprocess.paper import work_copy
from tests.photos import HANDWRITTEN, as_uint8, correlation, draw, enlarge, mnist_digit, noisy, squarish_zero

PAPER, INK, DESK = 232.0, 40.0, 95.0
MIN_CORRELATION = 0.85


def _desk(height: int, width: int) -> np.ndarray:
    """A wooden desk: a mid-dark tone with the grain's stripes."""
    return DESK + 12 * np.sin(np.arange(width) / 5.0)[None, :] * np.ones((height, 1))


def _note(height: int, width: int, side: int, degrees: float) -> np.ndarray:
    """Coverage (0..1) of a square note ``side`` px wide, turned by ``degrees``, in the middle of the picture."""
    angle = np.deg2rad(degrees)
    corners = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, y = sx * side / 2, sy * side / 2
        corners.append(
            (width / 2 + x * np.cos(angle) - y * np.sin(angle), height / 2 + x * np.sin(angle) + y * np.cos(angle))
        )
    note = Image.new("L", (width, height), 0)
    ImageDraw.Draw(note).polygon(corners, fill=255)
    return np.asarray(note, np.float32) / 255


def _with_digit(page: np.ndarray, label: int, size: int, stroke: float | None = None) -> np.ndarray:
    """``page`` with a handwritten digit ``size`` px square in its middle, its strokes ``stroke`` of ``size`` wide
    (MNIST's 2.2 px in 28 unless given)."""
    width = 2.2 * size / 28 if stroke is None else stroke * size
    coverage = draw(HANDWRITTEN[label], side=size, width=width)
    top, left = (page.shape[0] - size) // 2, (page.shape[1] - size) // 2
    region = page[top : top + size, left : left + size]
    region[:] = region * (1 - coverage) + INK * coverage
    return page


def _on_plain_paper(
    label: int, size: int, height: int = 360, width: int = 400, stroke: float | None = None
) -> np.ndarray:
    page = _with_digit(np.full((height, width), PAPER), label, size, stroke)
    return to_mnist(as_uint8(noisy(page, 3, seed=2)).astype(float))


@pytest.mark.parametrize("label", [0, 2, 6, 8])
@pytest.mark.parametrize(("side", "degrees"), [(220, 6.0), (260, -10.0)])
def test_a_bold_marker_digit_on_a_note_on_a_desk_is_read_as_the_digit_on_it(label, side, degrees):
    """A marker's strokes 0.3 of the digit's width thick are as thick for their length as a bold light
    digit's counters (0.10-0.12 of it): the note was refused as a sheet and read inside out. A note fills its
    rectangle (0.89-0.98) as the light round a light digit never does (0.88 at most)."""
    height, width = 440, 400
    size = side // 2
    note = _note(height, width, side, degrees)
    page = _with_digit(_desk(height, width) * (1 - note) + PAPER * note, label, size, stroke=0.3)
    seen = to_mnist(as_uint8(noisy(page, 3, seed=1)).astype(float))
    assert correlation(seen, _on_plain_paper(label, size, height, width, stroke=0.3)) >= MIN_CORRELATION


@pytest.mark.parametrize("label", [0, 1, 2, 7])
@pytest.mark.parametrize(("side", "degrees"), [(220, 6.0), (260, -10.0)])
def test_a_small_digit_on_a_note_on_a_desk_is_read_as_the_digit_on_it(label, side, degrees):
    """A digit a fifth of the note's side is a blob a pixel or two thick in the search copy, as thick for its
    length as a bold light digit's counter: the note was refused as a sheet and read as a "0" or an "8". Its
    strokes are measured at full size."""
    height, width = 440, 400
    note = _note(height, width, side, degrees)
    page = _desk(height, width) * (1 - note) + PAPER * note
    page = _with_digit(page, label, side // 5)
    seen = to_mnist(as_uint8(noisy(page, 3, seed=1)).astype(float))
    assert correlation(seen, _on_plain_paper(label, side // 5, height, width)) >= MIN_CORRELATION


@pytest.mark.parametrize("label", [1, 3, 7, 8])
@pytest.mark.parametrize(("side", "degrees"), [(200, 0.0), (230, 8.0), (260, -12.0)])
def test_a_note_on_a_desk_is_read_as_the_digit_on_it(label, side, degrees):
    """Taken for the paper, the desk made the note the "ink": a "0" at 1.0 whatever was written on it."""
    height, width = 360, 400
    note = _note(height, width, side, degrees)
    page = _desk(height, width) * (1 - note) + PAPER * note
    page = _with_digit(page, label, side // 2)
    seen = to_mnist(as_uint8(noisy(page, 3, seed=1)).astype(float))
    assert correlation(seen, _on_plain_paper(label, side // 2)) >= MIN_CORRELATION


@pytest.mark.parametrize("label", [1, 2, 5])
@pytest.mark.parametrize("corner", [0, 1, 2, 3])
def test_the_table_beyond_the_pages_edge_is_no_stroke(label, corner):
    """The table's edge, across a corner of the picture, came in beside the digit as a stroke."""
    height, width = 360, 400
    rows, columns = np.mgrid[0:height, 0:width]
    flipped_rows = rows if corner < 2 else height - 1 - rows
    flipped_columns = columns if corner % 2 == 0 else width - 1 - columns
    table = (flipped_rows / height + flipped_columns / width) > 1.45  # a wedge across one corner
    page = np.where(table, 40.0, PAPER)
    page = _with_digit(page, label, 120)
    seen = to_mnist(as_uint8(noisy(page, 3, seed=1)).astype(float))
    assert correlation(seen, _on_plain_paper(label, 120)) >= MIN_CORRELATION


@pytest.mark.parametrize("degrees", [0.0, 10.0])
def test_an_empty_note_on_a_desk_is_no_digit(degrees):
    height, width = 360, 400
    note = _note(height, width, 240, degrees)
    page = _desk(height, width) * (1 - note) + PAPER * note
    with pytest.raises(NoDigitError, match="no digit found"):
        to_mnist(as_uint8(noisy(page, 3, seed=1)).astype(float))


@pytest.mark.parametrize("label", [0, 1, 8])
def test_a_light_digit_on_a_dark_ground_is_no_sheet_on_a_desk(label):
    """MNIST's own way round, blown up: the digit is light and the ground dark, but the digit is no sheet (a
    "0"'s counter is as thick as its ring; a "1" is a bar, not a square)."""
    big = (enlarge(mnist_digit(label), 10, thicken=3) * 255).astype(np.uint8)
    assert backdrop_region(big) is None
    assert correlation(to_mnist(big.astype(float)), to_mnist(mnist_digit(label).astype(float))) >= MIN_CORRELATION


@pytest.mark.parametrize("label", [0, 4, 7])
def test_a_bold_digit_running_off_the_edge_is_no_desk(label):
    """A bold marker digit cropped so its strokes run off the picture's edges is dark and touches the edge,
    but along a stroke's width, and it is no thicker than a stroke."""
    coverage = draw(HANDWRITTEN[label], side=200, width=22)
    page = PAPER - (PAPER - INK) * coverage[10:190, 10:190]
    assert backdrop_region(as_uint8(noisy(page, 3, seed=1))) is None


@pytest.mark.parametrize("label", [1, 8])
@pytest.mark.parametrize("dim", [0.45, 0.6])
def test_a_hard_shadow_over_half_the_page_is_no_desk(label, dim):
    """A shadow darkens the page as much as a desk would, but the digit may lie in it: the lit part is no sheet
    with writing on it (it holds none), and only a desk all round a blank sheet is painted."""
    height, width = 300, 340
    rows, columns = np.mgrid[0:height, 0:width]
    page = _with_digit(np.full((height, width), PAPER), label, 100)
    shade = np.where(rows + 0.4 * columns > 0.55 * height + 0.2 * width, dim, 1.0)  # the digit is in it
    assert backdrop_region(as_uint8(noisy(page * shade, 3, seed=1))) is None


@pytest.mark.parametrize("label", [2, 4, 9])
def test_a_digit_cropped_to_its_ink_is_no_desk(label):
    """Cropped tight, a digit runs off every edge and the paper between its strokes is blank."""
    coverage = draw(HANDWRITTEN[label], side=120, width=9)
    rows, columns = np.nonzero(coverage > 0.5)
    crop = coverage[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    assert backdrop_region(as_uint8(noisy(PAPER - (PAPER - INK) * crop, 3, seed=1))) is None


def test_no_fixture_scan_or_photo_is_taken_for_a_sheet_on_a_desk():
    """Form crops with a scanner bed's bar, pens on forms, tiny scans, notebook photos, turned and tight crops:
    none is a sheet on a desk (a bar along one edge is left to the bar's own rule)."""
    fixtures = Path(__file__).parent / "fixtures"
    pictures = sorted(path for path in fixtures.rglob("*") if path.suffix in (".png", ".jpg"))
    assert len(pictures) > 30
    taken = [path.name for path in pictures if backdrop_region(work_copy(load_gray(path, path.name))) is not None]
    assert taken == []


@pytest.mark.parametrize("stroke", [6, 10, 14])
def test_a_squarish_zero_cropped_to_its_ink_is_no_blank_sheet_on_a_desk(stroke):
    """Its counter is a blank light rectangle and its ring runs along all four edges, as a desk round an empty
    note does; but the ring is a stroke, far thinner than a desk (it was painted over: no digit found)."""
    zero = squarish_zero(120, 100, stroke, 20, max(20 - stroke, 1))
    assert backdrop_region(zero.astype(np.uint8)) is None
