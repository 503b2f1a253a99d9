"""Synthetic "digits in the wild": the kinds of picture real users hand to ``mnistctl predict``.

Every generator turns one MNIST-style digit (uint8 28x28, white ink on black: ``tests.synthetic.make_digits`` in
tests, real MNIST test digits in benchmarks) into the ``PIL.Image`` a user would have, drawing all its randomness
from the ``numpy.random.Generator`` it is given, so the same seed always gives the same picture.

Kinds (``KINDS``):

- ``form_crop``: a loose crop from a scanned form or parish register. A small digit (10-25 px tall) in dark ink on
  stained grey paper, with the scanner bed's black bar at one edge, thin printed ruling lines (some touching or
  crossing the digit), a trailing period ("9."), a fragment of printed text in a corner, blur and sensor noise.
- ``pen_on_form``: a digit written with a thin pen (1-2 px) in a box of a printed form and scanned at ~100 px:
  black or blue ink, saved as 1-bit, binarised grey, RGBA on a transparent background or RGB on white, with
  remnants of the form's grid lines along one or two edges.
- ``tiny_bitmap``: a normalised 16x16 (sometimes 12-20 px) bitmap as in USPS or Semeion: the digit stretched to fill
  the whole box, ignoring its aspect ratio, often binarised; dark on white or white on black.
- ``sloppy``: a photo of fast, sloppy writing: elastic distortion, slant, strokes from a thin pen to a thick marker,
  uneven pen pressure, uneven light and noise.
- ``askew``: a phone photo of a digit on squared or lined notebook paper, a few degrees askew, the grid as dark
  as a light pen.
- ``skipping``: a digit whose pen skipped, cut clean through in one or two places (a dry ballpoint, a thin
  stretch a 1-bit scan lost), as a form crop or a sloppy photo.
- ``tight``: a photo or scan cropped to the digit's ink, 0-3 px of paper left: 41-160 px tall, grey paper,
  noise, JPEG; strokes run along the edges and a bold digit covers most of the picture.
- ``slanted``: a photo of a digit written fast and slanted 25-45 degrees past its own slant, mostly forward.
- ``turned``: a phone photo of a digit turned 15-35 degrees either way, as a crooked sheet or a phone held askew
  turns it (the whole digit turns, unlike a slant, which leaves its base where it was).

Negatives (``NEGATIVES``) are crops like ``form_crop`` with no digit at all -- only ruling lines, only specks, only
printed text, or only the scanner bar -- for the rule that such an image never gets an answer with confidence >= 0.6.

Write example folders: python -m tests.wild --out DIR [--count N]
Refresh the fixtures:  python -m tests.wild --fixtures --out tests/fixtures/wild
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tests.photos import as_uint8, gradient, handwritten_digit, noisy, shadow

# Printed words of old Norwegian/Danish forms and registers, where loose digit crops come from.
FORM_WORDS = (
    "Trykt for",
    "No.",
    "Nr.",
    "Navn",
    "Fødested",
    "Fødselsdag",
    "Bopæl",
    "Stilling",
    "Sogn",
    "Aar",
    "Alder",
    "Side",
    "Kjøn",
    "Anm.",
    "Dato",
)
SIDES = ("left", "right", "top", "bottom")

Box = tuple[int, int, int, int]  # top, left, bottom, right (bottom and right exclusive)


# --- The digit's ink -----------------------------------------------------------------------------------------------


def strokes_of(digit: np.ndarray) -> np.ndarray:
    """The pixels of ``digit``'s strokes; faint background noise (``make_digits`` adds some) is ignored."""
    return digit >= 0.35 * max(int(digit.max()), 1)


def ink_bounds(digit: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the strokes' bounding box (``strokes_of``)."""
    strokes = strokes_of(digit)
    rows, cols = np.flatnonzero(strokes.any(axis=1)), np.flatnonzero(strokes.any(axis=0))
    if rows.size == 0:
        return slice(0, digit.shape[0]), slice(0, digit.shape[1])
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def solid(values: np.ndarray) -> np.ndarray:
    """Ink coverage 0..1 from grey levels 0..1: below 0.2 is background noise, above 0.7 full ink."""
    return np.clip((values - 0.2) / 0.5, 0.0, 1.0)


def ink_box(digit: np.ndarray) -> np.ndarray:
    """Ink coverage 0..1 of an MNIST-style ``digit``, cropped to the bounding box of its strokes.

    Soft-edged MNIST and noisy synthetic digits alike give solid strokes on an empty background.
    """
    return solid(digit[ink_bounds(digit)].astype(np.float32) / max(float(digit.max()), 1.0))


def resized(values: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """Float ``values`` resized to ``size`` (width, height) by Pillow, which needs contiguous float32 for mode F."""
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))
    return np.asarray(image.resize(size, resample), dtype=np.float32)


def enlarged_ink(digit: np.ndarray, scale: float) -> np.ndarray:
    """Ink coverage of ``digit``'s bounding box enlarged ``scale`` times, with smooth outlines.

    The soft grey levels are enlarged (bicubic) before they are made solid, so the outlines follow the smooth
    interpolated contours instead of the 28x28 pixel staircase.
    """
    rows, cols = ink_bounds(digit)
    values = np.pad(digit.astype(np.float32) / max(float(digit.max()), 1.0), 1)
    values = values[rows.start : rows.stop + 2, cols.start : cols.stop + 2]  # one pixel of margin for the kernel
    size = (max(1, round(values.shape[1] * scale)), max(1, round(values.shape[0] * scale)))
    big = resized(values, size, Image.Resampling.BICUBIC)
    return crop_to_ink(solid(big))


