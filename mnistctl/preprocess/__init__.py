"""Turn any image -- a phone photo of ink on paper, a scan, a crop of a form -- into a 28x28 MNIST-style array.

MNIST digits are white ink on black, fitted into a 20x20 box and centred by centre of mass; ``to_mnist``
makes a photo or scan look like that, in four stages, one module each:

- ``decode``: any file or stdin bytes -> grey levels, safely (``load_gray``);
- ``paper``: which way round the ink is, the paper under it, how dark the ink is (``backdrop`` first: the
  desk round a sheet photographed on it; then ``shadow``: a hard shadow's edge across the page, or a table's
  beyond the page's edge);
- ``locate``: the handwritten digit among ruling lines, bars, specks, periods and printed text;
- ``normalize``: fit into 20x20 keeping the aspect ratio, centre by mass in 28x28.

``raw_mnist`` only resizes (``--raw``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mnistctl.errors import MnistctlError
from mnistctl.preprocess.backdrop import backdrop_region
from mnistctl.preprocess.decode import MAX_PIXELS, InvalidImageError, NoDigitError, load_gray
from mnistctl.preprocess.locate import (
    AllRefusedError,
    Located,
    bar_region,
    find_digit,
    hysteresis_shapes,
    mask_box,
    stacked_pieces,
)
from mnistctl.preprocess.normalize import (
    CENTRE,
    DIGIT_BOX,
    MNIST_SIDE,
    checked,
    fit_box,
    placed,
    raw_mnist,
)
from mnistctl.preprocess.paper import (
    DARK_STEPS,
    DARK_ZERO,
    EVEN_SIDE,
    MIN_CONTRAST,
    TINY_SIDE,
    darkness_bins,
    grown,
    ink_levels,
    paper_estimate,
    polarity_and_paper,
    work_copy,
)
from mnistctl.preprocess.shadow import relit

__all__ = [
    "CENTRE",
    "DIGIT_BOX",
    "MAX_PIXELS",
    "MNIST_SIDE",
    "InvalidImageError",
    "NoDigitError",
    "load_gray",
    "preprocess",
    "preprocess_many",
    "raw_mnist",
    "to_mnist",
]

# Pixels darker than this fraction of the paper's tone may belong to a bar at the image's edge.
_BAR_DARKNESS = 0.6
# The strokes chosen as the digit are on average at least this much darker than the paper, relatively
# (the digits of the synthetic form crops measured 0.25-0.73; paper grain, stains and shadows that passed
# the threshold, 0.12-0.14).
_MIN_DARKNESS = 0.2
# A digit found only below the ink's threshold must have most of its pixels (over this share) further than
# this many pixels from the ink above it, which was all print, rules or specks.
_FRINGE = 2
_FRINGE_SHARE = 0.5
# ...unless lighter ink joins pieces at least _PIECE_PX tall, one above another, into one digit, its box at
# most _COMPLETES times theirs each way.
_PIECE_PX = 2
_COMPLETES = 1.5
# Below this many images a process pool costs more than it saves.
_PARALLEL_FROM = 64


def preprocess(source: Path | bytes, name: str, *, raw: bool = False, readings: bool = False) -> np.ndarray:
    """Decode ``source`` (a path, or the bytes of an image read from stdin) into a float32 28x28 array; with
    ``readings``, a (K, 28, 28) stack of ``to_mnist``'s readings (one with ``raw``)."""
    gray = load_gray(source, name)
    if raw:
        return raw_mnist(gray)[None] if readings else raw_mnist(gray)
    return to_mnist(gray, name=name, readings=readings)


def _preprocess_item(item: tuple[Path | bytes, str, bool, bool]) -> np.ndarray | str:
    source, name, raw, readings = item
    try:
        return preprocess(source, name, raw=raw, readings=readings)
    except MnistctlError as exc:
        return str(exc)


