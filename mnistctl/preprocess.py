"""Turn any image -- a phone photo of ink on paper, a scan, a screenshot -- into a 28x28 MNIST-style array.

MNIST digits are white ink on black, fitted into a 20x20 box and centred by centre of mass; ``to_mnist``
makes a photo look like that, ``raw_mnist`` only resizes (``--raw``), ``load_gray`` decodes safely.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistctl.errors import MnistctlError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

MAX_PIXELS = 40_000_000
"""Larger images are refused before their pixels are decoded (decompression-bomb guard)."""

MNIST_SIDE = 28
DIGIT_BOX = 20
CENTRE = 14.0
"""Where the centre of mass goes, in pixel indices (row and column), as in MNIST's own centring."""

# JPEGs larger than twice this are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, several
# times faster), never below this: to_mnist looks at no more than _WORK_SIDE pixels anyway.
_DRAFT_SIDE = 768
# Larger inputs are area-averaged down to this before anything else: a 2 px stroke in a 2000 px photo
# still covers half a pixel (plenty of contrast) and the rest of the pipeline stays at tens of ms.
_WORK_SIDE = 1024
# Paper brightness (lighting gradients, shadows) varies slowly, so it is estimated on a tiny copy.
_PAPER_SIDE = 64
# The paper estimate ignores dark features narrower than this fraction of the image: strokes are
# thinner (at most ~15% of the digit), shadows and gradients are wider.
_PAPER_KERNEL = 0.2
# A border whose 5th and 95th percentiles are this close (grey levels) is one flat tone of paper; an
# image up to this size with such a border is taken to be evenly lit (speed: no paper estimate).
_FLAT_BORDER = 24
_EVEN_SIDE = 256
# Relative darkness (0 paper, 1 black) is binned into bytes with the paper at bin 51, so that the paper's
# noise shows on both sides of its peak: bin = 51 + 204 * darkness.
_DARK_ZERO = 51
_DARK_STEPS = 204
# Ink must be at least this many grey levels darker (or lighter) than the paper to count as a digit.
_MIN_CONTRAST = 24.0
# MNIST strokes are 2-3 px wide; thinner ones (a fine pen in a big photo) are thickened to this.
_MIN_STROKE = 2.0
# Large crops are reduced to this multiple of the final size first, so thickening works on few pixels.
_OVERSAMPLE = 4
# Anti-aliasing residue below this fraction of the peak is set to exactly 0, like MNIST's background.
_ZERO_BELOW = 0.03
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class InvalidImageError(MnistctlError):
    """A file that cannot be turned into a digit image: unreadable, corrupt, unsupported, or too large."""

    default_hint = "use a PNG or JPEG image"


class NoDigitError(InvalidImageError):
    """The image decodes fine but shows nothing that stands out from the background."""

    default_hint = "check that the image shows a digit, dark on light paper or light on dark"


def preprocess(source: Path | bytes, name: str, *, raw: bool = False) -> np.ndarray:
    """Decode ``source`` (a path, or the bytes of an image read from stdin) into a float32 28x28 array."""
    gray = load_gray(source, name)
    return raw_mnist(gray) if raw else to_mnist(gray, name=name)


# Below this many images a process pool costs more than it saves.
_PARALLEL_FROM = 64


def _preprocess_item(item: tuple[Path | bytes, str, bool]) -> np.ndarray | str:
    source, name, raw = item
    try:
        return preprocess(source, name, raw=raw)
    except MnistctlError as exc:
        return str(exc)