def stroke_width(coverage: np.ndarray) -> float:
    """Typical stroke width in pixels: a stroke of width w and length L has area wL and about 2L edge pixels."""
    ink = np.pad(coverage > 0.5, 1)
    inner = ink[1:-1, 1:-1]
    edge = inner & ~(ink[:-2, 1:-1] & ink[2:, 1:-1] & ink[1:-1, :-2] & ink[1:-1, 2:])
    return 2.0 * inner.sum() / max(int(edge.sum()), 1)


def crop_to_ink(coverage: np.ndarray, level: float = 0.05) -> np.ndarray:
    """``coverage`` cropped to the rows and columns that hold ink above ``level``."""
    rows, cols = np.flatnonzero(coverage.max(axis=1) > level), np.flatnonzero(coverage.max(axis=0) > level)
    if rows.size == 0:
        return coverage
    return coverage[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def grow(coverage: np.ndarray, steps: int) -> np.ndarray:
    """Strokes made ``steps`` px wider on each side (fewer: thinner), with a round-ish brush.

    Square and cross-shaped 3x3 steps alternate, which grows an octagon: a marker's round tip, not a square nib.
    """
    pick = np.maximum if steps > 0 else np.minimum
    grown = np.pad(coverage, abs(steps)) if steps > 0 else coverage
    for step in range(abs(steps)):
        padded = np.pad(grown, 1, mode="edge")
        if step % 2:
            across = pick(padded[1:-1, :-2], padded[1:-1, 2:])
            grown = pick(pick(padded[1:-1, 1:-1], across), pick(padded[:-2, 1:-1], padded[2:, 1:-1]))
        else:
            rows = pick(pick(padded[:-2], padded[1:-1]), padded[2:])
            grown = pick(pick(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])
    return grown


def scaled_ink(digit: np.ndarray, height: int, stroke: float, oversample: int = 4) -> np.ndarray:
    """Coverage of ``digit`` scaled to ``height`` px tall (aspect kept) with strokes about ``stroke`` px wide.

    The ink is drawn ``oversample`` times larger, made wider or thinner there, then shrunk with a box filter, so
    the strokes of a 10 px digit come out 1.5-3 px wide and anti-aliased, as a pen's would at that size. A pen
    thinner than the digit's strokes redraws its centre line (``skeleton``) at the pen's width: eroding the ink
    instead would wipe out every stretch thinner than the typical stroke, and what is left is often another
    digit, where a real pen draws the same line everywhere.
    """
    rows, _ = ink_bounds(digit)
    scale = height * oversample / (rows.stop - rows.start)
    big = enlarged_ink(digit, scale)
    steps = round((stroke * oversample - stroke_width(big)) / 2)  # each step adds a pixel on both sides
    if steps < 0:
        reach = max(0, round((stroke * oversample - 1) / 2))  # the pen's half-width, past the centre line
        lines = skeleton(big > 0.5)
        drawn = np.flatnonzero(lines.any(axis=1))
        # The centre line stops half a stroke short of the ink's ends: drawn larger, it spans the height
        # that the pen's line should, less the pen's own width.
        length, wanted = drawn[-1] - drawn[0] + 1, height * oversample - 2 * reach
        if 0 < length < wanted:
            lines = skeleton(enlarged_ink(digit, scale * wanted / length) > 0.5)
        big = grow(lines.astype(np.float32), reach)
    else:
        big = grow(big, min(steps, 16))
    size = (max(1, round(big.shape[1] / oversample)), max(1, round(big.shape[0] / oversample)))
    return crop_to_ink(resized(big, size, Image.Resampling.BOX))


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image: every stroke becomes a connected line one pixel wide."""
    image = np.pad(mask, 1).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            centre = image[1:-1, 1:-1]
            p2, p3, p4, p5 = image[:-2, 1:-1], image[:-2, 2:], image[1:-1, 2:], image[2:, 2:]
            p6, p7, p8, p9 = image[2:, 1:-1], image[2:, :-2], image[1:-1, :-2], image[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)  # clockwise, back to the start
            neighbours = sum(p.astype(np.int32) for p in ring[:-1])
            crossings = sum(((a == 0) & (b == 1)).astype(np.int32) for a, b in itertools.pairwise(ring))
            if step == 0:
                open_side = ((p2 * p4 * p6) == 0) & ((p4 * p6 * p8) == 0)
            else:
                open_side = ((p2 * p4 * p8) == 0) & ((p2 * p6 * p8) == 0)
            remove = (centre == 1) & (neighbours >= 2) & (neighbours <= 6) & (crossings == 1) & open_side
            if remove.any():
                centre[remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1].astype(bool)


# --- Printed marks: lines, dots, text ------------------------------------------------------------------------------


def ruling_line(
    height: int, width: int, horizontal: bool, position: float, thickness: float, angle: float, span=(0.0, 1.0)
) -> np.ndarray:
    """Anti-aliased coverage of a printed rule at ``position`` px, tilted ``angle`` degrees, along ``span`` of it."""
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    slope = math.tan(math.radians(angle))
    if horizontal:
        distance, along, length = rows - position - (cols - width / 2) * slope, cols, width
    else:
        distance, along, length = cols - position - (rows - height / 2) * slope, rows, height
    coverage = np.clip(thickness / 2 + 0.5 - np.abs(distance), 0.0, 1.0)
    inside = (along >= span[0] * length) & (along < span[1] * length)
    return coverage * inside


def dot(diameter: float, centre: tuple[float, float], height: int, width: int) -> np.ndarray:
    """Anti-aliased coverage of a round dot (a period, a speck) of ``diameter`` px at ``centre`` (row, col)."""
    rows = np.arange(height, dtype=np.float32)[:, None] - centre[0]
    cols = np.arange(width, dtype=np.float32)[None, :] - centre[1]
    return np.clip(diameter / 2 + 0.5 - np.sqrt(rows * rows + cols * cols), 0.0, 1.0)


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``size`` px: matplotlib ships it, so every machine that runs mnistctl has it."""
    from matplotlib import font_manager

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def printed(words: str, size: int) -> np.ndarray:
    """Coverage of ``words`` printed at ``size`` px, cropped to the ink."""
    face = font(size)
    left, top, right, bottom = face.getbbox(words)
    image = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(image).text((1 - left, 1 - top), words, fill=255, font=face)
    return np.asarray(image, dtype=np.float32) / 255.0


# --- A scanned sheet -----------------------------------------------------------------------------------------------


@dataclass
class Sheet:
    """A scanned crop being built: grey levels of paper with ink on it, and the scanner bar that is added last."""

    pixels: np.ndarray
    bar_side: str | None = None
    bar_width: int = 0
    blank: np.ndarray = field(init=False)  # the paper before any ink: what an ink's grey is relative to

    def __post_init__(self) -> None:
        self.blank = self.pixels.copy()

    @property
    def height(self) -> int:
        """Rows of the crop."""
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        """Columns of the crop."""
        return self.pixels.shape[1]

    def paper_box(self) -> Box:
        """The part of the crop that is paper, not scanner bed."""
        top, left, bottom, right = 0, 0, self.height, self.width
        if self.bar_side == "top":
            top = self.bar_width
        elif self.bar_side == "bottom":
            bottom -= self.bar_width
        elif self.bar_side == "left":
            left = self.bar_width
        elif self.bar_side == "right":
            right -= self.bar_width
        return top, left, bottom, right

    def ink(self, coverage: np.ndarray, grey: float, top: int = 0, left: int = 0) -> None:
        """Put ink of ``grey`` where ``coverage`` says, its corner at (top, left); ink darkens what is under it.

        ``grey`` is how the ink shows on the blank paper. Reflectances multiply, so a pen stroke across a printed
        line is darker than either, never lighter (until 2026-11-30 the ink covered what was under it, so a pen
        lighter than a rule showed as a light gap in it).
        """
        rows = slice(max(top, 0), min(top + coverage.shape[0], self.height))
        cols = slice(max(left, 0), min(left + coverage.shape[1], self.width))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return
        part = coverage[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]
        # The ink passes this share of the light that the paper under it reflects: on paper it shows as ``grey``,
        # over earlier ink (a printed rule) darker still.
        passes = grey / np.maximum(self.blank[rows, cols], 1.0)
        self.pixels[rows, cols] *= 1.0 - part * (1.0 - passes)


def blank_form(rng: np.random.Generator, bar_chance: float = 0.5) -> Sheet:
    """Grey paper (150-220) of about 120x170 px with a few soft, low-contrast stains and maybe the scanner bar."""
    height, width = int(rng.integers(100, 141)), int(rng.integers(140, 201))
    paper = np.full((height, width), rng.uniform(150, 220), dtype=np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    for _ in range(int(rng.integers(1, 5))):  # foxing, water and dirt: 3-12% darker, 5-30 px across
        centre_row, centre_col = rng.uniform(0, height), rng.uniform(0, width)
        radius_row, radius_col = rng.uniform(5, 30), rng.uniform(5, 30)
        depth = rng.uniform(0.03, 0.12)
        paper *= 1.0 - depth * np.exp(
            -(((rows - centre_row) / radius_row) ** 2 + ((cols - centre_col) / radius_col) ** 2) / 2
        )
    paper *= gradient(height, width, float(rng.uniform(0.92, 1.0)), float(rng.uniform(0.92, 1.0)))
    sheet = Sheet(paper)
    if rng.random() < bar_chance:
        sheet.bar_side, sheet.bar_width = str(rng.choice(SIDES)), int(rng.integers(5, 26))
    return sheet


def add_bar(sheet: Sheet, rng: np.random.Generator) -> None:
    """The scanner bed (grey 0-30) beyond the paper's edge; the edge is straight but may be tilted by up to 1 degree."""
    if sheet.bar_side is None:
        return
    horizontal = sheet.bar_side in ("top", "bottom")
    extent = sheet.height if horizontal else sheet.width
    position = sheet.bar_width / 2 - 0.5 if sheet.bar_side in ("top", "left") else extent - sheet.bar_width / 2 - 0.5
    coverage = ruling_line(
        sheet.height, sheet.width, horizontal, position, sheet.bar_width, float(rng.uniform(-1, 1)), span=(-1, 2)
    )
    grey = float(rng.uniform(0, 30))
    sheet.pixels = sheet.pixels * (1.0 - coverage) + grey * coverage


def finish_scan(sheet: Sheet, rng: np.random.Generator) -> Image.Image:
    """Bar, slight blur, sensor noise; grey, or RGB with the yellow cast of old paper."""
    add_bar(sheet, rng)
    image = Image.fromarray(as_uint8(sheet.pixels)).filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.9))))
    pixels = noisy(np.asarray(image, dtype=np.float32), float(rng.uniform(2, 6)), seed=int(rng.integers(2**31)))
    if rng.random() < 0.5:
        return Image.fromarray(as_uint8(pixels))
    cast = np.array([1.0, rng.uniform(0.94, 1.0), rng.uniform(0.82, 0.95)], dtype=np.float32)
    return Image.fromarray(as_uint8(pixels[:, :, None] * cast))


