"""Stage 2, paper: which way round the ink is, the paper's brightness under it, and how dark the ink is.

The result is the image as relative darkness (0 paper, 1 black) binned into bytes, and the levels that
separate ink from the paper's noise: everything the later stages need to find and weigh the strokes.
"""

from __future__ import annotations

import math

import numpy as np

from mnistctl.preprocess.decode import NoDigitError

# Larger inputs are area-averaged down to this before anything else: a 2 px stroke in a 2000 px photo
# still covers half a pixel (plenty of contrast) and the rest of the pipeline stays at tens of ms.
WORK_SIDE = 1024
# Paper brightness (lighting gradients, shadows) varies slowly, so it is estimated on a tiny copy.
_PAPER_SIDE = 64
# The paper estimate ignores dark features narrower than this fraction of the image: strokes are
# thinner (at most ~15% of the digit), shadows and gradients are wider.
_PAPER_KERNEL = 0.2
# A border whose 5th and 95th percentiles are this close (grey levels) is one flat tone of paper; an
# image up to this size with such a border is taken to be evenly lit (speed: no paper estimate). Larger
# ones are not: a flat border says nothing about stains and shadows inside.
_FLAT_BORDER = 24
EVEN_SIDE = 64
# Erosions counted at most when the thickness of the two tones is compared (a stroke is far thinner).
_MAX_EROSIONS = 24
# Relative darkness (0 paper, 1 black) is binned into bytes with the paper at bin 51, so that the paper's
# noise shows on both sides of its peak: bin = 51 + 204 * darkness.
DARK_ZERO = 51
DARK_STEPS = 204
# Images no larger than this (a side) are normalised scans, like USPS's 16x16: no clutter to look for.
TINY_SIDE = 40
# Ink must be at least this many grey levels darker (or lighter) than the paper to count as a digit.
MIN_CONTRAST = 24.0


def work_copy(image: np.ndarray) -> np.ndarray:
    """uint8 copy, area-averaged down to ``WORK_SIDE`` when larger."""
    rounded = image + np.float32(0.5)
    work = np.minimum(np.maximum(rounded, 0.0, out=rounded), 255.0, out=rounded).astype(np.uint8)
    height, width = work.shape
    if max(height, width) <= WORK_SIDE:
        return work
    from PIL import Image

    return np.asarray(Image.fromarray(work).resize(fit_size(height, width, WORK_SIDE), Image.Resampling.BOX))


