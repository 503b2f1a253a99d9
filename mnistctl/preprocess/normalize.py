"""Stage 4, normalize: the located digit's ink -> 28x28 the MNIST way.

Fit the longer side into 20 px keeping the aspect ratio (thickening strokes a big downscale would make
thinner than MNIST's, growing tiny scans smoothly), then place it in 28x28 with its centre of mass at
(14, 14), ink ~255 on exactly 0, shearing a digit slanted further than MNIST's back to their range.
"""

from __future__ import annotations

import math

import numpy as np

from mnistctl.preprocess.decode import NoDigitError
from mnistctl.preprocess.paper import sliding

MNIST_SIDE = 28
DIGIT_BOX = 20
CENTRE = 14.0
"""Where the centre of mass goes, in pixel indices (row and column), as in MNIST's own centring."""

# MNIST strokes are 2-3 px wide; thinner ones (a fine pen in a big photo) are thickened to this.
_MIN_STROKE = 2.0
# Crops scaled by this or more (less than twice the final size) are not thickened: a pixel of dilation
# there is most of a final pixel, and fills small loops.
_THICKEN_BELOW = 0.5
# Large crops are reduced to this multiple of the final size first, so thickening works on few pixels.
_OVERSAMPLE = 4
# Anti-aliasing residue below this fraction of the peak is set to exactly 0, like MNIST's background.
_ZERO_BELOW = 0.03
# MNIST's own slants: the moment skew (mu11 / mu02: columns per row, positive leaning left) of 90% of its training
# digits lies within these (5th and 95th percentiles of 20,000: -0.58 and 0.35). A digit slanted further, as fast
# writing is at 30-40 degrees, is sheared back to the nearer one; within them, nothing changes.
_SLANT_RANGE = (-0.6, 0.4)
# ...unless, sheared upright, it would still be this much wider than tall: no digit is (a "0" or "2" is at
# most about 1.3x), a printed word is, and its skew says nothing of a hand's slant.
_UPRIGHT_ASPECT = 1.3


def raw_mnist(gray: np.ndarray) -> np.ndarray:
    """For images that are already MNIST-style: resize to 28x28 if needed (bilinear), nothing else."""
    image = checked(gray, "image")
    if image.shape == (MNIST_SIDE, MNIST_SIDE):
        return image.copy() if image is gray else image
    from PIL import Image

    resized = Image.fromarray(image, "F").resize((MNIST_SIDE, MNIST_SIDE), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 255.0)


def checked(gray: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(gray)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"{name}: expected a 2-D grey image, got an array of shape {image.shape}")
    if image.dtype != np.float32:
        image = image.astype(np.float32)
    if not np.isfinite(image).all():
        image = np.nan_to_num(image, nan=0.0, posinf=255.0, neginf=0.0)
    return image


def fit_box(ink: np.ndarray, core: np.ndarray, scale: float) -> tuple[np.ndarray, float, float]:
    """Bring a crop much larger than the result down to ``_OVERSAMPLE`` times the final size; thicken thin strokes
    (a fine pen scanned at 100 px is as thin after fitting into 20 px as one photographed at 2000 px).

    Returns the image, its size relative to the crop, and how many of its pixels thickening added on each
    side. At the intermediate size a stroke that would end up thinner than ``_MIN_STROKE`` final pixels is
    widened by a max filter (a mild dilation). A hairline first becomes a solid 3 px line: a 3x3 box sum
    divided by the stroke's cross-section is 1 wherever the window holds the whole stroke, even where it
    straddles two pixels, while a speck (much less ink than a stroke's cross-section) stays faint.
    """
    if scale >= _THICKEN_BELOW:
        return ink, 1.0, 0.0
    middle = min(1.0, scale * _OVERSAMPLE)  # crops up to 4x the final size are thickened as they are
    small = ink
    if middle < 1:
        height, width = ink.shape
        rows = resampling(0.0, 1 / middle, height, math.ceil(height * middle))
        cols = resampling(0.0, 1 / middle, width, math.ceil(width * middle))
        small = (rows @ ink @ cols.T).astype(np.float32)
    stroke = _stroke_width(small, core, middle) * middle  # in intermediate pixels
    if stroke <= 0:  # no ink at all: nothing to thicken (placed() says there is no digit)
        return small, middle, 0.0
    target = _MIN_STROKE * middle / scale
    if stroke >= target - 1:
        return small, middle, 0.0
    width = stroke
    if stroke < 3:  # a hairline: make it a solid 3 px line, even where it straddles two pixels
        small = np.minimum(_box_sum(small, 3) / np.float32(3 * stroke), 1.0)
        width = 3.0
    grow = int((target - width) / 2 + 0.5)
    if grow:
        small = sliding(small, 2 * grow + 1, np.maximum)
    return small, middle, (width + 2 * grow - stroke) / 2