def rules(sheet: Sheet, rng: np.random.Generator, count: int, near: Box | None = None) -> None:
    """``count`` printed ruling lines (1-2 px, grey 60-140, tilted <= 1 degree); some touch or cross ``near``."""
    for _ in range(count):
        horizontal = bool(rng.random() < 0.6)  # registers have more row rules than column rules
        extent = sheet.height if horizontal else sheet.width
        position = float(rng.uniform(2, extent - 2))
        if near is not None and rng.random() < 0.4:
            low, high = (near[0], near[2]) if horizontal else (near[1], near[3])
            # A baseline under the digit or a column rule beside it, touching the ink, or one through it.
            position = float(
                rng.choice([high + rng.uniform(-1, 1.5), low - rng.uniform(-1, 1.5), rng.uniform(low, high)])
            )
        # A rule that ends inside the crop still runs at least half across it: never short enough to pass for a 1.
        start, length = float(rng.uniform(-0.3, 0.5)), float(rng.uniform(0.5, 1.0))
        span = (0.0, 1.0) if rng.random() < 0.75 else (start, start + length)
        coverage = ruling_line(
            sheet.height,
            sheet.width,
            horizontal,
            position,
            float(rng.uniform(1, 2)),
            float(rng.uniform(-1, 1)),
            span,
        )
        sheet.ink(coverage * rng.uniform(0.8, 1.0), float(rng.uniform(60, 140)))


