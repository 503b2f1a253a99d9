"""Stage 2b, shadow: the hard-edged shadow of a phone or a hand across the page, lifted before the paper is measured.

A shadow dims the paper under it by one factor and ends along a sharp edge, straight or nearly. The paper estimate
(``paper.paper_estimate``, a closing then a blur) follows lighting that varies slowly; it smears a sharp step
into a band of "ink" along the edge, and where the shadow narrows into a corner (thinner than its kernel) it
takes the shadow itself for a stroke: a "1" read at 0.99 on an empty page. So the step is found first: an edge
across the picture (a straight line, or one bent a little: a hand's shadow), on one side of which everything is
darker by the same factor as far as the picture goes, the profile across it flat on each side. The shadowed
side is then brightened by that factor (following the edge's own soft profile), and the rest of the pipeline
sees an evenly lit page.

A soft edge is lifted along its own profile too, while each side is flat beyond it; light that changes across
much of the picture is left to the paper estimate, which follows it. An edge bent further than a parabola
follows (the rim of a disc half a picture across) is lifted only where it fits.

The same search finds the edge of a page photographed on a table that shows beyond it along a side, darker than
any shadow: that is painted over with the paper's tone, as ``backdrop`` paints a desk all round a sheet, unless
it is a scanner's bar along an edge (``locate.bar_region`` paints those). A slanted edge left a sliver beyond
the bar, read as a "1" on an empty page.
"""

from __future__ import annotations

import numpy as np

from mnistctl.preprocess.locate import bar_region
from mnistctl.preprocess.paper import EVEN_SIDE, _thickness, grown

# The search runs on a copy about this size (longer side): a shadow's edge is long and straight.
_SEARCH_SIDE = 128
# Pixels whose log brightness changes faster than this per pixel (of the search copy) vote for an edge.
_LEAST_GRADIENT = 0.025
# Edge directions are binned this coarsely (degrees), offsets in pixels of the search copy.
_ANGLE_STEP = 3
_OFFSET_STEP = 2
# A coarse line is fitted to the pixels within twice this many pixels of it (then, twice more, this many) whose
# gradient faces within about 25 degrees of its own.
_FIT_BAND = 4.0
_FIT_FACING = 0.9
# The strongest few lines are tried in turn.
_CANDIDATES = 6
# The step: the shadow dims the paper by at least 12% (a gradient's share is left to the paper estimate) and
# to no less than 30% of its tone (a black scanner bed or a dark desk is no shadow: ``bar_region``, ``backdrop``).
_LEAST_STEP = float(np.log(1 / 0.88))
_MOST_STEP = float(np.log(1 / 0.3))
# Darker still, down to this share of the paper's tone, is a desk or a table beyond the page's edge: painted over
# with the paper's tone (lifting it would multiply its grain), unless it is a scanner's bar along an edge, which
# ``bar_region`` paints later: less than this share of it lies outside the bars along the edges. (A desk's edge
# across the picture at a slant leaves a sliver beyond the bars, read as a "1" on an empty page.)
_DESK_STEP = float(np.log(1 / 0.08))
_BAR_SHARE = 0.01
# ...and only in a picture at least this large each way (the right stem of a bold "4" cropped tight, 118x50 px,
# passed for the table beyond a page's edge).
_DESK_SIDE = 128
# The desk painted reaches to where its edge's soft part is this share of the step from the paper.
_DESK_SOFT = 0.05
# The edge's soft part (its penumbra) is at most this share of the search copy's longer side across; beyond it
# each side is flat: the medians along lines parallel to the edge stay within this share of the step (or this
# much log brightness) of their side's level...
_RAMP = 0.08
_FLAT_SHARE = 0.3
_FLAT_LEAST = 0.06
# ...for at least this share of those lines (ink may darken a few), on each side at least this many lines.
_FLAT_LINES = 0.9
_LEAST_LINES = 3
# Ink on the lit side whose median tone is within this share of the step of the dark side's is the same ink.
_SAME_INK = 0.25
# ...and the dark side, reaching no further from the edge than this many of that ink's strokes are wide (a
# stroke is about this many times its mean erosion depth across), is that ink.
_DEEPER_THAN_STROKES = 3.0
_STROKE_PER_EROSION = 4.0
# Log brightness is taken of the grey level plus this (JPEG's noise in black is no step of light).
_LOG_OFFSET = 8.0
# A line's median counts when it has at least this many pixels of the picture.
_LINE_PIXELS = 8