def preprocess_many(items: list[tuple[Path | bytes, str]], *, raw: bool = False) -> list[np.ndarray | str]:
    """``preprocess`` for many images, in order: each result is a 28x28 array or an error message.

    Large batches are spread over forked worker processes (decoding and the numpy steps hold the
    GIL, so threads would not help); the parent has imported nothing that dislikes ``fork``.
    """
    import multiprocessing
    import os

    jobs = [(source, name, raw) for source, name in items]
    workers = min(os.cpu_count() or 1, len(jobs) // _PARALLEL_FROM)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [_preprocess_item(job) for job in jobs]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(_preprocess_item, jobs, chunksize=max(1, len(jobs) // (workers * 4)))


# --- decoding -----------------------------------------------------------------------------------------


def load_gray(source: Path | bytes, name: str) -> np.ndarray:
    """Decode an image into float32 grey levels 0..255 (H x W), upright as its EXIF orientation says.

    Animated images give their first frame. 16-bit images are scaled by full scale (65535 -> 255), not
    by their own range, so a dim image stays dim and ``--raw`` sees what was saved; 32-bit and float
    images, see ``_wide_to_8bit``. Transparent pixels are composited onto the backdrop described in
    ``_composite``. JPEGs over 1536 px are decoded at reduced scale, no smaller than 768 px (see
    ``_DRAFT_SIDE``). Every failure -- an empty, truncated, corrupt or unsupported file, or one over
    ``MAX_PIXELS`` -- raises ``InvalidImageError`` naming ``name``; nothing from Pillow escapes.
    """
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    # Pillow warns above this and raises above twice this; both are turned into our error below.
    # (This is process-wide, and stricter than Pillow's default of ~89 megapixels.)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    if isinstance(source, (bytes, bytearray, memoryview)):
        size = len(source)
        opened: Path | io.BytesIO = io.BytesIO(source)
    else:
        try:
            size = Path(source).stat().st_size
        except OSError as exc:
            raise InvalidImageError(f"cannot read {name}: {exc.strerror or exc}", hint="check the path") from None
        opened = Path(source)
    if size == 0:
        raise InvalidImageError(f"{name} is empty (0 bytes)", hint="check that the file was written completely")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(opened) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise _too_large(name, f"{width}x{height} pixels")
                if width == 0 or height == 0:
                    raise InvalidImageError(f"{name} has no pixels ({width}x{height})")
                if image.format in ("JPEG", "MPO") and max(width, height) > 2 * _DRAFT_SIDE:
                    ratio = _DRAFT_SIDE / max(width, height)
                    image.draft("L", (math.ceil(width * ratio), math.ceil(height * ratio)))
                image.load()
                with contextlib.suppress(Exception):  # a malformed EXIF block: use the pixels as stored
                    ImageOps.exif_transpose(image, in_place=True)
                return _gray_pixels(image, name)
    except InvalidImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = _BOMB_PIXELS.search(str(exc))
        raise _too_large(name, f"{int(found[1]):,} pixels" if found else "too many pixels") from None
    except UnidentifiedImageError:
        raise InvalidImageError(
            f"{name} is not an image Pillow can read (cannot identify image file)", hint="save it as PNG or JPEG"
        ) from None
    except OSError as exc:
        if exc.errno is not None:  # the file system, not the decoder
            raise InvalidImageError(f"cannot read {name}: {exc.strerror or exc}", hint="check the path") from None
        raise _corrupt(name, exc) from None
    # Decoders for a dozen formats meet untrusted bytes here: besides OSError they raise SyntaxError,
    # ValueError, EOFError, struct.error, MemoryError... Each means "this file is broken" to the user.
    except Exception as exc:
        raise _corrupt(name, exc) from None


def _too_large(name: str, size: str) -> InvalidImageError:
    return InvalidImageError(
        f"{name} is {size}, over the {MAX_PIXELS:,}-pixel limit", hint="scale it down (a digit needs far fewer)"
    )


def _corrupt(name: str, exc: BaseException) -> InvalidImageError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return InvalidImageError(f"{name} is truncated or corrupt ({reason})", hint="export or download the image again")


def _gray_pixels(image: PILImage, name: str) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image).astype(np.float32) / 257.0
    if mode in ("I", "F", "I;16S"):
        return _wide_to_8bit(np.asarray(image))
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in image.info:
        return _composite(image.convert("RGBA"))
    if mode != "L":
        try:
            image = image.convert("L")
        except ValueError:  # e.g. LAB, which Pillow converts only through a colour profile
            raise InvalidImageError(
                f"{name} uses the {mode} colour mode, which cannot be converted to grey",
                hint="save it as RGB or greyscale",
            ) from None
    return np.asarray(image, dtype=np.float32)