def overlaps(first: Box, second: Box) -> bool:
    """Whether two boxes share any pixel."""
    return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]


def corner_text(sheet: Sheet, rng: np.random.Generator, avoid: Box | None) -> None:
    """A fragment of printed text in a corner of the paper, maybe cut by the crop's edge; none if no corner is free."""
    coverage = printed(str(rng.choice(FORM_WORDS)), int(rng.integers(7, 12)))
    height, width = coverage.shape
    top, left, bottom, right = sheet.paper_box()
    for corner in rng.permutation(4):
        row = top + int(rng.integers(1, 7)) if corner < 2 else bottom - height - int(rng.integers(1, 7))
        cut = int(rng.integers(-width // 3, 6))  # negative: the crop cut the word
        col = left + cut if corner % 2 == 0 else right - width - cut
        box = (row, col, row + height, col + width)
        if avoid is None or not overlaps(box, (avoid[0] - 2, avoid[1] - 2, avoid[2] + 2, avoid[3] + 2)):
            clipped = np.zeros_like(coverage)
            inside = (slice(max(top - row, 0), bottom - row), slice(max(left - col, 0), right - col))
            clipped[inside] = coverage[inside]  # the word ends at the paper's edge, not under the bar
            sheet.ink(clipped, float(rng.uniform(15, 90)), row, col)
            return


# --- The kinds -----------------------------------------------------------------------------------------------------


def form_crop(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A loose crop from a scanned form or register: a small digit among stains, rules, text and the scanner bar."""
    sheet = blank_form(rng)
    ink_height = int(rng.integers(10, 26))
    ink = scaled_ink(digit, ink_height, float(rng.uniform(1.5, min(3.0, 1.2 + 0.08 * ink_height))))
    height, width = ink.shape
    top, left, bottom, right = sheet.paper_box()
    centre_row = rng.normal((top + bottom) / 2, 0.12 * (bottom - top))
    centre_col = rng.normal((left + right) / 2, 0.12 * (right - left))
    row = int(np.clip(round(centre_row - height / 2), top + 2, bottom - height - 2))
    col = int(np.clip(round(centre_col - width / 2), left + 2, right - width - 8))  # room for the period
    digit_box = (row, col, row + height, col + width)
    rules(sheet, rng, int(rng.integers(0, 4)), near=digit_box)
    if rng.random() < 0.4:
        corner_text(sheet, rng, avoid=(row, col, row + height, col + width + 8))  # the digit and its period
    ink_grey = float(rng.uniform(20, 90))
    sheet.ink(ink * rng.uniform(0.85, 1.0), ink_grey, row, col)
    if rng.random() < 0.4:  # "9." -- a period right of the baseline
        diameter = float(rng.uniform(2, 4))
        centre = (row + height - diameter / 2 - rng.uniform(0, 1.5), col + width + rng.uniform(1, 4) + diameter / 2)
        sheet.ink(dot(diameter, centre, sheet.height, sheet.width), ink_grey)
    return finish_scan(sheet, rng)


def pen_on_form(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A thin pen digit in a printed form's box, scanned at ~100 px: 1-bit, binarised, RGBA or RGB, grid remnants."""
    height, width = int(rng.integers(90, 121)), int(rng.integers(90, 121))
    rows, cols = ink_bounds(digit)
    box_height, box_width = rows.stop - rows.start + 2, cols.stop - cols.start + 2  # enlarged_ink keeps a margin
    scale = min(float(rng.uniform(3.0, 4.0)), (height - 16) / box_height, (width - 16) / box_width)
    lines = skeleton(enlarged_ink(digit, scale) > 0.5)[: height - 12, : width - 12]
    size = (lines.shape[1], lines.shape[0])
    if rng.random() < 0.5:  # a 2 px nib rather than a 1 px one
        lines = lines | np.roll(lines, 1, axis=0) | np.roll(lines, 1, axis=1) | np.roll(lines, (1, 1), axis=(0, 1))
    row = int(rng.integers(6, height - size[1] - 5))
    col = int(rng.integers(6, width - size[0] - 5))
    pen = np.zeros((height, width), dtype=np.float32)
    pen[row : row + size[1], col : col + size[0]] = lines
    pen = np.asarray(Image.fromarray(as_uint8(pen * 255)).filter(ImageFilter.GaussianBlur(0.4)), dtype=np.float32)
    pen = np.clip(pen / 255.0 * 1.8, 0.0, 1.0)  # anti-aliased edges, but the middle of a stroke stays solid

    grid = np.zeros((height, width), dtype=np.float32)
    for side in rng.choice(SIDES, size=int(rng.integers(1, 3)), replace=False):
        horizontal = side in ("top", "bottom")
        extent = height if horizontal else width
        offset = float(rng.uniform(0, 6))
        position = offset if side in ("top", "left") else extent - 1 - offset
        span = (0.0, 1.0) if rng.random() < 0.7 else (float(rng.uniform(0, 0.4)), float(rng.uniform(0.6, 1.0)))
        line = ruling_line(
            height, width, horizontal, position, float(rng.uniform(1, 2)), float(rng.uniform(-0.5, 0.5)), span
        )
        grid = np.maximum(grid, line)
    grid_colour = [
        np.full(3, rng.uniform(110, 190)),  # grey
        np.array([150, 180, 235]) + rng.uniform(-15, 15, 3),  # light blue
        np.array([235, 150, 150]) + rng.uniform(-15, 15, 3),  # light red
    ][int(rng.integers(3))]
    ink_colour = np.array([20, 40, 160]) if rng.random() < 0.5 else np.array([15, 15, 20])
    ink_colour = ink_colour + rng.uniform(-10, 10, 3)

    paper = np.full((height, width, 3), 255.0, dtype=np.float32)
    paper += (grid_colour - paper) * grid[:, :, None]
    rgb = paper + (ink_colour - paper) * pen[:, :, None]
    mode = rng.choice(["1", "binary", "RGBA", "RGB"], p=[0.25, 0.2, 0.25, 0.3])
    if mode == "RGBA":
        alpha = np.maximum(pen, grid)
        # What sits under transparent pixels varies: drawing apps often leave black there, which a reader that
        # drops the alpha channel turns into black ink on black.
        hidden = 0.0 if rng.random() < 0.5 else 255.0
        colour = np.where(
            alpha[:, :, None] > 0, (rgb - 255.0 * (1 - alpha[:, :, None])) / np.maximum(alpha, 1e-3)[:, :, None], hidden
        )
        return Image.fromarray(np.dstack([as_uint8(colour), as_uint8(alpha * 255)]))
    image = Image.fromarray(as_uint8(rgb))
    if mode == "1":
        return image.convert("L").convert("1")  # Floyd-Steinberg: light grid lines come out dotted, as in fax scans
    if mode == "binary":
        threshold = int(rng.integers(140, 210))  # light grid lines survive some scanners' thresholds, not others'
        return image.convert("L").point(lambda value: 255 if value > threshold else 0)
    pixels = rgb + rng.normal(0, rng.uniform(0, 3), (height, width, 1))
    return Image.fromarray(as_uint8(pixels))


def tiny_bitmap(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A USPS/Semeion-style normalised bitmap: the ink stretched to fill a 16x16 (or 12-20 px) box, no margin."""
    side = 16 if rng.random() < 0.7 else int(rng.integers(12, 21))
    coverage = Image.fromarray(as_uint8(ink_box(digit) * 255))
    pixels = np.asarray(coverage.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)
    if rng.random() < 0.6:
        pixels = np.where(pixels >= 128, 255.0, 0.0)
    if rng.random() < 0.7:  # dark on white, like USPS
        pixels = 255.0 - pixels
    return Image.fromarray(as_uint8(pixels))


def warp(coverage: np.ndarray, shear: float, rotation: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """``coverage`` slanted, turned ``rotation`` radians and bent by a smooth random displacement field (bilinear)."""
    height, width = coverage.shape
    grid = int(rng.integers(3, 6))  # control points per side: a few bends per digit, as a hurried hand makes
    fields = []
    for _ in range(2):
        fields.append(resized(rng.uniform(-1, 1, (grid, grid)), (width, height), Image.Resampling.BICUBIC) * amplitude)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    rows, cols = rows - height / 2, cols - width / 2
    cos, sin = math.cos(rotation), math.sin(rotation)
    source_rows = cos * rows - sin * cols + height / 2 + fields[0]
    source_cols = sin * rows + cos * cols + shear * rows + width / 2 + fields[1]
    top, left = np.floor(source_rows).astype(np.int64), np.floor(source_cols).astype(np.int64)
    down, right = (source_rows - top).astype(np.float32), (source_cols - left).astype(np.float32)
    padded = np.pad(coverage, 1)
    top, left = np.clip(top + 1, 0, height), np.clip(left + 1, 0, width)  # outside the picture reads the zero border
    return (
        padded[top, left] * (1 - down) * (1 - right)
        + padded[top, left + 1] * (1 - down) * right
        + padded[top + 1, left] * down * (1 - right)
        + padded[top + 1, left + 1] * down * right
    )


def sloppy(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A photo of fast, sloppy writing: bent, slanted, thin pen to thick marker, uneven pressure, light and noise."""
    height = int(rng.integers(80, 201))
    width = int(np.clip(height * rng.uniform(0.75, 1.35), 80, 200))
    ink_height = int(height * rng.uniform(0.45, 0.75))
    stroke = max(1.5, ink_height * rng.uniform(0.04, 0.2))  # 0.04: a fine pen, 0.2: a broad marker
    ink = scaled_ink(digit, ink_height, stroke, oversample=1)
    margin = int(0.45 * ink_height) + 4  # room for the slant and the bends, so no stroke leaves the picture
    ink = warp(
        np.pad(ink, margin),
        shear=float(rng.uniform(-0.4, 0.4)),
        rotation=float(rng.uniform(-0.12, 0.12)),
        amplitude=float(ink_height * rng.uniform(0.02, 0.08)),
        rng=rng,
    )
    ink = crop_to_ink(ink)
    fit = min(1.0, (height - 6) / ink.shape[0], (width - 6) / ink.shape[1])
    if fit < 1.0:  # a long slanted stroke came out wider than the photo: step back a little
        size = (max(1, int(ink.shape[1] * fit)), max(1, int(ink.shape[0] * fit)))
        ink = resized(ink, size, Image.Resampling.BILINEAR)
    row = int(rng.integers(3, height - ink.shape[0] - 2))
    col = int(rng.integers(3, width - ink.shape[1] - 2))
    canvas = np.zeros((height, width), dtype=np.float32)
    canvas[row : row + ink.shape[0], col : col + ink.shape[1]] = ink
    canvas *= resized(rng.uniform(0.55, 1.0, (3, 3)), (width, height), Image.Resampling.BICUBIC)  # a hurried pen skips
    paper, ink_grey = float(rng.uniform(180, 245)), float(rng.uniform(10, 80))
    pixels = paper - (paper - ink_grey) * np.clip(canvas, 0.0, 1.0)
    light = gradient(height, width, float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.85, 1.0)))
    centre = (float(rng.uniform(0, 1)), float(rng.uniform(0, 1)))
    pixels *= light * shadow(height, width, centre, float(rng.uniform(0.2, 0.5)), float(rng.uniform(0, 0.2)))
    pixels = noisy(pixels, float(rng.uniform(1, 5)), seed=int(rng.integers(2**31)))
    if rng.random() < 0.6:
        return Image.fromarray(as_uint8(pixels))
    tint = np.array([rng.uniform(0.95, 1.0), rng.uniform(0.95, 1.0), rng.uniform(0.9, 1.0)], dtype=np.float32)
    return Image.fromarray(as_uint8(pixels[:, :, None] * tint))


def askew(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A phone photo of a digit written on squared or lined notebook paper, taken a few degrees askew: the grid
    from a light print to as dark as the pen, every line tilted 1.25-4 degrees, uneven light, a blue cast."""
    height = int(rng.integers(120, 241))
    width = int(np.clip(height * rng.uniform(0.8, 1.3), 100, 260))
    ink_height = int(height * rng.uniform(0.4, 0.65))
    ink = scaled_ink(digit, ink_height, max(1.5, ink_height * rng.uniform(0.05, 0.11)), oversample=1)
    height, width = max(height, ink.shape[0] + 6), max(width, ink.shape[1] + 6)
    paper = float(rng.uniform(200, 245))
    sheet = Sheet(np.full((height, width), paper, dtype=np.float32))
    spacing = ink_height * rng.uniform(0.35, 0.6)  # 5 mm squares: the digit spans two or three
    grid = np.zeros((height, width), dtype=np.float32)
    thickness = float(rng.uniform(0.8, 1.8))
    angle = float(rng.choice([-1, 1]) * rng.uniform(1.25, 4.0))
    squared = rng.random() < 0.6
    for horizontal in (True, False) if squared else (True,):
        extent = height if horizontal else width
        for position in np.arange(rng.uniform(0, spacing), extent, spacing):
            grid = np.maximum(grid, ruling_line(height, width, horizontal, float(position), thickness, angle))
    sheet.ink(grid, paper - float(rng.uniform(40, 110)))
    row, col = int(rng.integers(2, height - ink.shape[0] - 1)), int(rng.integers(2, width - ink.shape[1] - 1))
    sheet.ink(ink, float(rng.uniform(30, 120)), row, col)
    pixels = sheet.pixels * gradient(height, width, float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.85, 1.0)))
    centre = (float(rng.uniform(0, 1)), float(rng.uniform(0, 1)))
    pixels *= shadow(height, width, centre, float(rng.uniform(0.2, 0.5)), float(rng.uniform(0, 0.2)))
    pixels = noisy(pixels, float(rng.uniform(1, 4)), seed=int(rng.integers(2**31)))
    tint = np.array([rng.uniform(0.8, 1.0), rng.uniform(0.9, 1.0), 1.0], dtype=np.float32)
    return Image.fromarray(as_uint8(pixels[:, :, None] * tint))


def pen_lifts(digit: np.ndarray, rng: np.random.Generator, cuts: int) -> np.ndarray:
    """``digit`` cut clean through at ``cuts`` points of its strokes' skeleton, each gap a little wider than the
    stroke there (a round cut narrower than a thick stroke would punch a hole in it, not a gap)."""
    strokes = strokes_of(digit)
    points = np.argwhere(skeleton(strokes))
    if len(points) == 0:
        return digit
    depth = np.zeros(digit.shape, dtype=np.float32)  # erosions each pixel survives: half the stroke's width
    inside = strokes
    while inside.any():
        depth += inside
        padded = np.pad(inside, 1)
        inside = inside & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    rows, cols = np.indices(digit.shape)
    cut = digit.copy()
    for row, col in points[rng.choice(len(points), size=min(cuts, len(points)), replace=False)]:
        radius = max(float(rng.uniform(1.0, 1.5)), float(depth[row, col]) + 0.3)
        cut[(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = 0
    return cut


def skipping(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A digit whose pen skipped, cut through in one or two places, as a form crop or a sloppy photo."""
    cut = pen_lifts(digit, rng, int(rng.integers(1, 3)))
    return form_crop(cut, rng) if rng.random() < 0.5 else sloppy(cut, rng)


def tight(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A photo or scan cropped to the digit's ink with 0-3 px of paper left, 41-160 px tall."""
    rows, cols = ink_bounds(digit)
    box = digit[rows, cols]
    height = int(rng.integers(41, 161))
    width = max(4, round(box.shape[1] * height / box.shape[0]))
    coverage = np.asarray(Image.fromarray(box).resize((width, height), Image.Resampling.BICUBIC), np.float32)
    coverage = np.pad(np.clip(coverage / 255.0, 0.0, 1.0), int(rng.integers(0, 4)))
    paper, ink = float(rng.uniform(150, 240)), float(rng.uniform(15, 100))
    pixels = noisy(paper - (paper - ink) * coverage, float(rng.uniform(1, 5)), seed=int(rng.integers(2**31)))
    return Image.fromarray(as_uint8(pixels))


def photographed(ink: np.ndarray, height: int, rng: np.random.Generator, shaded: bool = False) -> Image.Image:
    """``ink`` (coverage 0..1) somewhere on a photo at least ``height`` px tall with room around it: light paper,
    dark ink, light falling off across it, a shadow when ``shaded``, sensor noise."""
    width = max(int(height * rng.uniform(0.8, 1.3)), ink.shape[1] + 8)
    height = max(height, ink.shape[0] + 8)
    row = int(rng.integers(3, height - ink.shape[0] - 2))
    col = int(rng.integers(3, width - ink.shape[1] - 2))
    canvas = np.zeros((height, width), dtype=np.float32)
    canvas[row : row + ink.shape[0], col : col + ink.shape[1]] = ink
    paper, ink_grey = float(rng.uniform(180, 245)), float(rng.uniform(10, 90))
    pixels = paper - (paper - ink_grey) * np.clip(canvas, 0.0, 1.0)
    pixels *= gradient(height, width, float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.85, 1.0)))
    if shaded:
        centre = (float(rng.uniform(0, 1)), float(rng.uniform(0, 1)))
        pixels *= shadow(height, width, centre, float(rng.uniform(0.2, 0.5)), float(rng.uniform(0, 0.2)))
    return Image.fromarray(as_uint8(noisy(pixels, float(rng.uniform(1, 5)), seed=int(rng.integers(2**31)))))


def slanted(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A photo of a digit written fast and slanted 25-45 degrees past its own slant, three times in four leaning
    forward (as most right-handed writers lean), with a pen from fine to broad."""
    height = int(rng.integers(90, 201))
    ink_height = int(height * rng.uniform(0.4, 0.6))
    ink = scaled_ink(digit, ink_height, max(1.5, ink_height * rng.uniform(0.05, 0.14)), oversample=1)
    lean = math.tan(math.radians(rng.uniform(25, 45))) * (1 if rng.random() < 0.75 else -1)
    margin = ink_height + 4  # room for the slant: a 45-degree lean moves the top a whole height
    amplitude = float(ink_height * rng.uniform(0.0, 0.04))
    ink = crop_to_ink(warp(np.pad(ink, margin), shear=lean, rotation=0.0, amplitude=amplitude, rng=rng))
    return photographed(ink, height, rng)


def turned(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A phone photo of a digit turned 15-35 degrees either way, with a pen from fine to broad."""
    height = int(rng.integers(90, 201))
    ink_height = int(height * rng.uniform(0.4, 0.6))
    ink = scaled_ink(digit, ink_height, max(1.5, ink_height * rng.uniform(0.05, 0.14)), oversample=1)
    angle = math.radians(rng.uniform(15, 35)) * (1 if rng.random() < 0.5 else -1)
    margin = ink_height // 2 + 4  # room for the turn: a digit's corners move out by up to a third of its height
    amplitude = float(ink_height * rng.uniform(0.0, 0.04))
    ink = crop_to_ink(warp(np.pad(ink, margin), shear=0.0, rotation=angle, amplitude=amplitude, rng=rng))
    return photographed(ink, height, rng, shaded=True)


def turned_six() -> np.ndarray:
    """The grey pixels of one turned photo (``turned``, seed [78, 1426]) of ``tests.photos``' handwritten "6" that
    the builtin model reads as a "5" at 0.92 at first sight: the tests' example of what a second look flags."""
    picture = turned(handwritten_digit(6), np.random.default_rng([78, 1426]))
    return np.asarray(picture.convert("L"), np.float32)


# --- Negatives: clutter without a digit ----------------------------------------------------------------------------


def only_lines(rng: np.random.Generator) -> Image.Image:
    """A form crop with nothing but 1-4 ruling lines crossing it."""
    sheet = blank_form(rng)
    rules(sheet, rng, int(rng.integers(1, 5)))
    return finish_scan(sheet, rng)


def only_specks(rng: np.random.Generator) -> Image.Image:
    """A form crop with nothing but 2-10 specks, dots or a stray period (1-4 px)."""
    sheet = blank_form(rng)
    top, left, bottom, right = sheet.paper_box()
    for _ in range(int(rng.integers(2, 11))):
        centre = (float(rng.uniform(top + 2, bottom - 2)), float(rng.uniform(left + 2, right - 2)))
        sheet.ink(dot(float(rng.uniform(1, 4)), centre, sheet.height, sheet.width), float(rng.uniform(20, 110)))
    return finish_scan(sheet, rng)


def only_text(rng: np.random.Generator) -> Image.Image:
    """A form crop with nothing but a printed word or two, anywhere on the paper."""
    sheet = blank_form(rng)
    words = " ".join(rng.choice(FORM_WORDS, size=int(rng.integers(1, 3)), replace=False))
    coverage = printed(words, int(rng.integers(7, 12)))
    top, left, bottom, right = sheet.paper_box()
    row = int(rng.integers(top, max(top + 1, bottom - coverage.shape[0])))
    col = int(rng.integers(left - coverage.shape[1] // 4, max(left + 1, right - coverage.shape[1] * 3 // 4)))
    sheet.ink(coverage, float(rng.uniform(15, 90)), row, col)
    return finish_scan(sheet, rng)


def only_bar(rng: np.random.Generator) -> Image.Image:
    """A form crop with nothing but the scanner bed's black bar along one edge."""
    return finish_scan(blank_form(rng, bar_chance=1.0), rng)


# --- Continental handwriting ---------------------------------------------------------------------------------------


def continental(digit: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """``digit`` (uint8 28x28, white on black) as writers taught in continental Europe draw it: a "1" with a flag,
    an upstroke running from its top down to the left, and a "7" with a bar across its stem. MNIST's writers drew
    neither, and a model trained on MNIST alone often reads such a "1" as a "7". Other digits, and a "7" with
    no ink where its bar would cross, come back unchanged. The flag starts at the topmost ink (a speck above
    the digit would be taken for its top; MNIST's digits have none) and is cut off at the frame."""
    if label not in (1, 7):
        return digit
    strokes = strokes_of(digit)
    rows = np.flatnonzero(strokes.any(axis=1))
    if rows.size < 4:
        return digit
    top, height = int(rows[0]), int(rows[-1] - rows[0] + 1)
    scale = 4  # drawn four times larger, then shrunk: anti-aliased like the rest of the digit
    width = stroke_width(strokes.astype(np.float32)) * scale * rng.uniform(0.7, 1.0)
    if label == 1:
        start = (float(np.flatnonzero(strokes[top]).mean()), float(top))
        length, angle = height * rng.uniform(0.2, 0.4), math.radians(rng.uniform(35.0, 65.0))
        end = (start[0] - length * math.cos(angle), start[1] + length * math.sin(angle))
    else:
        row = top + round(height * rng.uniform(0.45, 0.62))
        stem = np.flatnonzero(strokes[row])
        if stem.size == 0:
            return digit
        cols = np.flatnonzero(strokes.any(axis=0))
        half = (cols[-1] - cols[0] + 1) * rng.uniform(0.35, 0.6) / 2
        rise = half * math.tan(math.radians(rng.uniform(-5.0, 10.0)))  # a bar rising a little to the right
        centre = float(stem.mean())
        start, end = (centre - half, row + rise), (centre + half, row - rise)
    # Only the new stroke is drawn (large, then shrunk): the digit's own pixels stay exactly as they were.
    stroke = Image.new("L", (28 * scale, 28 * scale), 0)
    pen = ImageDraw.Draw(stroke)
    ends = [((x + 0.5) * scale, (y + 0.5) * scale) for x, y in (start, end)]
    pen.line(ends, fill=int(digit.max()), width=max(2, round(width)))
    for x, y in ends:  # round ends, as a pen leaves them
        pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=int(digit.max()))
    shrunk = np.asarray(stroke.resize((28, 28), Image.Resampling.BOX))
    return np.maximum(digit, shrunk).astype(np.uint8)


KINDS: dict[str, Callable[[np.ndarray, np.random.Generator], Image.Image]] = {
    "form_crop": form_crop,
    "pen_on_form": pen_on_form,
    "tiny_bitmap": tiny_bitmap,
    "sloppy": sloppy,
    "askew": askew,
    "skipping": skipping,
    "tight": tight,
    "slanted": slanted,
    "turned": turned,
}
NEGATIVES: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "only_lines": only_lines,
    "only_specks": only_specks,
    "only_text": only_text,
    "only_bar": only_bar,
}


# --- Files ---------------------------------------------------------------------------------------------------------


def save(image: Image.Image, stem: Path, kind: str, rng: np.random.Generator, quality: int | None = None) -> Path:
    """Save as users' files of ``kind`` come: scans of forms as JPEG, bitmaps and pen scans as PNG, photos as either."""
    as_jpeg = (
        kind in ("form_crop", "askew", "skipping", "tight", "slanted", "turned")
        or kind in NEGATIVES
        or (kind == "sloppy" and rng.random() < 0.5)
    )
    if as_jpeg and image.mode in ("L", "RGB"):
        path = stem.with_suffix(".jpg")
        image.save(path, "JPEG", quality=quality or int(rng.integers(60, 91)))
    else:
        path = stem.with_suffix(".png")
        image.save(path, "PNG", optimize=True)
    return path


def write_folder(root: Path, digits: np.ndarray, labels: np.ndarray, kind: str, seed: int) -> Path:
    """Write ``digits`` as pictures of ``kind`` in an ImageFolder layout, ``root/<label>/<index:05d>.jpg|png``.

    Picture ``index`` depends only on ``seed`` and ``index``, so a longer run starts with the same pictures.
    """
    generate = KINDS[kind]
    root = Path(root)
    for label in np.unique(labels):
        (root / str(int(label))).mkdir(parents=True, exist_ok=True)
    for index, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        rng = np.random.default_rng([seed, index])
        save(generate(digit, rng), root / str(int(label)) / f"{index:05d}", kind, rng)
    return root


def write_negatives(root: Path, count: int, seed: int) -> Path:
    """Write ``count`` pictures of each negative kind to ``root/<kind>/<index:05d>.jpg``."""
    root = Path(root)
    for number, (kind, generate) in enumerate(NEGATIVES.items()):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            rng = np.random.default_rng([seed, 1000 + number, index])
            save(generate(rng), root / kind / f"{index:05d}", kind, rng)
    return root


def handwritten_set(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` MNIST-style digits cycling through 0-9, drawn from ``tests.photos.HANDWRITTEN``."""
    labels = np.arange(count) % 10
    return np.stack([handwritten_digit(int(label)) for label in labels]), labels


def write_fixtures(folder: Path, seed: int = 0) -> list[Path]:
    """A form crop of every digit (``form_crop-<label>``), two examples of each other kind
    (``<kind>-<label>``) and one of each negative (``negative-<kind>``), from handwritten-looking digits.

    JPEGs are saved at quality 75 to keep every fixture under 10 KB.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    digits, labels = handwritten_set(10)
    written = []
    for number, (kind, generate) in enumerate(KINDS.items()):
        chosen = range(10) if kind == "form_crop" else (number % 10, (number + 5) % 10)
        for index in chosen:
            rng = np.random.default_rng([seed, number, index])
            stem = folder / f"{kind}-{int(labels[index])}"
            written.append(save(generate(digits[index], rng), stem, kind, rng, quality=75))
    for number, (kind, generate) in enumerate(NEGATIVES.items()):
        rng = np.random.default_rng([seed, 1000 + number])
        written.append(save(generate(rng), folder / f"negative-{kind}", kind, rng, quality=75))
    return written


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.wild``: write example folders of every kind, or the fixture set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--count", type=int, default=50, help="digits per kind (and pictures per negative kind)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixtures", action="store_true", help="write the small flat fixture set instead")
    args = parser.parse_args(argv)
    if args.fixtures:
        for path in write_fixtures(args.out, args.seed):
            print(path)
        return
    digits, labels = handwritten_set(args.count)
    for kind in KINDS:
        print(write_folder(args.out / kind, digits, labels, kind, args.seed))
    print(write_negatives(args.out / "negatives", args.count, args.seed))


if __name__ == "__main__":
    main()