def _box_sum(values: np.ndarray, size: int) -> np.ndarray:
    """Sum over a ``size`` x ``size`` window (zeros outside), same shape, via cumulative sums."""
    half = size // 2
    framed = padded(values, half + 1, np.float64)[:-1, :-1]
    table = framed.cumsum(axis=0).cumsum(axis=1)
    total = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    return total.astype(np.float32)


def _stroke_width(small_ink: np.ndarray, core: np.ndarray, middle: float) -> float:
    """Typical stroke width in crop pixels: twice the ink area over the length of the core's boundary."""
    inner = core[1:-1, 1:-1] & core[:-2, 1:-1] & core[2:, 1:-1] & core[1:-1, :-2] & core[1:-1, 2:]
    boundary = int(core.sum()) - int(inner.sum())
    area = float(small_ink.sum()) / (middle * middle)
    return 2.0 * area / max(boundary, 1)


def placed(digit: np.ndarray, scale: float, core: tuple[float, ...], name: str, *, deslant: bool = False) -> np.ndarray:
    """Resample ``digit`` by ``scale`` into 28x28 with its centre of mass on pixel (14, 14); peak -> 255.

    The shift is sub-pixel, part of the resampling, so the result moves smoothly with the input (MNIST
    shifted by whole pixels; a digit already centred that way may move by up to half a pixel and blur a
    little). It is limited so that the ``core`` box (top, bottom, left, right) stays inside the canvas.
    With ``deslant``, a digit slanted further than MNIST's digits are is sheared back to their range, about
    its centre of mass, in the same resampling, and fitted into the 20 px box again as it stands upright.
    """
    rows, cols = digit.sum(axis=1), digit.sum(axis=0)
    total = float(rows.sum())
    if total <= 0:
        raise NoDigitError(f"no digit found in {name} (nothing stands out from the background)")
    centre_row = float(rows @ np.arange(0.5, rows.size)) / total
    centre_col = float(cols @ np.arange(0.5, cols.size)) / total
    shear = excess_slant(digit, centre_row, centre_col) if deslant else 0.0
    if shear:
        upright = _upright_fit(digit, shear, centre_row, scale, core)
        if upright is None:
            shear = 0.0
        else:
            scale, core = upright
    step = 1.0 / scale
    top = _canvas_start(centre_row, core[0], core[1], scale)
    left = _canvas_start(centre_col, core[2], core[3], scale)  # (sheared upright, the centre column stays)
    down = resampling(top, step, rows.size, MNIST_SIDE)
    if shear:
        # Output row r samples the columns shifted by the shear times its height below the centre of mass.
        heights = top + step * (np.arange(MNIST_SIDE) + 0.5) - centre_row
        strips = down @ digit
        canvas = np.stack(
            [
                strip @ resampling(left + shear * height, step, cols.size, MNIST_SIDE).T
                for strip, height in zip(strips, heights, strict=True)
            ]
        ).astype(np.float32)
    else:
        canvas = (down @ digit @ resampling(left, step, cols.size, MNIST_SIDE).T).astype(np.float32)
    peak = float(canvas.max())
    if peak <= 0:
        raise NoDigitError(f"no digit found in {name} (nothing stands out from the background)")
    # Rescale so the peak is 255, and zero the faint resampling residue (MNIST's background is exactly 0).
    scaled = canvas * np.float32(255.0 / peak)
    return np.where(scaled >= 255.0 * _ZERO_BELOW, np.minimum(scaled, 255.0), np.float32(0.0))


