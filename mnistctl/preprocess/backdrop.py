"""Stage 2a, backdrop: a sheet photographed on a desk, and the desk around it.

A sticky note or a card photographed on a wooden desk, or a page with the table beyond its edge in a
corner, shows a large dark region around (or beside) the paper. Taken for the paper, the desk turns the
picture inside out (the note becomes the "ink"); taken for ink, its edge becomes a stroke beside the digit.
It is found before anything else and painted over with the paper's tone, as the scanner bed's bar is.
"""

from __future__ import annotations

import numpy as np

from mnistctl.preprocess.locate import _Components as Components
from mnistctl.preprocess.locate import bar_region
from mnistctl.preprocess.paper import EVEN_SIDE, _otsu, _thickness, grown

# The search runs on a copy this small: a desk is large and its edge is straight.
_SEARCH_SIDE = 96
# The sheet: the largest light region, holes filled, at least this share of the picture...
_SHEET_SHARE = 0.15
# ...filling at least this share of the smallest rectangle round it, at any angle: a sheet is a
# quadrilateral (less a corner where the desk is seen across it); a light digit on a dark ground, however
# bold, is no rectangle (an "0" filled in is an ellipse, 0.785 of its rectangle).
_SHEET_FILL = 0.8
# Angles (degrees) at which the rectangle round the sheet is tried.
_ANGLES = np.deg2rad(np.arange(0, 90, 3))
# ...with ink inside it: holes of at least this share of its area (the digit, written on it)...
_INK_SHARE = 0.004
# ...in strokes: the largest piece of it no thicker (mean erosion depth) than this share of its length. A
# pen's strokes measure about 0.025, a bold marker's 0.05; a round counter, 0.17.
_INK_THINNESS = 0.09
# ...or than this, on a sheet filling at least this share of its rectangle: the light region round a bold
# light digit's counters filled at most 0.88 of its own (1,000 MNIST digits, thickened two ways), a note 0.89-0.98,
# and a digit drawn with a bold marker on a note measures 0.10-0.12.
_BOLD_INK_THINNESS = 0.14
_SHEET_SQUARE = 0.92
# A sheet with nothing on it is one only if it is at least this share of the picture and no more than this
# much longer than wide (a bold light "1" on a dark ground is a bar), with a desk at least this thick round it
# (a share of the shorter side, as ``_BACKDROP_DEPTH``: a squarish "0" cropped to its ink encloses a blank
# "sheet" too, but its ring measured 0.036-0.071, the desks round empty notes 0.10-0.21).
_BLANK_SHARE = 0.25
_BLANK_ASPECT = 2.0
_BLANK_DESK_DEPTH = 0.09
# The backdrop: dark regions outside the sheet touching the picture's edge along at least this share of its
# perimeter (a stroke of the digit that runs off the edge touches it along a stroke's width)...
_BACKDROP_BORDER = 0.12
# ...at least this thick (mean erosion depth, a share of the shorter side: a bold stroke is about 0.025)...
_BACKDROP_DEPTH = 0.03
# ...and at least this share of the picture.
_BACKDROP_SHARE = 0.03
# The desk is darker than this share of the sheet's tone, and by this many grey levels at least.
_DESK_SHADE = 0.65
_DESK_CONTRAST = 50
# Parts of the desk thinner than twice this share of the shorter side are no desk (a rule, a stroke).
_DESK_OPENING = 0.02
# A desk is at least this many times as thick as the writing's strokes (a bold digit cropped tight runs
# off the edges as a desk does).
_OVER_STROKES = 3.0
# A desk along one edge (this share of it at least, and less of the others) at least this share of which lies
# outside the bars along the edges is more than a scanner's bar.
_ALONG_SIDE = 0.5
_NOT_A_BAR = 0.25
# The backdrop painted over reaches this share of the shorter side into the sheet: its edge is blurred.
_EDGE_BLUR = 0.02