def _wide_to_8bit(values: np.ndarray) -> np.ndarray:
    """32-bit integer or float pixels, by their range: 0..1 is a fraction of white, 0..255 is kept,
    0..65535 is 16-bit full scale; anything else (negative values, say) is stretched to 0..255."""
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 1:
        return values * np.float32(255.0)
    if low >= 0 and high <= 255:
        return values
    if low >= 0 and high <= 65535:
        return values / 257.0
    return (values - low) * np.float32(255.0 / (high - low))


def _composite(rgba: PILImage) -> np.ndarray:
    """Flatten transparency onto the backdrop a digit would be drawn on.

    When the opaque pixels are a minority they are the ink: they go onto the colour that contrasts with
    them (white behind dark ink, as a viewer shows it; black behind light ink, as a dark theme does), so
    a white-on-transparent digit works as well as a black one. When they are the majority they are a
    picture (paper with transparent margins): the transparent parts take the picture's typical tone.
    """
    tone = np.asarray(rgba.convert("L"), dtype=np.float32)
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
    coverage = float(alpha.mean())
    if coverage >= 1.0:
        return tone
    if coverage == 0.0:
        return np.full_like(tone, 255.0)  # nothing visible: blank, to_mnist says so
    if coverage < 0.5:
        ink_tone = float((tone * alpha).sum() / alpha.sum())
        backdrop = 0.0 if ink_tone > 127.5 else 255.0
    else:
        backdrop = float(np.median(tone[alpha > 0.5])) if (alpha > 0.5).any() else 255.0
    return tone * alpha + np.float32(backdrop) * (1.0 - alpha)


# --- the MNIST-style pipeline ------------------------------------------------------------------------


def raw_mnist(gray: np.ndarray) -> np.ndarray:
    """For images that are already MNIST-style: resize to 28x28 if needed (bilinear), nothing else."""
    image = _checked(gray, "image")
    if image.shape == (MNIST_SIDE, MNIST_SIDE):
        return image.copy() if image is gray else image
    from PIL import Image

    resized = Image.fromarray(image, "F").resize((MNIST_SIDE, MNIST_SIDE), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 255.0)