def relit(work: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``work`` (grey levels, uint8) with a hard shadow's darker side brightened to the lit side's tone, or a
    desk's beyond the page's edge painted with it, and the pixels painted (None for a shadow); None where no
    such edge (straight, or bent a little) crosses the picture."""
    height, width = work.shape
    if max(height, width) <= EVEN_SIDE:
        return None
    factor = max(1, -(-max(height, width) // _SEARCH_SIDE))
    small = _reduced(work, factor)
    logs = np.log(small + np.float32(_LOG_OFFSET))
    grad_rows, grad_cols = _gradients(logs)
    # A soft edge's votes gather best unsmoothed (its gradient is weak and smoothing thins it out), a sharp one's
    # smoothed: the lines of both are tried, those of the first first.
    for angle, offset in _lines(grad_rows, grad_cols) + _lines(*_gradients(_smoothed(logs))):
        edge = _fitted(grad_rows, grad_cols, angle, offset)
        profile = _step_profile(logs, edge)
        if profile is None:
            continue
        distances, lift, lit = profile
        step = float(lift[0])
        if step > _MOST_STEP and min(height, width) < _DESK_SIDE:
            continue  # a crop this small is no photo of a page on a desk: a bold stroke cropped tight
        # In the work copy's pixels: a pixel at distance t (search pixels) from the edge is lifted by lift(t).
        rows, cols = np.indices(work.shape, dtype=np.float32)
        centre = (factor - 1) / 2  # a search pixel covers factor x factor work pixels
        across = edge.across((rows - centre) / factor, (cols - centre) / factor)
        if step <= _MOST_STEP:
            fine = None
            if factor > 1:  # the soft part measured again in the work copy's own pixels
                fine = _fine_profile(work, across * np.float32(factor), _RAMP * max(logs.shape) * factor)
            if fine is not None:
                distances, lift = fine[0] / factor, fine[1]
            gain = np.exp(np.interp(across, distances, lift)).astype(np.float32)
            lifted = work * gain + np.float32(0.5)
            return np.minimum(lifted, 255.0, out=lifted).astype(np.uint8), None
        desk = _desk_beyond(across, distances[np.flatnonzero(lift > _DESK_SOFT * step)[-1]])
        if desk is not None:
            return np.where(desk, np.uint8(min(255, round(float(np.exp(lit)) - _LOG_OFFSET))), work), desk
    return None


def _fine_profile(work: np.ndarray, across: np.ndarray, ramp: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The lift across an edge found in the search copy, measured in the work copy's pixels (``across``: each
    pixel's distance from the edge; ``ramp``: the soft part's greatest reach, both in those pixels): the medians
    of log brightness along the edge's parallels a pixel apart, within a little more than the soft part of it.
    A sharp edge falls within one pixel of the search copy, and a lift measured there spread over several of the
    work copy's: a dark band on one side of the edge and a bright one on the other, a stroke. None where a side
    has no parallel beyond the soft part within reach."""
    reach = ramp + 2 * _LINE_PIXELS
    band = np.abs(across) <= reach
    distance = np.round(across[band]).astype(np.int64)
    # (A shadow's paper is far from black: the lift is the ratio of the grey levels themselves.)
    values = np.log(work[band].astype(np.float32) + np.float32(1.0))
    _, steps, _, medians = _parallels(distance, values)
    lit_side, dark_side = steps > ramp, steps < -ramp
    if not lit_side.any() or not dark_side.any():
        return None  # (the search copy's lines beyond the soft part lie within reach: not seen to happen)
    lit, dark = float(np.median(medians[lit_side])), float(np.median(medians[dark_side]))
    return steps.astype(np.float32), _lift(medians, lit_side, dark_side, lit, max(0.0, lit - dark))


def _parallels(distance: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pixels' ``values`` gathered by parallel (``distance``, whole numbers): the order that sorts the pixels
    by parallel and value, each parallel's distance, its number of pixels and its median value."""
    order = np.lexsort((values, distance))
    steps, starts, counts = np.unique(distance[order], return_index=True, return_counts=True)
    return order, steps, counts, values[order][starts + counts // 2]


def _lift(medians: np.ndarray, lit_side: np.ndarray, dark_side: np.ndarray, lit: float, step: float) -> np.ndarray:
    """The lift (log) for each parallel: 0 on the lit side, the full ``step`` beyond the soft part on the dark side,
    and in the soft part what brings its median up to the ``lit`` level, made to fall steadily from the dark side
    to the lit one (float32)."""
    lift = np.clip(lit - medians, 0.0, step)
    lift[lit_side] = 0.0
    lift[dark_side] = step
    return np.minimum.accumulate(lift).astype(np.float32)


def _desk_beyond(across: np.ndarray, reach: float) -> np.ndarray | None:
    """The desk beyond a page's edge: the pixels less than ``reach`` across it (and one more all round, its blurred
    rim); None where it is a scanner's bar along an edge (or the whole picture), which ``bar_region`` paints."""
    desk = grown(across <= reach, 1)
    if desk.all() or (desk & ~bar_region(desk)).sum() < _BAR_SHARE * desk.sum():
        return None
    return desk


def _reduced(work: np.ndarray, factor: int) -> np.ndarray:
    """``work`` area-averaged by ``factor`` each way (float32), the ragged last rows and columns dropped."""
    if factor == 1:
        return work.astype(np.float32)
    height, width = (work.shape[0] // factor) * factor, (work.shape[1] // factor) * factor
    blocks = work[:height, :width].reshape(height // factor, factor, width // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def _smoothed(logs: np.ndarray) -> np.ndarray:
    """``logs`` under a 3x3 mean twice (about a Gaussian of 1.2 px), edges repeated. Along a sharp edge (a desk's)
    the pixels' own gradients point every which way between the stairs of its staircase, and their votes for a
    line scatter; smoothed, they point across the edge."""
    for _ in range(2):
        padded = np.pad(logs, 1, mode="edge")
        logs = sum(padded[i : i + logs.shape[0], j : j + logs.shape[1]] for i in range(3) for j in range(3)) / 9
    return logs


def _gradients(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The change of ``logs`` per pixel down the rows and along the columns (central differences, 0 at the edges)."""
    grad_rows = np.zeros_like(logs)
    grad_cols = np.zeros_like(logs)
    grad_rows[1:-1] = (logs[2:] - logs[:-2]) / 2
    grad_cols[:, 1:-1] = (logs[:, 2:] - logs[:, :-2]) / 2
    return grad_rows, grad_cols


def _lines(grad_rows: np.ndarray, grad_cols: np.ndarray) -> list[tuple[float, float]]:
    """The strongest straight edges of a picture whose log brightness changes by ``grad_rows``, ``grad_cols``,
    as (angle, offset): the edge is where x cos(angle) + y sin(angle) = offset, the brighter side where it is
    larger. Each pixel whose brightness changes fast votes for the line through it across its own gradient; a
    stroke's two edges face opposite ways and are short, a shadow's edge is one long line facing one way."""
    strength = np.hypot(grad_rows, grad_cols)
    rows, cols = np.nonzero(strength > _LEAST_GRADIENT)
    if len(rows) < _LINE_PIXELS:
        return []
    angles = np.arctan2(grad_rows[rows, cols], grad_cols[rows, cols])
    offsets = cols * np.cos(angles) + rows * np.sin(angles)
    reach = float(np.hypot(*grad_rows.shape))
    angle_bins = 360 // _ANGLE_STEP
    offset_bins = int(2 * reach / _OFFSET_STEP) + 1
    angle_index = np.round(np.degrees(angles) / _ANGLE_STEP).astype(np.int64) % angle_bins
    offset_index = np.round((offsets + reach) / _OFFSET_STEP).astype(np.int64)
    votes = np.bincount(angle_index * offset_bins + offset_index, minlength=angle_bins * offset_bins)
    votes = votes.reshape(angle_bins, offset_bins).astype(np.float32)
    # Neighbouring bins share a slightly bent or noisy edge's votes: sum each 3x3 (angles wrap round).
    padded = np.concatenate([votes[-1:], votes, votes[:1]])
    padded = np.pad(padded, ((0, 0), (1, 1)))
    summed = sum(padded[i : i + angle_bins, j : j + offset_bins] for i in range(3) for j in range(3))
    found = []
    least = min(grad_rows.shape) / 2  # an edge across a corner is still this long at least, in votes
    for _ in range(_CANDIDATES):
        best = int(summed.argmax())
        angle_at, offset_at = divmod(best, offset_bins)
        if summed[angle_at, offset_at] < least:
            break
        found.append((np.radians(angle_at * _ANGLE_STEP), offset_at * _OFFSET_STEP - reach))
        for da in range(-2, 3):  # suppress the neighbourhood of this peak
            summed[(angle_at + da) % angle_bins, max(0, offset_at - 3) : offset_at + 4] = 0
    return found


class _Edge:
    """A shadow's edge: where x cos(angle) + y sin(angle) = c0 + c1 u + c2 u^2, u = y cos(angle) - x sin(angle)
    running along it (a straight line when c2 is 0, an arc's worth of bend otherwise); brighter beyond it."""

    def __init__(self, angle: float, coefficients: tuple[float, float, float]) -> None:
        self.angle, self.coefficients = angle, coefficients

    def across(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """How far each point lies from the edge, towards the lit side (negative in the shadow)."""
        cos, sin = np.float32(np.cos(self.angle)), np.float32(np.sin(self.angle))
        along = rows * cos - cols * sin
        c0, c1, c2 = (np.float32(c) for c in self.coefficients)
        return cols * cos + rows * sin - (c0 + along * (c1 + along * c2))


def _fitted(grad_rows: np.ndarray, grad_cols: np.ndarray, angle: float, offset: float) -> _Edge:
    """The line (``angle``, ``offset``), found in coarse bins, fitted to the pixels of its edge: those near it whose
    gradient faces its way, weighted by their gradient (least squares, allowing the edge a bend: a hand's shadow
    is an arc). A line a degree off leaves a shadow's edge over-lifted at one end and under-lifted at the other:
    two strokes."""
    edge = _Edge(angle, (offset, 0.0, 0.0))
    rows, cols = np.indices(grad_rows.shape, dtype=np.float32)
    facing = grad_cols * np.float32(np.cos(angle)) + grad_rows * np.float32(np.sin(angle))
    aligned = facing > _FIT_FACING * np.hypot(grad_rows, grad_cols)
    along = rows * np.float32(np.cos(angle)) - cols * np.float32(np.sin(angle))
    level = cols * np.float32(np.cos(angle)) + rows * np.float32(np.sin(angle))
    for band in (_FIT_BAND * 2, _FIT_BAND, _FIT_BAND):
        near = aligned & (np.abs(edge.across(rows, cols)) <= band)
        if near.sum() < _LINE_PIXELS or np.ptp(along[near]) < _LINE_PIXELS:
            break  # too few pixels, or too short a stretch of edge, to bend a line through
        c2, c1, c0 = np.polyfit(along[near], level[near], 2, w=np.sqrt(facing[near]))
        edge = _Edge(angle, (float(c0), float(c1), float(c2)))
    return edge


def _step_profile(logs: np.ndarray, edge: _Edge) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Whether ``edge`` is a shadow's (or a desk's): the medians of log brightness along its parallels (two per
    pixel of distance) step down across it by a shadow's factor (or a desk's) and are flat beyond its soft part
    on both sides. Returns the distances, the lift (log) to add at each -- 0 on the lit side, the full step
    beyond the soft part on the dark side -- and the lit side's level; None where it is neither."""
    rows, cols = np.indices(logs.shape, dtype=np.float32)
    # Parallels half a pixel apart: the soft part of a sharp edge is only a few pixels across.
    distance = np.round(2 * edge.across(rows, cols)).astype(np.int64).ravel()
    order, steps, counts, medians = _parallels(distance, logs.ravel())
    usable = counts >= _LINE_PIXELS
    steps, medians = steps[usable] / 2, medians[usable]
    distance, values = distance[order], logs.ravel()[order]
    ramp = _RAMP * max(logs.shape)
    lit_side, dark_side = steps > ramp, steps < -ramp
    if lit_side.sum() < _LEAST_LINES or dark_side.sum() < _LEAST_LINES:
        return None
    lit, dark = float(np.median(medians[lit_side])), float(np.median(medians[dark_side]))
    step = lit - dark
    if not _LEAST_STEP <= step <= _DESK_STEP:
        return None
    tolerance = max(_FLAT_LEAST, _FLAT_SHARE * step)
    for side, level in ((lit_side, lit), (dark_side, dark)):
        if np.mean(np.abs(medians[side] - level) <= tolerance) < _FLAT_LINES:
            return None
    # Ink on the lit side as dark as the "shadow", the "shadow" no deeper than a few of its strokes are wide, says
    # the dark side is ink too: the foot of a bold "2" cropped tight runs along the picture's edge as flat as a
    # shadow would. (A blue pen's tone can match a shadow's; a shadow reaches far beyond a stroke's width.)
    beyond = distance > 2 * ramp
    lit_ink = beyond & (values < lit - step / 2)
    if lit_ink.sum() >= _LINE_PIXELS and abs(float(np.median(values[lit_ink])) - dark) <= _SAME_INK * step:
        ink_mask = np.zeros(logs.size, bool)
        ink_mask[order[lit_ink]] = True
        stroke = _STROKE_PER_EROSION * _thickness(ink_mask.reshape(logs.shape))
        if -float(steps[0]) <= _DEEPER_THAN_STROKES * stroke:
            return None
    return steps.astype(np.float32), _lift(medians, lit_side, dark_side, lit, step), lit