def preprocess_many(
    items: list[tuple[Path | bytes, str]], *, raw: bool = False, parallel: bool = True, readings: bool = False
) -> list[np.ndarray | str]:
    """``preprocess`` for many images, in order: each result is a 28x28 array (with ``readings``, a (K, 28, 28)
    stack) or an error message.

    Large batches are spread over forked worker processes (decoding and the numpy steps hold the
    GIL, so threads would not help); the parent has imported nothing that dislikes ``fork``. With
    ``parallel`` false everything runs in this thread (a server must not fork per request).
    """
    import multiprocessing
    import os

    jobs = [(source, name, raw, readings) for source, name in items]
    workers = min(os.cpu_count() or 1, len(jobs) // _PARALLEL_FROM) if parallel else 1
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [_preprocess_item(job) for job in jobs]
    with multiprocessing.get_context("fork").Pool(workers, initializer=_quiet_worker) as pool:
        return pool.map(_preprocess_item, jobs, chunksize=max(1, len(jobs) // (workers * 4)))


def _quiet_worker() -> None:
    """In a worker: die quietly on SIGTERM, which is how the pool ends its workers, and leave Ctrl-C to the
    parent, which ends the pool. A forked worker inherits its parent's handlers (``train`` turns SIGTERM into an
    interruption); raising in a worker printed its traceback, after ``train --data`` had read its folder or
    when Ctrl-C stopped ``predict`` reading one, and could leave the pool waiting for good on a worker that died
    holding its queue's lock."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def to_mnist(gray: np.ndarray, *, name: str = "image", readings: bool = False) -> np.ndarray:
    """Make a photo or scan of one digit look like an MNIST digit: float32 28x28, ink ~255 on exactly 0.

    Steps: tell dark ink on light paper from light ink on dark (inverting the first); flatten the paper --
    texture, lighting gradients, shadows -- by dividing by a paper estimate; find the ink with Otsu's
    threshold above the paper's noise; locate the digit among the clutter and measure its ink again without
    the clutter; crop; fit the longer side into 20 px (thickening strokes that a big downscale would make
    thinner than MNIST's); and resample into 28x28 with the centre of mass at (14, 14). ``name`` only
    labels the ``NoDigitError`` raised for an image with no digit on it (blank, or nothing digit-like that
    stands out from its background); callers pass the file name. An array that is not 2-D is a programming
    error (``ValueError``), not a bad image.

    With ``readings`` the result is a (K, 28, 28) stack: the picture above, then, when strokes in the digit's
    ink were left out that may belong to it (``Located.doubt``: a 7's bar drawn apart from its stem, or a
    stroke beyond a pen lift), the picture with them in; that one first where it is the likelier
    (``Located.doubt_first``: a bold stroke along a tight crop's edge, taken out as a rule). ``predict`` weighs
    the readings' answers (``prediction.weigh_readings``).
    """
    image = checked(gray, name)
    if float(image.max()) - float(image.min()) < MIN_CONTRAST:
        raise NoDigitError(f"no digit found in {name} (the image is blank)")
    work = work_copy(image)
    # A sheet photographed on a desk: the desk is painted over with the sheet's tone before anything else,
    # or it would be taken for the paper (the sheet for the ink) or its edge for a stroke.
    painted = None
    desk = backdrop_region(work)
    if desk is not None:
        painted, sheet_tone = desk
        work = np.where(painted, np.uint8(round(sheet_tone)), work)
    # A hard shadow's edge across the page: its darker side is lifted to the lit side's tone, or the paper estimate
    # would smear the step into a stroke (or take a narrow wedge of shadow for one). A table beyond a page's
    # slanted edge, darker than a shadow, is painted over as the desk round a sheet is.
    shaded = relit(work)
    if shaded is not None:
        work, table = shaded
        if table is not None:
            painted = table if painted is None else painted | table
    light, paper_tone, flat = polarity_and_paper(work)
    if light:
        work = 255 - work  # from here on: dark ink on light paper
    if max(work.shape) > TINY_SIDE:
        # The scanner bed's dark edge is wider than a stroke, so the paper estimate would take it for
        # shadowed paper and leave its rim as ink: paint it over with paper before anything else.
        bars = bar_region(work < _BAR_DARKNESS * paper_tone)
        if bars.any():
            painted = bars if painted is None else painted | bars
            work = np.where(bars, np.uint8(min(255, round(paper_tone))), work)
    # A small image whose whole border is one tone is a scan or a drawing, not a photo with uneven light; nor
    # is a tiny bitmap, whatever its border (a bold stroke stretched to fill it may cover most of the border).
    even = (flat and max(work.shape) <= EVEN_SIDE) or max(work.shape) <= TINY_SIDE
    paper, paper_tone = paper_estimate(work, paper_tone if even else None)
    quantised = darkness_bins(work, paper)
    low, threshold, level = ink_levels(quantised, name)
    if level * paper_tone < MIN_CONTRAST:
        raise NoDigitError(f"no digit found in {name} (nothing stands out from the background)")
    faint = quantised > DARK_ZERO + DARK_STEPS * low  # everything above the paper's noise
    # Half-way between the paper's noise and the ink's threshold, grown from the ink: a thin pen's faint
    # stroke stays in one piece.
    half_way = (threshold + DARK_ZERO + DARK_STEPS * low) / 2
    shapes = hysteresis_shapes(quantised > threshold, quantised > half_way)
    strokes = shapes.mask_of(None)
    darkness = quantised - np.float32(DARK_ZERO)
    try:
        found = find_digit(strokes, name, faint, darkness, painted, shapes)
    except AllRefusedError:
        found = _under_the_print(quantised > half_way, strokes, name, faint, darkness, painted)
    digit_darkness = (float(quantised[found.digit].mean()) - DARK_ZERO) / DARK_STEPS
    if digit_darkness < _MIN_DARKNESS or digit_darkness * paper_tone < MIN_CONTRAST:
        raise NoDigitError(f"no digit found in {name} (only faint marks: stains, noise or shadows)")
    levels = (low, threshold, level)
    picture = _picture(found, work, quantised, paper, levels, name)
    if found.doubt is None or not (readings or found.doubt_first):
        return picture[None] if readings else picture
    fuller_digit = found.digit | found.doubt
    fuller = Located(fuller_digit, mask_box(fuller_digit), found.clutter & ~found.doubt, found.faded)
    try:
        fuller_picture = _picture(fuller, work, quantised, paper, levels, name)
    except MnistctlError:  # (the fuller digit may not fit: then there is one reading)
        return picture[None] if readings else picture
    if not readings:
        return fuller_picture  # the likelier reading, as ``predict`` weighs it first (folder training uses this)
    pictures = [picture, fuller_picture]
    return np.stack(pictures[::-1] if found.doubt_first else pictures)


def _picture(
    found: Located,
    work: np.ndarray,
    quantised: np.ndarray,
    paper: np.ndarray | float,
    levels: tuple[float, int, float],
    name: str,
) -> np.ndarray:
    """The 28x28 picture of the digit ``found`` in ``work`` (dark ink on light paper; ``paper``: its estimate,
    ``quantised``: each pixel's darkness, ``levels``: the paper's noise, the ink's threshold and level as
    ``ink_levels`` measured them with the clutter in)."""
    low, threshold, level = levels
    # The clutter (a black bar, dark ruling lines) may have set the ink levels: measure them again without it.
    top, bottom, left, right = found.box
    reach = max(2, round(0.04 * max(bottom - top, right - left)))
    near_digit = grown(found.digit if found.faded is None else found.digit | found.faded, reach)
    # Clutter beside or across the digit (a ruling line through it, a period) is not the digit's ink.
    clutter = grown(found.clutter, 1) & ~found.digit
    near_digit &= ~clutter
    first_threshold = threshold
    if found.clutter.any():
        quantised = np.where(clutter, np.uint8(DARK_ZERO), quantised)
        low, threshold, level = ink_levels(quantised, name)
    # The box is that of the ink over the threshold; the faint fringe that joined broken strokes is left out.
    # Measured without the clutter, the threshold may rise above a lighter stroke of the digit (a 7's bar
    # drawn faster than its stem, the clutter lighter still): what was ink before stays in the box.
    inked = (quantised > min(threshold, first_threshold)) & near_digit
    has_ink = bool(inked.any())
    if has_ink:
        top, bottom, left, right = mask_box(inked)
    core = inked if has_ink else found.digit
    side = max(bottom - top, right - left)
    margin = max(1, math.ceil(0.06 * side))  # room for the anti-aliased edge around the core
    box = (top, bottom, left, right)
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(work.shape[0], bottom + margin), min(work.shape[1], right + margin)
    crop = (slice(top, bottom), slice(left, right))
    darkness = 1.0 - np.divide(work[crop], paper if np.isscalar(paper) else paper[crop], dtype=np.float32)
    # (np.minimum/np.maximum rather than np.clip: a third of the cost on small arrays)
    ink = np.minimum(np.maximum((darkness - low) / np.float32(level - low), 0.0), 1.0)
    ink *= near_digit[crop]  # only the digit's strokes: nothing of the clutter beside them
    digit, zoom, thickened = fit_box(ink, core[crop], DIGIT_BOX / side)
    # The box around the ink in the digit's pixels: the core box, plus what thickening added.
    inner = [(edge - origin) * zoom for edge, origin in zip(box, (top, top, left, left), strict=True)]
    inner = [inner[0] - thickened, inner[1] + thickened, inner[2] - thickened, inner[3] + thickened]
    # A normalised scan (USPS, Semeion) was stretched to fill its box: its slant is the stretch's, not the hand's.
    deslant = max(work.shape) > TINY_SIDE
    return placed(digit, DIGIT_BOX / (side * zoom + 2 * thickened), inner, name, deslant=deslant)


def _under_the_print(
    lighter: np.ndarray,
    strokes: np.ndarray,
    name: str,
    faint: np.ndarray,
    darkness: np.ndarray,
    painted: np.ndarray | None,
) -> Located:
    """The digit drawn in lighter ink than the clutter, when every shape over the ink's threshold
    (``strokes``) was refused as print or a rule's stub: black print can set the threshold above a pencil's
    whole digit. Looks again at the ``lighter`` ink (over half-way from the paper's noise to the threshold),
    and takes a digit only if it lies clear of the strokes refused (the fringe of print, seen at a lower
    threshold, is print too; the clutter is then measured out of the ink's levels). Raises
    ``NoDigitError`` when there is none."""
    refused = NoDigitError(f"no digit found in {name} (only printed text, specks or lines stand out)")
    shapes = hysteresis_shapes(lighter, faint)
    fainter = shapes.mask_of(None)
    if not (fainter & ~strokes).any():
        raise refused
    found = find_digit(fainter, name, faint, darkness, painted, shapes)
    if (found.digit & grown(strokes, _FRINGE)).sum() > _FRINGE_SHARE * found.digit.sum() and not _completes(
        found, strokes
    ):
        raise refused
    return found


def _completes(found: Located, strokes: np.ndarray) -> bool:
    """Whether the lighter ink of ``found`` joins refused ``strokes`` lying one above the other into one digit,
    staying about their size: a digit whose faint stretch broke it into pieces, each refused as a word or a
    stub (a 2's arc over its foot), or a pencil digit with darker spots. A stub or a word that lighter ink
    runs on from into the paper's noise grows far past what was refused, and letters side by side are no
    such pieces. (``found`` has passed the word and text-row tests at the lighter threshold already.)"""
    top, bottom, left, right = found.box
    refused = strokes & found.digit
    if not stacked_pieces(refused, _PIECE_PX):
        return False
    rows, cols = np.nonzero(refused)
    seen_tall, seen_wide = rows.max() + 1 - rows.min(), cols.max() + 1 - cols.min()
    return bottom - top <= _COMPLETES * seen_tall and right - left <= _COMPLETES * seen_wide