def fit_size(height: int, width: int, side: int) -> tuple[int, int]:
    """(width, height) -- Pillow's order -- scaled so the longer side is ``side``."""
    scale = side / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def polarity_and_paper(work: np.ndarray) -> tuple[bool, float, bool]:
    """Whether the ink is lighter than the paper (MNIST, chalk) rather than darker; the paper's tone; and
    whether the border is flat (one tone, give or take noise).

    Two witnesses: the whole image, whose most common tone -- the median -- is paper when ink covers
    less than half of it, the ink being the tail reaching furthest from it; and the border, which is
    mostly paper even where the digit touches it. They disagree when ink covers half the image (a bold
    digit in a tight crop, a 16x16 scan stretched to fill its box): then the border decides if it is one
    flat tone or the image is tiny, and the whole image otherwise (a page photographed on a dark desk).
    Both are fooled by a bold dark digit cropped to its ink, which covers more than half of the image and of
    its border: when their decision is light ink on an image that is neither, the thinner of the two tones is
    the ink. (A bold light digit cropped so is still read inside out: the thickness is asked only then.)
    """
    sample = work if work.size <= 16384 else work[::2, ::2]  # a thin stroke still crosses every other row
    cdf = np.bincount(sample.ravel(), minlength=256).cumsum()
    tail = max(1.0, cdf[-1] / 1000) / cdf[-1]
    darkest, paper, lightest = cdf.searchsorted(cdf[-1] * np.array([tail, 0.5, 1 - tail])).tolist()
    light = lightest - paper > paper - darkest
    band = max(1, min(work.shape) // 20)
    edges = (work[:band], work[-band:], work[:, :band], work[:, -band:])
    border = np.concatenate([edge.ravel() for edge in edges])
    border_cdf = np.bincount(border, minlength=256).cumsum()
    low, middle, high = border_cdf.searchsorted(border_cdf[-1] * np.array([0.05, 0.5, 0.95])).tolist()
    flat = high - low <= _FLAT_BORDER
    border_light_ink = middle < (darkest + lightest) / 2  # a dark border: the ink is the light part
    if border_light_ink != light and (flat or max(work.shape) <= TINY_SIDE):
        light = border_light_ink
        paper = middle
    elif flat:
        paper = middle
    elif light and max(work.shape) > TINY_SIDE:
        lighter = sample > (darkest + lightest) // 2
        if _thickness(~lighter) < _thickness(lighter):  # the dark tone is strokes, the light one paper
            light = False
            light_share = np.count_nonzero(lighter) / lighter.size
            paper = int(cdf.searchsorted(cdf[-1] * (1 - light_share / 2)))  # the light part's median
    return light, float(255 - paper if light else paper), flat


def _thickness(mask: np.ndarray) -> float:
    """Mean number of 4-neighbour erosions the pixels of ``mask`` survive (beyond the image's edge counts as
    inside): about a quarter of a stroke's width, and far more for the paper between and around strokes."""
    total, inside = 0, mask
    for _ in range(_MAX_EROSIONS):
        count = np.count_nonzero(inside)
        if count == 0:
            break
        total += count
        padded = np.pad(inside, 1, constant_values=True)
        inside = inside & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return total / max(1, np.count_nonzero(mask))


def darkness_bins(work: np.ndarray, paper: np.ndarray | float) -> np.ndarray:
    """Relative darkness 1 - work / paper, binned into bytes: bin = 51 + 204 * darkness, rounded."""
    binned = np.divide(work, paper, dtype=np.float32)
    binned *= np.float32(-DARK_STEPS)
    binned += np.float32(DARK_ZERO + DARK_STEPS + 0.5)
    return np.maximum(binned, 0.0, out=binned).astype(np.uint8)  # the top is 255.5: truncates to 255


def paper_estimate(work: np.ndarray, flat_paper: float | None) -> tuple[np.ndarray | float, float]:
    """The paper's brightness under each pixel (an array, or one number for ``flat_paper``), and its tone.

    Ink is then measured as relative darkness, 1 - pixel / paper: dividing (rather than subtracting)
    undoes lighting, which multiplies, so ink in a shadow is as dark relative to the shadowed paper as
    ink in the light. ``flat_paper``: the tone of a paper known to be even (a small image with a flat
    border), which skips the estimate.
    """
    if flat_paper is not None:
        return max(flat_paper, 1.0), flat_paper
    from PIL import Image, ImageFilter

    height, width = work.shape
    factor = -(-max(height, width) // _PAPER_SIDE)
    small = np.asarray(Image.fromarray(work).reduce(factor)) if factor > 1 else work
    kernel = max(3, 2 * round(_PAPER_KERNEL * max(small.shape) / 2) + 1)
    # A closing (max then min filter) removes dark strokes narrower than the kernel and keeps the paper.
    closed = sliding(sliding(small, kernel, np.maximum), kernel, np.minimum)
    paper_image = Image.fromarray(closed).filter(ImageFilter.GaussianBlur(kernel / 4))
    if factor > 1:  # the estimate is smooth: nearest-neighbour blocks differ by well under 1%
        paper_image = paper_image.resize((width, height), Image.Resampling.NEAREST)
    paper = np.maximum(np.asarray(paper_image), 1)
    return paper, float(quantile(np.bincount(closed.ravel(), minlength=256).cumsum(), 0, 256, 0.5))


def sliding(values: np.ndarray, size: int, op) -> np.ndarray:
    """Max or min (``op``) over a ``size`` x ``size`` window, edges repeated; doubling, so log(size) passes."""
    return sliding_rows(sliding_rows(values, size, op).T, size, op).T


def grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` dilated by ``pixels`` in every direction (a square neighbourhood)."""
    return sliding(mask.view(np.uint8), 2 * pixels + 1, np.maximum).astype(bool)


def sliding_rows(values: np.ndarray, size: int, op) -> np.ndarray:
    """Max or min (``op``) over ``size`` consecutive rows, centred, edges repeated (``sliding`` along one axis)."""
    half = size // 2
    padded = np.concatenate([np.repeat(values[:1], half, axis=0), values, np.repeat(values[-1:], half, axis=0)])
    count = values.shape[0]
    span, windows = 1, padded  # windows[i] = op over padded[i : i + span]
    while 2 * span <= size:
        windows = op(windows[:-span], windows[span:])
        span *= 2
    return op(windows[:count], windows[size - span : size - span + count])


# A histogram peak at least this share of the tallest one's height may be the paper's.
_PAPER_PEAK = 0.3


def ink_levels(quantised: np.ndarray, name: str) -> tuple[float, int, float]:
    """Where ink starts (darkness), the threshold bin of the ink's core, and the typical ink's darkness.

    The paper is the histogram's tallest peak; its noise is the peak's half width at half height on the
    darker side, a width that neither a large digit nor a faint one disturbs, and the noise floor is three
    standard deviations above the peak. Otsu's threshold is computed only over pixels above that floor, so
    a small digit on a big noisy page is not swamped by paper; when those pixels are all ink (one
    population) Otsu would split the ink itself, so the threshold is capped half-way to the ink's peak.
    """
    sample = quantised if quantised.size <= 16384 else quantised[::2, ::2]  # plenty for a histogram
    hist = np.bincount(sample.ravel(), minlength=256)
    cdf = hist.cumsum()
    # Whole grey levels fall unevenly into bins (some get two): smooth that comb away before measuring the peak.
    smooth = np.convolve(hist, (1, 2, 3, 2, 1), mode="same")
    # The paper is the lightest big peak: usually the tallest too, but a bold digit stretched over a tiny
    # bitmap can ink more than half of it.
    big = np.flatnonzero(smooth >= _PAPER_PEAK * smooth.max())
    run_end = big[0] + int(np.argmin(smooth[big[0] :] >= _PAPER_PEAK * smooth.max()) or 256 - big[0])
    paper = big[0] + int(smooth[big[0] : run_end].argmax())
    half_width = int((smooth[paper:] < smooth[paper] / 2).argmax()) or 256
    floor = min(paper + math.ceil(3 * half_width / 1.1774), 253)  # HWHM = 1.1774 sigma
    if cdf[-1] - cdf[floor] < 4:
        raise NoDigitError(f"no digit found in {name} (nothing stands out from the background)")
    peak = quantile(cdf, floor + 1, 256, 0.99)
    threshold = min(floor + 1 + _otsu(hist[floor + 1 :]), (floor + peak) // 2)
    level = quantile(cdf, threshold + 1, 256, 0.5)
    start = max(floor, (paper + threshold) / 2)
    return (start - DARK_ZERO) / DARK_STEPS, threshold, (level - DARK_ZERO) / DARK_STEPS


def quantile(cdf: np.ndarray, start: int, stop: int, fraction: float) -> int:
    """The bin in ``start:stop`` below which ``fraction`` of that range's counts lie (``cdf``: cumulative counts)."""
    base = int(cdf[start - 1]) if start else 0
    found = int(cdf.searchsorted(base + fraction * (int(cdf[stop - 1]) - base)))
    return min(max(found, start), stop - 1)


def _otsu(hist: np.ndarray) -> int:
    """Otsu's threshold on a histogram: the last bin of the lower class (maximises between-class variance)."""
    lower = hist.cumsum(dtype=np.float64)
    upper = lower[-1] - lower
    lower_sum = (hist * np.arange(hist.size, dtype=np.float64)).cumsum()
    gap = lower_sum / np.maximum(lower, 1e-9) - (lower_sum[-1] - lower_sum) / np.maximum(upper, 1e-9)
    between = lower * upper * gap * gap  # 0 where either class is empty
    best = int(between.argmax())
    if between[best] <= 0:  # a single level: all of it is ink
        return int(np.flatnonzero(hist)[0]) - 1
    return best