def _canvas_start(centre: float, first: float, last: float, scale: float) -> float:
    """Where the canvas begins along one axis, in digit pixels: ``centre`` (of mass) on pixel 14, moved as
    little as keeps ``first``..``last`` (the core box) inside it."""
    start = centre - (CENTRE + 0.5) / scale
    span = MNIST_SIDE / scale
    if last - first <= span:
        start = min(max(start, last - span), first)
    return start


def _upright_fit(
    digit: np.ndarray, shear: float, centre_row: float, scale: float, core: tuple[float, ...]
) -> tuple[float, tuple[float, ...]] | None:
    """The scale and core box of ``digit`` sheared upright by ``shear`` about ``centre_row``: standing upright, a
    slanted digit is narrower, and its longer side is fitted into the 20 px box again (measured on its strokes,
    the pixels of at least half its peak, before and after; ``scale`` fitted the box before). Columns of the
    box are the sheared ones. None when it would stand wider than a digit (``_UPRIGHT_ASPECT``)."""
    ys, xs = np.nonzero(digit >= 0.5 * float(digit.max()))
    upright = xs + 0.5 - shear * (ys + 0.5 - centre_row)
    tall = float(ys.max() + 1 - ys.min())
    before = max(tall, float(xs.max() + 1 - xs.min()))
    wide = float(upright.max() - upright.min()) + 1.0
    if wide > _UPRIGHT_ASPECT * tall:
        return None
    after = max(tall, wide)
    return scale * before / after, (core[0], core[1], float(upright.min()) - 0.5, float(upright.max()) + 0.5)


def excess_slant(digit: np.ndarray, centre_row: float, centre_col: float) -> float:
    """How far (columns per row) ``digit``'s slant lies outside MNIST's range, ``_SLANT_RANGE``: 0 within it.
    The slant is the moment skew mu11 / mu02 about the centre of mass (``centre_row``, ``centre_col``)."""
    ys = np.arange(0.5, digit.shape[0]) - centre_row
    xs = np.arange(0.5, digit.shape[1]) - centre_col
    spread = float(digit.sum(axis=1) @ (ys * ys))
    if spread <= 0:  # a single row: no slant to speak of
        return 0.0
    slant = float(ys @ digit @ xs) / spread
    low, high = _SLANT_RANGE
    return slant - high if slant > high else slant - low if slant < low else 0.0


def resampling(start: float, step: float, size: int, count: int) -> np.ndarray:
    """Weights (``count`` x ``size``) resampling a line of ``size`` pixels into ``count``, output pixel i
    covering [start + i step, start + (i + 1) step) of the input; ``W @ image @ V.T`` resamples an image.

    Shrinking, an output pixel averages the area it covers (Pillow's BOX); growing, it interpolates
    linearly between the nearest pixel centres (BILINEAR). Pixels outside the input count as 0.
    """
    edges = (start + step * np.arange(count + 1)).astype(np.float32)
    pixels = np.arange(size, dtype=np.float32)
    if step >= 1:
        # How much of each pixel lies left of each edge (0..1); an output pixel gets the difference.
        covered = edges[:, None] - pixels
        np.minimum(np.maximum(covered, 0.0, out=covered), 1.0, out=covered)
        weights = covered[1:] - covered[:-1]
        weights *= np.float32(1.0 / step)
        return weights
    distance = np.abs((edges[:-1, None] + np.float32(step / 2 - 0.5)) - pixels)  # output centre to pixel centre
    return np.maximum(np.float32(1.0) - distance, 0.0, out=distance)


def padded(values: np.ndarray, width: int, dtype=None) -> np.ndarray:
    """``values`` inside a frame of zeros ``width`` wide (np.pad costs ten times more on small arrays)."""
    height, cols = values.shape
    frame = np.zeros((height + 2 * width, cols + 2 * width), dtype=dtype or values.dtype)
    frame[width : width + height, width : width + cols] = values
    return frame