def backdrop_region(work: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The pixels of ``work`` (grey levels) that are a dark desk round a light sheet, or beyond its edge, and
    the sheet's tone to paint them with; None where there is no such desk. (A dark slate on a light desk is
    not looked for.)"""
    height, width = work.shape
    if max(height, width) <= EVEN_SIDE:
        return None
    factor = -(-max(height, width) // _SEARCH_SIDE)
    small = work[::factor, ::factor]
    level = _otsu(np.bincount(small.ravel(), minlength=256))
    light = small > level
    regions = Components(light)
    if regions.count == 0:
        return None
    biggest = int(regions.area.argmax())
    dark = Components(~light)
    small_h, small_w = small.shape
    on_edge = dark.at_edge()
    # Inside the sheet: dark regions that reach no edge and lie within the sheet's box (the ink on it).
    top, bottom = regions.top[biggest], regions.bottom[biggest]
    left, right = regions.left[biggest], regions.right[biggest]
    within = (dark.top >= top) & (dark.bottom <= bottom) & (dark.left >= left) & (dark.right <= right)
    holes = ~on_edge & within
    sheet = regions.one(biggest) | dark.mask_of(holes)
    area = float(sheet.sum())
    fill, (long_side, short_side) = _rectangle(sheet)
    if area < _SHEET_SHARE * small.size or fill < _SHEET_FILL:
        return None
    ink = dark.mask_of(holes)
    blank = ink.sum() < _INK_SHARE * area
    stroke = 0.0
    if not blank:
        # The writing is strokes: thin for their length. A light digit's counters (a bold "8" on a dark
        # ground, whose strokes would pass for a sheet) are round blobs, as thick as they are long.
        writing = int(np.flatnonzero(holes)[dark.area[holes].argmax()])
        stroke, longest = _measured(work, level, dark, writing, factor)
        thinness = _BOLD_INK_THINNESS if fill >= _SHEET_SQUARE else _INK_THINNESS
        if stroke > thinness * longest:
            return None
        stroke /= factor  # in the search copy's pixels, as the desk is measured
    elif area < _BLANK_SHARE * small.size or long_side > _BLANK_ASPECT * short_side:
        return None  # a blank sheet is a large square-ish one, filling its box (no light digit is)
    # The desk: regions much darker than the sheet (a shadow or a lighting gradient darkens paper far less),
    # touching the edge, thick and large. What is thin in them is opened away first: a rule running into a
    # scanner's bar, a stroke touching the desk's edge.
    tone = float(np.median(small[sheet & light]))
    darker = (small < min(_DESK_SHADE * tone, tone - _DESK_CONTRAST)) & ~sheet
    reach = max(1, round(_DESK_OPENING * min(small_h, small_w)))
    darker = grown(~grown(~darker, reach), reach) & darker
    desks = Components(darker)
    on_edge = desks.at_edge()
    border = np.zeros_like(light)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    touching = desks.total(border.astype(np.float32))
    wide = touching >= _BACKDROP_BORDER * border.sum()
    desk = on_edge & wide & (desks.area >= _BACKDROP_SHARE * small.size)
    chosen = np.zeros_like(light)
    for index in np.flatnonzero(desk):
        region = desks.one(index)
        depth = _thickness(region)
        least = (_BLANK_DESK_DEPTH if blank else _BACKDROP_DEPTH) * min(small_h, small_w)
        if depth >= least and depth >= _OVER_STROKES * stroke:
            chosen |= region
    if not chosen.any():
        return None
    # A scanner bed's bar along one edge is painted over later, as bars are (``bar_region``); a desk round a
    # note runs along every edge.
    along = [chosen[0].mean(), chosen[-1].mean(), chosen[:, 0].mean(), chosen[:, -1].mean()]
    sides = sum(share >= _ALONG_SIDE for share in along)
    if sides == 1 and (chosen & ~bar_region(darker)).sum() < _NOT_A_BAR * chosen.sum():
        return None
    # With nothing written on the sheet, only a desk all round it is sure: a shadow across a page, or a bold
    # digit cropped tight, leaves a light region as blank and runs along two or three edges.
    if blank and sides < 4:
        return None
    full = np.repeat(np.repeat(chosen, factor, axis=0), factor, axis=1)[:height, :width]
    painted = grown(full, max(1, round(_EDGE_BLUR * min(height, width))))
    return None if painted.all() else (painted, tone)


def _measured(work: np.ndarray, level: int, dark: Components, index: int, factor: int) -> tuple[float, int]:
    """The stroke (mean erosion depth) and the longer side of the largest piece of ink (``work`` at or below
    ``level``) in the box of ``dark``'s shape ``index`` (found in the search copy, every ``factor``-th pixel),
    measured in ``work``'s own pixels: a small digit's strokes, a pixel or two wide in the search copy, are
    blobs there as thick for their length as a bold light digit's counters (a "1" on a note, 0.11 of its
    length)."""
    top, bottom = dark.top[index] * factor, min(work.shape[0], (dark.bottom[index] + 1) * factor)
    left, right = dark.left[index] * factor, min(work.shape[1], (dark.right[index] + 1) * factor)
    pieces = Components(work[top:bottom, left:right] <= level)
    if pieces.count == 0:
        return 0.0, 1
    biggest = int(pieces.area.argmax())
    longest = max(pieces.bottom[biggest] - pieces.top[biggest], pieces.right[biggest] - pieces.left[biggest])
    return _thickness(pieces.one(biggest)), int(longest)


def _rectangle(mask: np.ndarray) -> tuple[float, tuple[float, float]]:
    """The area of ``mask`` over that of the smallest rectangle round it (tried at every few degrees), and that
    rectangle's longer and shorter sides."""
    rows = np.flatnonzero(mask.any(axis=1))
    first = mask[rows].argmax(axis=1)
    last = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    # The outline's extreme points per row (pixel corners) hold every extreme of the shape at any angle.
    ys = np.concatenate([rows, rows, rows + 1, rows + 1]).astype(np.float64)
    xs = np.concatenate([first, last + 1, first, last + 1]).astype(np.float64)
    cos, sin = np.cos(_ANGLES)[:, None], np.sin(_ANGLES)[:, None]
    along, across = xs * cos + ys * sin, ys * cos - xs * sin
    lengths, widths = along.max(axis=1) - along.min(axis=1), across.max(axis=1) - across.min(axis=1)
    best = int((lengths * widths).argmin())
    sides = (float(max(lengths[best], widths[best])), float(min(lengths[best], widths[best])))
    return float(mask.sum()) / float(lengths[best] * widths[best]), sides