def to_mnist(gray: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Make a photo or scan of one digit look like an MNIST digit: float32 28x28, ink ~255 on exactly 0.

    Steps: tell dark ink on light paper from light ink on dark (inverting the first); flatten the paper --
    texture, lighting gradients, shadows -- by dividing by a paper estimate; find the ink with Otsu's
    threshold above the paper's noise; box it, leaving out specks; crop; fit the longer side into 20 px
    (thickening strokes that a big downscale would make thinner than MNIST's); and resample into 28x28
    with the centre of mass at (14, 14). ``name`` only labels the ``NoDigitError`` raised for an image
    with nothing on it (blank, or nothing that stands out from its background); callers pass the file name.
    An array that is not 2-D is a programming error (``ValueError``), not a bad image.
    """
    image = _checked(gray, name)
    if float(image.max()) - float(image.min()) < _MIN_CONTRAST:
        raise NoDigitError(f"no digit found in {name} (the image is blank)")
    work = _work_copy(image)
    light, paper_tone, flat = _polarity_and_paper(work)
    if light:
        work = 255 - work  # from here on: dark ink on light paper
    # A small image whose whole border is one tone is a scan or a drawing, not a photo with uneven light.
    paper, paper_tone = _paper(work, paper_tone if flat and max(work.shape) <= _EVEN_SIDE else None)
    # Relative darkness 1 - work / paper, binned: bin = 51 + 204 * darkness, rounded, in 0..255.
    binned = np.divide(work, paper, dtype=np.float32)
    binned *= np.float32(-_DARK_STEPS)
    binned += np.float32(_DARK_ZERO + _DARK_STEPS + 0.5)
    quantised = np.maximum(binned, 0.0, out=binned).astype(np.uint8)  # the top is 255.5: truncates to 255
    low, threshold, level = _ink_levels(quantised, name)
    if level * paper_tone < _MIN_CONTRAST:
        raise NoDigitError(f"no digit found in {name} (nothing stands out from the background)")
    mask = _without_specks(quantised > threshold)
    box = _digit_box(mask)
    if box is None:
        raise NoDigitError(f"no digit found in {name} (only specks stand out from the background)")
    top, bottom, left, right = box
    side = max(bottom - top, right - left)
    margin = max(1, math.ceil(0.06 * side))  # room for the anti-aliased edge around the core
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(work.shape[0], bottom + margin), min(work.shape[1], right + margin)
    crop = (slice(top, bottom), slice(left, right))
    darkness = 1.0 - np.divide(work[crop], paper if np.isscalar(paper) else paper[crop], dtype=np.float32)
    # (np.minimum/np.maximum rather than np.clip: a third of the cost on small arrays)
    ink = np.minimum(np.maximum((darkness - low) / np.float32(level - low), 0.0), 1.0)
    digit, zoom, grown = _fit_box(ink, mask[top:bottom, left:right], DIGIT_BOX / side)
    # The box around the ink in the digit's pixels: the core box, plus what thickening added.
    core = [(edge - origin) * zoom for edge, origin in zip(box, (top, top, left, left), strict=True)]
    core = [core[0] - grown, core[1] + grown, core[2] - grown, core[3] + grown]
    return _placed(digit, DIGIT_BOX / (side * zoom + 2 * grown), core, name)


def _checked(gray: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(gray)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"{name}: expected a 2-D grey image, got an array of shape {image.shape}")
    if image.dtype != np.float32:
        image = image.astype(np.float32)
    if not np.isfinite(image).all():
        image = np.nan_to_num(image, nan=0.0, posinf=255.0, neginf=0.0)
    return image


def _work_copy(image: np.ndarray) -> np.ndarray:
    """uint8 copy, area-averaged down to ``_WORK_SIDE`` when larger."""
    rounded = image + np.float32(0.5)
    work = np.minimum(np.maximum(rounded, 0.0, out=rounded), 255.0, out=rounded).astype(np.uint8)
    height, width = work.shape
    if max(height, width) <= _WORK_SIDE:
        return work
    from PIL import Image

    return np.asarray(Image.fromarray(work).resize(_fit_size(height, width, _WORK_SIDE), Image.Resampling.BOX))


def _fit_size(height: int, width: int, side: int) -> tuple[int, int]:
    """(width, height) -- Pillow's order -- scaled so the longer side is ``side``."""
    scale = side / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _polarity_and_paper(work: np.ndarray) -> tuple[bool, float, bool]:
    """Whether the ink is lighter than the paper (MNIST, chalk) rather than darker; the paper's tone; and
    whether the border is flat (one tone, give or take noise).

    Paper is the most common tone -- the median, as ink covers less than half of any digit image, even a
    tight crop whose border is mostly ink -- and the ink is the tail of the histogram reaching furthest
    from it.
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
    paper = middle if flat else paper
    return light, float(255 - paper if light else paper), flat


def _paper(work: np.ndarray, flat_paper: float | None) -> tuple[np.ndarray | float, float]:
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
    closed = _sliding(_sliding(small, kernel, np.maximum), kernel, np.minimum)
    paper_image = Image.fromarray(closed).filter(ImageFilter.GaussianBlur(kernel / 4))
    if factor > 1:  # the estimate is smooth: nearest-neighbour blocks differ by well under 1%
        paper_image = paper_image.resize((width, height), Image.Resampling.NEAREST)
    paper = np.maximum(np.asarray(paper_image), 1)
    return paper, float(_quantile(np.bincount(closed.ravel(), minlength=256).cumsum(), 0, 256, 0.5))


def _sliding(values: np.ndarray, size: int, op) -> np.ndarray:
    """Max or min (``op``) over a ``size`` x ``size`` window, edges repeated; doubling, so log(size) passes."""
    return _sliding_rows(_sliding_rows(values, size, op).T, size, op).T


def _sliding_rows(values: np.ndarray, size: int, op) -> np.ndarray:
    half = size // 2
    padded = np.concatenate([np.repeat(values[:1], half, axis=0), values, np.repeat(values[-1:], half, axis=0)])
    count = values.shape[0]
    span, windows = 1, padded  # windows[i] = op over padded[i : i + span]
    while 2 * span <= size:
        windows = op(windows[:-span], windows[span:])
        span *= 2
    return op(windows[:count], windows[size - span : size - span + count])


def _ink_levels(quantised: np.ndarray, name: str) -> tuple[float, int, float]:
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
    paper = int(smooth.argmax())
    half_width = int((smooth[paper:] < smooth[paper] / 2).argmax()) or 256
    floor = min(paper + math.ceil(3 * half_width / 1.1774), 253)  # HWHM = 1.1774 sigma
    if cdf[-1] - cdf[floor] < 4:
        raise NoDigitError(f"no digit found in {name} (nothing stands out from the background)")
    peak = _quantile(cdf, floor + 1, 256, 0.99)
    threshold = min(floor + 1 + _otsu(hist[floor + 1 :]), (floor + peak) // 2)
    level = _quantile(cdf, threshold + 1, 256, 0.5)
    start = max(floor, (paper + threshold) / 2)
    return (start - _DARK_ZERO) / _DARK_STEPS, threshold, (level - _DARK_ZERO) / _DARK_STEPS


def _quantile(cdf: np.ndarray, start: int, stop: int, fraction: float) -> int:
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


def _without_specks(mask: np.ndarray) -> np.ndarray:
    """Drop ink pixels with fewer than two ink neighbours: sensor noise and dust, not strokes."""
    padded = _padded(mask.view(np.uint8), 1)
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    block = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]
    return mask & (block >= 3)


def _digit_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), half-open, of the main ink: projections split at empty gaps.

    Specks and smudges away from the digit form their own runs of non-empty rows or columns and are left
    out; rows are re-projected within the chosen columns (and vice versa) so a speck level with the digit
    does not stretch the box either.
    """
    rows = (0, mask.shape[0], True)
    for _ in range(3):
        cols = _main_run(mask[rows[0] : rows[1]].sum(axis=0))
        if cols is None:
            return None
        rows = _main_run(mask[:, cols[0] : cols[1]].sum(axis=1))
        if rows is None:
            return None
        if cols[2] and rows[2]:  # nothing was left out, so projecting again changes nothing
            break
    return rows[0], rows[1], cols[0], cols[1]


def _main_run(profile: np.ndarray) -> tuple[int, int, bool] | None:
    """The heaviest run of non-zero entries, grown over gaps up to a quarter of its length; and whether
    that is all of them."""
    filled = np.flatnonzero(profile)
    if filled.size == 0:
        return None
    if filled[-1] - filled[0] + 1 == filled.size:  # one run: the usual case
        return int(filled[0]), int(filled[-1]) + 1, True
    cuts = np.flatnonzero(np.diff(filled) > 1)
    starts = np.concatenate([filled[:1], filled[cuts + 1]])
    ends = np.concatenate([filled[cuts], filled[-1:]]) + 1
    masses = np.add.reduceat(profile, starts)
    first = last = int(np.argmax(masses))
    mass = float(masses[first])

    def joins(neighbour: int, gap: int) -> bool:
        return gap <= (ends[last] - starts[first]) / 4 and masses[neighbour] >= mass / 100

    while True:
        before = first > 0 and joins(first - 1, starts[first] - ends[first - 1])
        after = last + 1 < starts.size and joins(last + 1, starts[last + 1] - ends[last])
        if not (before or after):
            return int(starts[first]), int(ends[last]), first == 0 and last == starts.size - 1
        if before:
            first -= 1
            mass += float(masses[first])
        if after:
            last += 1
            mass += float(masses[last])


def _fit_box(ink: np.ndarray, core: np.ndarray, scale: float) -> tuple[np.ndarray, float, float]:
    """Bring a crop much larger than the result down to ``_OVERSAMPLE`` times the final size; thicken thin strokes.

    Returns the image, its size relative to the crop, and how many of its pixels thickening added on each
    side. At the intermediate size a stroke that would end up thinner than ``_MIN_STROKE`` final pixels is
    widened by a max filter (a mild dilation). A hairline first becomes a solid 3 px line: a 3x3 box sum
    divided by the stroke's cross-section is 1 wherever the window holds the whole stroke, even where it
    straddles two pixels, while a speck (much less ink than a stroke's cross-section) stays faint.
    """
    if scale * _OVERSAMPLE >= 1:
        return ink, 1.0, 0.0
    middle = scale * _OVERSAMPLE
    height, width = ink.shape
    rows = _resampling(0.0, 1 / middle, height, math.ceil(height * middle))
    cols = _resampling(0.0, 1 / middle, width, math.ceil(width * middle))
    small = (rows @ ink @ cols.T).astype(np.float32)
    stroke = _stroke_width(small, core, middle) * middle  # in intermediate pixels
    target = _MIN_STROKE * _OVERSAMPLE
    if stroke >= target - 1:
        return small, middle, 0.0
    width = stroke
    if stroke < 3:  # a hairline: make it a solid 3 px line, even where it straddles two pixels
        small = np.minimum(_box_sum(small, 3) / np.float32(3 * stroke), 1.0)
        width = 3.0
    grow = int((target - width) / 2 + 0.5)
    if grow:
        small = _sliding(small, 2 * grow + 1, np.maximum)
    return small, middle, (width + 2 * grow - stroke) / 2


def _box_sum(values: np.ndarray, size: int) -> np.ndarray:
    """Sum over a ``size`` x ``size`` window (zeros outside), same shape, via cumulative sums."""
    half = size // 2
    padded = _padded(values, half + 1, np.float64)[:-1, :-1]
    table = padded.cumsum(axis=0).cumsum(axis=1)
    total = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    return total.astype(np.float32)


def _stroke_width(small_ink: np.ndarray, core: np.ndarray, middle: float) -> float:
    """Typical stroke width in crop pixels: twice the ink area over the length of the core's boundary."""
    inner = core[1:-1, 1:-1] & core[:-2, 1:-1] & core[2:, 1:-1] & core[1:-1, :-2] & core[1:-1, 2:]
    boundary = int(core.sum()) - int(inner.sum())
    area = float(small_ink.sum()) / (middle * middle)
    return 2.0 * area / max(boundary, 1)


def _placed(digit: np.ndarray, scale: float, core: tuple[float, ...], name: str) -> np.ndarray:
    """Resample ``digit`` by ``scale`` into 28x28 with its centre of mass on pixel (14, 14); peak -> 255.

    The shift is sub-pixel, part of the resampling, so the result moves smoothly with the input (MNIST
    shifted by whole pixels; a digit already centred that way may move by up to half a pixel and blur a
    little). It is limited so that the ``core`` box (top, bottom, left, right) stays inside the canvas.
    """
    rows, cols = digit.sum(axis=1), digit.sum(axis=0)
    total = float(rows.sum())
    if total <= 0:
        raise NoDigitError(f"no digit found in {name} (nothing stands out from the background)")
    weights = []
    for profile, first, last in ((rows, core[0], core[1]), (cols, core[2], core[3])):
        centre = float(profile @ np.arange(0.5, profile.size)) / total
        start = centre - (CENTRE + 0.5) / scale  # where the canvas begins, in digit pixels
        span = MNIST_SIDE / scale
        if last - first <= span:
            start = min(max(start, last - span), first)
        weights.append(_resampling(start, 1.0 / scale, profile.size, MNIST_SIDE))
    canvas = (weights[0] @ digit @ weights[1].T).astype(np.float32)
    peak = float(canvas.max())
    if peak <= 0:
        raise NoDigitError(f"no digit found in {name} (nothing stands out from the background)")
    # Rescale so the peak is 255, and zero the faint resampling residue (MNIST's background is exactly 0).
    scaled = canvas * np.float32(255.0 / peak)
    return np.where(scaled >= 255.0 * _ZERO_BELOW, np.minimum(scaled, 255.0), np.float32(0.0))


def _resampling(start: float, step: float, size: int, count: int) -> np.ndarray:
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


def _padded(values: np.ndarray, width: int, dtype=None) -> np.ndarray:
    """``values`` inside a frame of zeros ``width`` wide (np.pad costs ten times more on small arrays)."""
    height, cols = values.shape
    frame = np.zeros((height + 2 * width, cols + 2 * width), dtype=dtype or values.dtype)
    frame[width : width + height, width : width + cols] = values
    return frame
