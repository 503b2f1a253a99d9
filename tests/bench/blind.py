"""Blind test pictures: handwritten digits from MNIST (test 5000-9999) and USPS drawn into realistic scenes.

Written without sight of mnistctl's preprocessing or its other synthetic generators, to measure whether the
tool generalizes beyond the material it was tuned on. Kinds: register crops, pen on printed forms, tiny
normalized bitmaps, felt-marker photos, notebook phone photos, slanted fast writing; and digit-free negatives.

Run: python -m tests.bench.blind --out DIR [--count 300] [--seed 0]
Writes DIR/<kind>/<label>/<source>-<index>.png|jpg (source "mnist" = test-set index, "usps" = file stem),
DIR/negatives/<kind>/neg-<n>.png and DIR/README.txt. The same --seed gives the same files.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mnistctl.data.idx import parse_idx

SHARED = Path(__file__).resolve().parents[3] / "shared"  # ../shared beside the checkout
MNIST_FIRST, MNIST_END = 5000, 10000  # test indices the pictures may use (the rest stay unseen)

Rgb = tuple[float, float, float]


# --- sources -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digit:
    """One written digit: where it came from and its ink (0..1), cropped to the ink's bounding box."""

    source: str  # "mnist" or "usps"
    ident: str  # MNIST test-set index or USPS file stem, five digits
    label: int
    ink: np.ndarray


def _read_idx(path: Path) -> np.ndarray:
    return parse_idx(gzip.decompress(path.read_bytes()), path.name)


def _crop_ink(a: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    rows = np.flatnonzero((a > threshold).any(axis=1))
    cols = np.flatnonzero((a > threshold).any(axis=0))
    if rows.size == 0:
        return a
    return a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


class Sources:
    """MNIST test digits 5000-9999 (white ink on black) and USPS training digits (dark ink on white)."""

    def __init__(self, shared: Path) -> None:
        images = _read_idx(shared / "mnist" / "t10k-images-idx3-ubyte.gz")
        labels = _read_idx(shared / "mnist" / "t10k-labels-idx1-ubyte.gz")
        self._mnist = images
        idx = np.arange(MNIST_FIRST, MNIST_END)
        self._mnist_by_label = {d: idx[labels[idx] == d] for d in range(10)}
        self._usps_by_label = {d: sorted((shared / "usps" / "train" / str(d)).glob("*.png")) for d in range(10)}

    def pick(self, source: str, n: int, rng: np.random.Generator, first_label: int = 0) -> list[Digit]:
        """``n`` distinct digits of ``source``, labels in turn from ``first_label`` (as balanced as ``n`` allows).

        A few USPS scans are flat dashes or blots (ink under 7 of 16 rows tall) that nobody could read; they
        are passed over.
        """
        pool = self._mnist_by_label if source == "mnist" else self._usps_by_label
        digits = []
        for label in range(10):
            want = len(range((label - first_label) % 10, n, 10))
            chosen: list[tuple[int, Digit]] = []
            for choice in rng.permutation(len(pool[label])):
                if len(chosen) == want:
                    break
                digit = self._load(source, label, pool[label][choice])
                if digit.ink.shape[0] >= 7:
                    chosen.append((choice, digit))
            digits += [digit for _, digit in sorted(chosen, key=lambda pair: pair[0])]
        return digits

    def pick_both(self, count: int, rng: np.random.Generator) -> list[Digit]:
        """``count`` digits, the first half (rounded up) from MNIST, the rest from USPS, labels in turn."""
        half = (count + 1) // 2
        return self.pick("mnist", half, rng) + self.pick("usps", count // 2, rng, first_label=half % 10)

    def _load(self, source: str, label: int, key: np.integer | Path) -> Digit:
        if source == "mnist":
            ink = self._mnist[key].astype(np.float32) / 255
            return Digit("mnist", f"{int(key):05d}", label, _crop_ink(ink))
        ink = 1 - np.asarray(Image.open(key).convert("L"), np.float32) / 255
        return Digit("usps", key.stem, label, _crop_ink(ink, 0.15))


# --- array helpers ------------------------------------------------------------------------------------------


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(a, np.float32), "F").resize((max(1, w), max(1, h)), Image.BICUBIC)
    return np.clip(np.asarray(img), 0, 1)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of a 0..1 map (through 8 bits, which is precise enough here)."""
    img = Image.fromarray(np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    return np.asarray(img.filter(ImageFilter.GaussianBlur(float(sigma))), np.float32) / 255


def _soft_threshold(a: np.ndarray, level: float, softness: float) -> np.ndarray:
    return np.clip((a - level) / max(softness, 1e-3) + 0.5, 0, 1)


def _smooth_field(h: int, w: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise of unit spread: ``cells`` random values across the picture, smoothly joined."""
    small = rng.normal(size=(cells, cells)).astype(np.float32)
    field = np.asarray(Image.fromarray(small, "F").resize((w, h), Image.BICUBIC))
    return (field - field.mean()) / (field.std() + 1e-6)


def _ramp(h: int, w: int, angle: float) -> np.ndarray:
    """A linear ramp from -0.5 to 0.5 across the picture along ``angle`` (radians)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    t = x * math.cos(angle) + y * math.sin(angle)
    return (t - t.min()) / (np.ptp(t) + 1e-6) - 0.5


def _sample(a: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear look-up of ``a`` at (xs, ys); zero outside."""
    h, w = a.shape
    p = np.pad(a, 1)
    xs, ys = np.clip(xs + 1, 0, w + 0.999), np.clip(ys + 1, 0, h + 0.999)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    x1, y1 = np.minimum(x0 + 1, w + 1), np.minimum(y0 + 1, h + 1)
    top = p[y0, x0] * (1 - fx) + p[y0, x1] * fx
    bottom = p[y1, x0] * (1 - fx) + p[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _shear(a: np.ndarray, k: float) -> np.ndarray:
    """``a`` sheared so that a vertical stroke leans right by atan(k) (left for k < 0), widened to fit."""
    h = a.shape[0]
    pad = math.ceil(abs(k) * h / 2) + 1
    a = np.pad(a, ((0, 0), (pad, pad)))
    y, x = np.mgrid[0:h, 0 : a.shape[1]].astype(np.float32)
    return _sample(a, x + k * (y - (h - 1) / 2), y)


def _skew(a: np.ndarray) -> float:
    """The shear that makes the ink upright (from its second moments)."""
    y, x = np.mgrid[0 : a.shape[0], 0 : a.shape[1]].astype(np.float32)
    m = a.sum() + 1e-6
    cx, cy = (a * x).sum() / m, (a * y).sum() / m
    return float((a * (x - cx) * (y - cy)).sum() / ((a * (y - cy) ** 2).sum() + 1e-6))


def _wobble(a: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random displacement of up to about ``amount`` px, as a hurried hand draws."""
    h, w = a.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = _smooth_field(h, w, 3, rng) * amount / 2
    dy = _smooth_field(h, w, 3, rng) * amount / 2
    return _sample(a, x + dx, y + dy)


def _ring(img: np.ndarray) -> list[np.ndarray]:
    """The eight neighbours of every inner pixel of a padded 0/1 array, clockwise from north."""
    return [
        img[:-2, 1:-1],
        img[:-2, 2:],
        img[1:-1, 2:],
        img[2:, 2:],
        img[2:, 1:-1],
        img[2:, :-2],
        img[1:-1, :-2],
        img[:-2, :-2],
    ]


def _runs(n: list[np.ndarray]) -> np.ndarray:
    """How many separate runs of ink go round the ring (Zhang-Suen's A)."""
    return sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)).astype(np.uint8) for i in range(8))


def _skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: the one-pixel centre lines of a binary mask."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            n = _ring(img)
            b = sum(n)
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            first, second = ((p2, p4, p6), (p4, p6, p8)) if step == 0 else ((p2, p4, p8), (p2, p6, p8))
            side = (np.prod(first, axis=0) == 0) & (np.prod(second, axis=0) == 0)
            remove = (c == 1) & (b >= 2) & (b <= 6) & (_runs(n) == 1) & side
            if remove.any():
                img[1:-1, 1:-1] = c & ~remove
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def _ends(skel: np.ndarray) -> np.ndarray:
    """Free ends of a skeleton: pixels whose one or two neighbours touch each other (a kinked end too)."""
    n = _ring(np.pad(skel.astype(np.uint8), 1))
    b = sum(n)
    return skel & ((b == 1) | ((b == 2) & (_runs(n) == 1)))


def _prune(skel: np.ndarray, length: float) -> np.ndarray:
    """``skel`` without spurs shorter than ``length`` px (Gonzalez & Woods): every free end is eaten back
    ``length`` px, which deletes the spurs, then the ends that remain grow back along the old skeleton."""
    steps = max(1, round(length))
    cut = skel.copy()
    for _ in range(steps):
        cut &= ~_ends(cut)
    grown = _ends(cut) | (cut & (sum(_ring(np.pad(cut.astype(np.uint8), 1))) == 0))
    for _ in range(steps):
        grown |= (sum(_ring(np.pad(grown.astype(np.uint8), 1))) > 0) & skel & ~cut
    pruned = cut | grown
    # A stroke shorter than twice ``length`` (a short "1") is eaten from both ends and would vanish.
    return pruned if pruned.sum() >= 0.6 * skel.sum() else skel


def _stroke(skel: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Ink of a round pen run along ``skel``, ``radius`` px at each skeleton pixel, with soft edges."""
    r = np.where(skel, radius, 0).astype(np.float32)
    reach = math.ceil(float(r.max()) + 1)
    h, w = skel.shape
    rp, sp = np.pad(r, reach), np.pad(skel.astype(np.float32), reach)
    out = np.zeros((h, w), np.float32)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            d = math.hypot(dx, dy)
            if d > reach + 0.5:
                continue
            ys, xs = slice(reach + dy, reach + dy + h), slice(reach + dx, reach + dx + w)
            np.maximum(out, np.clip(rp[ys, xs] + 0.5 - d, 0, 1) * sp[ys, xs], out=out)
    return out


def _taper(skel: np.ndarray, length: float) -> np.ndarray:
    """0..1 along the skeleton: small near stroke ends, 1 farther than ``length`` px from any end."""
    ys, xs = np.nonzero(skel)
    ends = np.argwhere(_ends(skel))
    out = np.ones(skel.shape, np.float32)
    if len(ends) == 0 or len(ys) == 0:
        return out
    d = np.sqrt(((np.stack([ys, xs], 1)[:, None, :] - ends[None, :, :]) ** 2).sum(-1)).min(1)
    out[ys, xs] = np.clip(d / length, 0, 1)
    return out


# --- the digit's ink ----------------------------------------------------------------------------------------


def _digit_size(ink: np.ndarray, source: str, height: int, rng: np.random.Generator) -> tuple[int, int]:
    """A plausible (width, height) for the ink at ``height`` px.

    MNIST keeps its aspect. USPS was normalized to fill its 16x16 box, so an ink as wide as tall (most of
    them) is squeezed to 0.55-0.8 of the height, and a flat one (a wide "2", height-limited) to about 0.55-0.8
    of its width-to-height ratio, at most 1.3. An ink already narrow (a "1", a quarter as wide as tall, which
    the normalization left narrow) keeps its narrowness.
    """
    native = ink.shape[1] / ink.shape[0]
    if source == "usps":
        squeezed = min(1.3, max(0.55, native * rng.uniform(0.55, 0.8)))
        ratio = native * rng.uniform(0.85, 1.0) if native < 0.8 else squeezed
    else:
        ratio = native * rng.uniform(0.9, 1.1)
    return max(1, round(height * ratio)), max(1, height)


def _direct_ink(digit: Digit, height: int, rng: np.random.Generator) -> np.ndarray:
    w, h = _digit_size(digit.ink, digit.source, height, rng)
    return _resize(digit.ink, w, h)


def _pen_ink(
    digit: Digit,
    height: int,
    rng: np.random.Generator,
    *,
    stroke: float,
    pressure: float = 0.0,
    taper: float = 0.0,
    slant: float = 0.0,
    wobble: float = 0.0,
    deslant: bool = False,
) -> np.ndarray:
    """The digit redrawn by a round pen ``stroke`` px wide, about ``height`` px tall (coverage 0..1).

    The ink is thinned to its centre lines at a working size of 64-128 px, optionally made upright first,
    slanted by ``slant`` (a shear), wobbled, then stroked with a width that varies by ``pressure`` and
    thins towards the stroke ends by ``taper``.
    """
    ink = digit.ink
    if deslant:
        ink = _crop_ink(_shear(ink, _skew(ink)), 0.05)
    w, h = _digit_size(ink, digit.source, height, rng)
    work = int(np.clip(h, 64, 128))
    s = work / h
    a = _resize(ink, round(w * s), work)
    margin = math.ceil(stroke * s) + 4
    a = np.pad(a, margin)
    if slant:
        a = _shear(a, slant)
    if wobble:
        a = _wobble(a, wobble * work, rng)
    # Unsharp masking first, so that a small loop whose inside scanned grey (USPS's 6s and 8s) stays open.
    # Smoothed over a source pixel first: the bicubic enlargement leaves a ripple at the source's pixel pitch
    # that the thinning would turn into a zigzag centre line.
    a = _blur(a, 0.5 * work / ink.shape[0])
    mask = a + (a - _blur(a, 0.06 * work)) > 0.4
    skel = _skeleton(mask)
    thickness = mask.sum() / max(skel.sum(), 1)  # the source's stroke width: area / length
    # A bump on a thick stroke's side thins into a spur about as long as the stroke is wide.
    skel = _prune(skel, max(0.08 * work, 1.2 * thickness))
    if skel.sum() < 3:
        skel = mask
    pen = stroke * s
    if thickness > 0.21 * work and skel.sum() > 2 * work:  # the boldest 5%, long strokes: loops filled in
        pen = max(pen, 0.5 * thickness)
    radius = np.full(a.shape, pen / 2, np.float32)
    if pressure:
        radius *= np.clip(1 + pressure * _smooth_field(*a.shape, 4, rng), 0.45, 1.6)
    if taper:
        radius *= 1 - taper + taper * _taper(skel, 0.25 * work)
    out = _stroke(skel, radius)
    smooth = min(1.5, 0.15 * pen)
    if smooth >= 0.5:  # a pixel-wide zigzag of the centre line would show as a hairy edge on a broad stroke
        out = _soft_threshold(_blur(out, smooth), 0.5, 0.7)
    out = _crop_ink(out, 0.02)
    out = _resize(out, round(out.shape[1] / s), round(out.shape[0] / s))
    # An upscaled edge is 1/s px wide; narrow it back to about a pixel (softness < 1 keeps 0 at 0).
    return _soft_threshold(out, 0.5, min(1.2 * s, 0.9)) if s < 1 else out


def _place(shape: tuple[int, int], ink: np.ndarray, x: int, y: int) -> np.ndarray:
    """A coverage map of ``shape`` with ``ink`` at top-left (x, y), clipped at the edges."""
    out = np.zeros(shape, np.float32)
    h, w = ink.shape
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + h, shape[0]), min(x + w, shape[1])
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = ink[y0 - y : y1 - y, x0 - x : x1 - x]
    return out


# --- drawing helpers ----------------------------------------------------------------------------------------


@functools.cache
def _font_files() -> dict[str, str]:
    files = [str(p) for p in Path("/usr/share/fonts").rglob("*.ttf")]
    try:
        listed = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True, timeout=10).stdout
        files += [line.split(":")[0].strip() for line in listed.splitlines()]
    except (OSError, subprocess.SubprocessError):
        pass
    found = {}
    for style, names in {
        "serif": ("DejaVuSerif.ttf", "LiberationSerif-Regular.ttf", "FreeSerif.ttf"),
        "sans": ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "FreeSans.ttf"),
    }.items():
        for name in names:
            match = sorted(f for f in files if f.endswith("/" + name))
            if match:
                found[style] = match[0]
                break
    return found


@functools.cache
def _font(style: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _font_files().get(style)
    if path:
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def _layer(w: int, h: int, paint: Callable[[ImageDraw.ImageDraw, int], None], ss: int = 4) -> np.ndarray:
    """Coverage (0..1) of what ``paint(draw, ss)`` draws at ``ss`` times the size, smoothly reduced."""
    img = Image.new("L", (w * ss, h * ss), 0)
    paint(ImageDraw.Draw(img), ss)
    return np.asarray(img.resize((w, h), Image.BOX), np.float32) / 255


def _line(
    draw: ImageDraw.ImageDraw,
    ss: int,
    p0: tuple[float, float],
    p1: tuple[float, float],
    width: float,
    style: str,
    rng: np.random.Generator,
) -> None:
    """A ruling line from p0 to p1 (picture px): "solid", "dotted" or "broken" (gaps where the ink failed)."""
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0)
    if length < 1:
        return
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    lw = max(1, round(width * ss))
    if style == "solid":
        pieces = [(0.0, length)]
    elif style == "dotted":
        dot, gap = rng.uniform(0.8, 2.5), rng.uniform(1.5, 4.0)
        pieces = [(t, t + dot) for t in np.arange(0, length, dot + gap)]
    else:
        pieces, t = [], 0.0
        while t < length:
            run = rng.uniform(6, 50)
            pieces.append((t, min(t + run, length)))
            t += run + rng.uniform(1, 6)
    for a, b in pieces:
        draw.line([((x0 + ux * a) * ss, (y0 + uy * a) * ss), ((x0 + ux * b) * ss, (y0 + uy * b) * ss)], 255, lw)


def _text_layer(w: int, h: int, text: str, xy: tuple[int, int], size: int, style: str) -> np.ndarray:
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text(xy, text, 255, font=_font(style, size))
    return np.asarray(img, np.float32) / 255


def _ink(rgb: np.ndarray, cov: np.ndarray, color: Rgb, opacity: float = 1.0) -> None:
    """Darken ``rgb`` (float, in place) where ``cov`` has ink of ``color``, as ink soaks into paper."""
    rgb *= 1 - (cov * opacity)[..., None] * (1 - np.asarray(color, np.float32))


def _to_image(rgb: np.ndarray, gray: bool = False) -> Image.Image:
    u8 = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    img = Image.fromarray(u8, "RGB")
    return img.convert("L") if gray else img


def _noisy(img: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    a = np.asarray(img, np.float32)
    a = a + rng.normal(0, sigma, a.shape[:2])[..., None] if a.ndim == 3 else a + rng.normal(0, sigma, a.shape)
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), img.mode)


def _as_jpeg(img: Image.Image, quality: int) -> Image.Image:
    img.info["blind_save"] = ("JPEG", quality)
    return img


# --- paper --------------------------------------------------------------------------------------------------


def _old_paper(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Aged register paper: grey to yellowish, uneven light, fibres, a few stains and foxing spots."""
    level = rng.uniform(0.80, 0.95)
    yellow = rng.uniform(0.0, 0.16) if rng.random() < 0.7 else 0.0
    base = np.array([level, level - 0.3 * yellow, level - yellow], np.float32)
    light = (
        1
        + rng.uniform(0.01, 0.05) * _smooth_field(h, w, 3, rng)
        + rng.uniform(0, 0.1) * _ramp(h, w, rng.uniform(0, 2 * math.pi))
    )
    fibre = 1 + 0.006 * _smooth_field(h, w, max(4, w // 6), rng) + rng.normal(0, 0.01, (h, w))
    rgb = base * (light * fibre)[..., None]
    for _ in range(rng.integers(0, 4)):  # water or dirt stains
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(6, 45)
        blob = Image.new("L", (w, h), 0)
        ImageDraw.Draw(blob).ellipse([cx - r, cy - r * rng.uniform(0.5, 1.5), cx + r, cy + r], 255)
        stain = np.asarray(blob.filter(ImageFilter.GaussianBlur(r * rng.uniform(0.2, 0.6))), np.float32) / 255
        _ink(rgb, stain, (0.75, 0.62, 0.45), rng.uniform(0.08, 0.3))
    for _ in range(rng.integers(0, 6)):  # foxing
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, 2.0)
        spot = _layer(
            w,
            h,
            lambda d, ss, cx=cx, cy=cy, r=r: d.ellipse(
                [(cx - r) * ss, (cy - r) * ss, (cx + r) * ss, (cy + r) * ss], 255
            ),
        )
        _ink(rgb, spot, (0.55, 0.4, 0.25), rng.uniform(0.2, 0.6))
    return rgb


def _clean_paper(h: int, w: int, rng: np.random.Generator, tint: float = 0.03) -> np.ndarray:
    """Bright office or notebook paper, slightly tinted, with faint texture."""
    level = rng.uniform(0.90, 0.99)
    warm = rng.uniform(-tint, tint)  # white balance runs from blue-ish to yellow-ish
    cast = 1 + np.array([warm, warm / 3, -warm]) + rng.uniform(-0.01, 0.01, 3)
    texture = 1 + 0.008 * _smooth_field(h, w, max(4, w // 8), rng) + rng.normal(0, 0.006, (h, w))
    return np.clip(level * cast, 0, 1).astype(np.float32) * texture[..., None]


PRINT_COLORS: list[Rgb] = [(0.22, 0.22, 0.24), (0.55, 0.28, 0.24), (0.32, 0.38, 0.58), (0.42, 0.36, 0.30)]
PEN_COLORS: list[Rgb] = [(0.12, 0.12, 0.14), (0.34, 0.23, 0.14), (0.2, 0.24, 0.48), (0.22, 0.22, 0.22)]
REGISTER_WORDS = ["Trykt for", "Nr.", "Side 3", "Fol.", "Aar", "Navn", "Anm.", "Sogn", "No.", "Trykt hos", "Løbe-Nr."]
PLAIN_WORDS = ["Trykt for", "Nr.", "Fol.", "Aar", "Navn", "Anm.", "Sogn", "Bopæl", "Stilling", "Trykt hos", "Fødested"]


def _ruling(
    w: int, h: int, box: tuple[float, float, float, float], rng: np.random.Generator, *, sides: float = 0.75
) -> np.ndarray:
    """Coverage of a register's printed rulings around the cell ``box`` (x0, y0, x1, y1), plus neighbours.

    Lines share the page's small skew, run the full crop or stop short, and are solid, dotted or broken.
    """
    skew = math.radians(rng.normal(0, 0.7))
    width = rng.choice([0.8, 1.0, 1.0, 1.4, 2.0])
    style = rng.choice(["solid", "solid", "solid", "dotted", "broken", "broken"])
    x0, y0, x1, y1 = box
    cell_w, cell_h = max(x1 - x0, 20), max(y1 - y0, 12)
    horizontal = [y for y in (y0, y1) if rng.random() < sides]
    vertical = [x for x in (x0, x1) if rng.random() < sides]
    horizontal += [y for y in np.arange(y1 + cell_h, h + 10, cell_h) if rng.random() < 0.6]
    horizontal += [y for y in np.arange(y0 - cell_h, -10, -cell_h) if rng.random() < 0.6]
    vertical += [x for x in np.arange(x1 + cell_w, w + 10, cell_w) if rng.random() < 0.5]
    vertical += [x for x in np.arange(x0 - cell_w, -10, -cell_w) if rng.random() < 0.5]
    t = math.tan(skew)

    def extent(size: float) -> tuple[float, float]:
        """The full crop, or a line entering from one edge and ending at a junction past the middle."""
        if rng.random() < 0.7:
            return -5.0, size + 5
        stop = rng.uniform(0.5, 0.9) * size
        return (-5.0, stop) if rng.random() < 0.5 else (size - stop, size + 5)

    def paint(draw: ImageDraw.ImageDraw, ss: int) -> None:
        for y in horizontal:
            a, b = extent(w)
            own = style if rng.random() < 0.8 else "solid"
            _line(draw, ss, (a, y + t * (a - w / 2)), (b, y + t * (b - w / 2)), width, own, rng)
            if rng.random() < 0.08:  # a double rule
                gap = rng.uniform(2, 3.5)
                _line(draw, ss, (a, y + gap + t * (a - w / 2)), (b, y + gap + t * (b - w / 2)), width, own, rng)
        for x in vertical:
            a, b = extent(h)
            own = style if rng.random() < 0.8 else "solid"
            _line(draw, ss, (x - t * (a - h / 2), a), (x - t * (b - h / 2), b), width, own, rng)

    return _layer(w, h, paint)


def _scanner_bar(rgb: np.ndarray, rng: np.random.Generator, avoid: tuple[int, int, int, int] | None = None) -> None:
    """The black scanner bed beyond the paper's edge along one side (in place), with the edge's shadow.

    ``avoid`` (x0, y0, x1, y1): what the paper's edge must not cut (the written digit).
    """
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = avoid or (w, h, 0, 0)
    room = [x0 - 3, w - x1 - 3, y0 - 3, h - y1 - 3]  # left, right, top, bottom
    sides = [i for i in range(4) if room[i] >= 6] or [int(np.argmax(room))]
    side = int(rng.choice(sides))
    length, across = (h, w) if side < 2 else (w, h)
    depth = rng.uniform(4, max(4.5, min(30, across * 0.25, room[side])))
    tilt = rng.normal(0, 0.012)
    along = np.arange(length, dtype=np.float32)
    edge = depth + tilt * (along - length / 2) + rng.normal(0, 0.25, length).cumsum() * 0.15
    dist = np.arange(across, dtype=np.float32)[None, :] - edge[:, None]  # > 0 on the paper
    bar = np.clip(0.5 - dist, 0, 1)
    shadow = rng.uniform(0.1, 0.35) * np.exp(-np.clip(dist, 0, None) / rng.uniform(1, 4))
    if side in (1, 3):
        bar, shadow = bar[:, ::-1], shadow[:, ::-1]
    if side >= 2:
        bar, shadow = bar.T, shadow.T
    rgb *= (1 - shadow)[..., None]
    black = rng.uniform(0.02, 0.12) + rng.normal(0, 0.015, (h, w))
    rgb[:] = rgb * (1 - bar[..., None]) + black[..., None] * bar[..., None]


def _corner_text(w: int, h: int, words: list[str], rng: np.random.Generator) -> np.ndarray:
    """A fragment of printed text in a corner, sometimes cut by the crop's edge."""
    text = str(rng.choice(words))
    size = int(rng.integers(8, 14))
    font = _font("serif" if rng.random() < 0.7 else "sans", size)
    box = font.getbbox(text)
    tw, th = box[2] - box[0], box[3] - box[1]
    x = rng.uniform(-0.4 * tw, 6) if rng.random() < 0.5 else w - tw - rng.uniform(-0.4 * tw, 6)
    y = rng.uniform(-0.3 * th, 5) if rng.random() < 0.5 else h - th - rng.uniform(-0.3 * th, 5) - box[1]
    return _text_layer(w, h, text, (int(x), int(y)), size, "serif" if rng.random() < 0.7 else "sans")


def _finish_scan(rgb: np.ndarray, rng: np.random.Generator, gray: bool) -> Image.Image:
    img = _to_image(rgb, gray).filter(ImageFilter.GaussianBlur(rng.uniform(0.25, 0.7)))
    return _noisy(img, rng.uniform(1.0, 3.5), rng)


# --- kinds --------------------------------------------------------------------------------------------------


def register(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A loose crop from an old handwritten register: a small digit in a ruled cell, JPEG."""
    w, h = int(rng.integers(100, 191)), int(rng.integers(90, 181))
    rgb = _old_paper(h, w, rng)
    height = int(rng.integers(10, 26))
    if height >= 15 and rng.random() < 0.5:  # the scan of the writing itself, reduced
        ink = _direct_ink(digit, height, rng)
    else:  # a fine pen: a small digit written as thick as MNIST's strokes would be a blot
        ink = _pen_ink(digit, height, rng, stroke=rng.uniform(1.0, 1.4 + height / 25), pressure=0.2)
    dh, dw = ink.shape
    x = int(rng.uniform(0.25, 0.75) * w - dw / 2)
    y = int(rng.uniform(0.3, 0.7) * h - dh / 2)
    box = (
        x - rng.uniform(2, 30),
        y - rng.uniform(2, 12),
        x + dw + rng.uniform(3, 40),
        y + dh + rng.uniform(1, 10),
    )
    printed = rng.choice(len(PRINT_COLORS))
    _ink(rgb, _ruling(w, h, box, rng), PRINT_COLORS[printed], rng.uniform(0.45, 0.9))
    if rng.random() < 0.45:
        _ink(rgb, _corner_text(w, h, REGISTER_WORDS, rng), PRINT_COLORS[printed], rng.uniform(0.6, 0.95))
    cov = _place((h, w), ink, x, y)
    if rng.random() < 0.3:  # "9."
        r = rng.uniform(0.8, 1.6)
        px, py = x + dw + rng.uniform(1.5, 4) + r, y + dh - r - rng.uniform(-1, 1.5)
        dot = _layer(w, h, lambda d, ss: d.ellipse([(px - r) * ss, (py - r) * ss, (px + r) * ss, (py + r) * ss], 255))
        cov = np.maximum(cov, dot)
    if rng.random() < 0.15:  # a bit of the neighbouring entry, cut by the crop's edge
        other = _direct_ink(digit, height, rng)[::-1, ::-1]
        ox = -int(other.shape[1] * rng.uniform(0.6, 0.85)) if rng.random() < 0.5 else w - int(other.shape[1] * 0.3)
        cov = np.maximum(cov, _place((h, w), other, ox, int(rng.uniform(0.2, 0.7) * h)))
    flow = np.clip(1 - 0.25 * _smooth_field(h, w, 6, rng) * rng.uniform(0.3, 1), 0.4, 1)
    _ink(rgb, cov * flow, PEN_COLORS[rng.choice(len(PEN_COLORS))], rng.uniform(0.7, 0.95))
    if rng.random() < 0.35:
        _scanner_bar(rgb, rng, avoid=(x, y, x + dw, y + dh))
    return _as_jpeg(_finish_scan(rgb, rng, gray=rng.random() < 0.4), int(rng.integers(50, 91)))


def _rgba(layers: list[tuple[np.ndarray, Rgb]], white_under: bool) -> Image.Image:
    """Ink layers over a transparent background, as an app exports a cleaned-up scan."""
    h, w = layers[0][0].shape
    alpha = np.zeros((h, w), np.float32)
    rgb = np.zeros((h, w, 3), np.float32)
    for cov, color in layers:
        rgb = rgb * (1 - cov[..., None]) + np.asarray(color, np.float32) * cov[..., None]
        alpha = alpha + cov * (1 - alpha)
    rgb = np.where(alpha[..., None] > 1e-3, rgb / np.maximum(alpha, 1e-3)[..., None], 1.0 if white_under else 0.0)
    out = np.dstack([np.clip(rgb, 0, 1), alpha])
    return Image.fromarray(np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8), "RGBA")


def form_pen(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """Thin pen on a printed form, scanned: box, comb or label remnants at the edges; 1-bit or RGBA PNG."""
    w, h = int(rng.integers(80, 131)), int(rng.integers(80, 131))
    scale = h / 100
    printed_color = [(0.15, 0.15, 0.18), (0.88, 0.5, 0.5), (0.5, 0.72, 0.55), (0.5, 0.6, 0.85)][
        rng.choice(4, p=[0.55, 0.15, 0.1, 0.2])
    ]
    inset = [rng.uniform(-2, 12) for _ in range(4)]  # left, top, right, bottom box lines
    lw = rng.choice([1.0, 1.0, 1.5, 2.0]) * max(scale, 0.8)
    comb = rng.random() < 0.35

    def paint(draw: ImageDraw.ImageDraw, ss: int) -> None:
        left, top, right, bottom = inset[0], inset[1], w - inset[2], h - inset[3]
        edges = [((left, -5), (left, h + 5)), ((-5, top), (w + 5, top))]
        edges += [((right, -5), (right, h + 5)), ((-5, bottom), (w + 5, bottom))]
        for (p0, p1), keep in zip(edges, rng.random(4) < 0.6, strict=True):
            if not keep:
                continue
            if rng.random() < 0.35:  # only part of the box line made it into the crop
                f = rng.uniform(0.3, 0.7)
                p1 = (p0[0] + (p1[0] - p0[0]) * f, p0[1] + (p1[1] - p0[1]) * f)
            _line(draw, ss, p0, p1, lw, "solid", rng)
        if comb:  # a baseline with ticks at the cell's sides and beyond
            base = h - rng.uniform(3, 14)
            _line(draw, ss, (-5, base), (w + 5, base), lw, "solid", rng)
            tick, pitch = rng.uniform(5, 12) * scale, rng.uniform(0.7, 1.0) * w
            for x in (rng.uniform(1, 10), rng.uniform(1, 10) + pitch, rng.uniform(1, 10) - pitch):
                _line(draw, ss, (x, base), (x, base - tick), lw, "solid", rng)

    printed = _layer(w, h, paint)
    if rng.random() < 0.5:
        label = str(rng.choice(["Beløp", "Amount", "Kr.", "Sum", "Dato", "Konto", "Total", "Antall", "Qty"]))
        size = int(rng.integers(7, 12) * max(scale, 0.8))
        printed = np.maximum(
            printed, _text_layer(w, h, label, (int(inset[0] + rng.uniform(1, 4)), int(inset[1] + 1)), size, "sans")
        )
    height = int(rng.uniform(0.4, 0.7) * h)
    mode = rng.choice(["1", "rgba_clear", "rgba"], p=[0.4, 0.3, 0.3])
    # A 1-bit scan keeps a stroke only where it is dark enough: a hairline would break up into dots.
    stroke = rng.uniform(1.4 if mode == "1" else 1.0, 2.0) * scale
    ink = _pen_ink(digit, height, rng, stroke=stroke, pressure=0.15, taper=0.2)
    dh, dw = ink.shape
    x = int(w / 2 - dw / 2 + rng.uniform(-0.15, 0.15) * w)
    y = int(h / 2 - dh / 2 + rng.uniform(-0.1, 0.18) * h)
    cov = _place((h, w), ink, x, y) * rng.uniform(0.85, 1.0)
    pen = [(0.12, 0.2, 0.62), (0.1, 0.14, 0.45), (0.08, 0.08, 0.1)][rng.choice(3)]
    if mode == "rgba_clear":
        return _rgba([(printed * rng.uniform(0.6, 1), printed_color), (cov, pen)], rng.random() < 0.5)
    rgb = _clean_paper(h, w, rng)
    _ink(rgb, printed, printed_color, rng.uniform(0.7, 1.0))
    _ink(rgb, cov, pen)
    img = _finish_scan(rgb, rng, gray=False)
    if mode == "rgba":
        return img.convert("RGBA")
    gray = np.asarray(img.convert("L"))
    return Image.fromarray(gray > rng.uniform(0.55, 0.72) * 255)


def tiny(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A tiny normalized bitmap (16x16 or 20x20), the digit stretched to its box, often 0/255 (PNG)."""
    n = int(rng.choice([16, 20]))
    ink = digit.ink
    native = ink.shape[1] / ink.shape[0]
    # Stretched to the full box, except a narrow ink ("1"), which a full stretch would turn into a block.
    w = n if native >= 0.6 else max(3, min(n, round(n * native * rng.uniform(1.0, 1.3))))
    cov = _place((n, n), _resize(ink, w, n), (n - w) // 2, 0)
    binary = rng.random() < 0.6
    if binary:
        cov = (cov > rng.uniform(0.35, 0.55)).astype(np.float32)
    else:
        cov = np.clip(cov * rng.uniform(1.0, 1.4), 0, 1) ** rng.uniform(0.7, 1.3)
    value = 1 - cov if rng.random() < 0.55 else cov
    img = Image.fromarray(np.clip(value * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    return img.convert("1") if binary and rng.random() < 0.3 else img


def _phone_light(rgb: np.ndarray, rng: np.random.Generator, shadow: float) -> None:
    """Uneven light of a phone photo (in place): a soft shadow edge, a gradient, vignette, colour cast."""
    h, w = rgb.shape[:2]
    angle = rng.uniform(0, 2 * math.pi)
    t = _ramp(h, w, angle)
    edge = rng.uniform(-0.3, 0.45)
    soft = rng.uniform(0.08, 0.3)
    light = 1 - shadow * (1 / (1 + np.exp(-(t - edge) / soft)))
    light *= 1 + rng.uniform(0, 0.12) * _ramp(h, w, rng.uniform(0, 2 * math.pi))
    light *= 1 + 0.03 * _smooth_field(h, w, 3, rng)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((x - w / 2) / w) ** 2 + ((y - h / 2) / h) ** 2
    light *= 1 - rng.uniform(0.05, 0.3) * r2 * 2
    warm = rng.uniform(-0.05, 0.05)
    rgb *= light[..., None] * np.array([1 + warm, 1 + warm / 3, 1 - warm], np.float32)


def _camera(rgb: np.ndarray, rng: np.random.Generator, blur: float, quality_low: int) -> Image.Image:
    img = _to_image(rgb).filter(ImageFilter.GaussianBlur(blur))
    a = np.asarray(img, np.float32)
    a = a + rng.normal(0, rng.uniform(1.5, 5), a.shape[:2])[..., None] + rng.normal(0, 1.5, a.shape)
    img = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "RGB")
    return _as_jpeg(img, int(rng.integers(quality_low, 93)))


def _picture_size(rng: np.random.Generator, low: int, high: int) -> tuple[int, int]:
    h = int(rng.integers(low, high + 1))
    return int(np.clip(h * rng.uniform(0.75, 1.33), low, high)), h


def _rule_lines(
    w: int, h: int, spacing: float, width: float, rng: np.random.Generator, squared: bool, margin: bool
) -> np.ndarray:
    off_y, off_x = rng.uniform(0, spacing), rng.uniform(0, spacing)

    def paint(draw: ImageDraw.ImageDraw, ss: int) -> None:
        for y in np.arange(off_y, h, spacing):
            draw.line([(0, y * ss), (w * ss, y * ss)], 255, max(1, round(width * ss)))
        if squared:
            for x in np.arange(off_x, w, spacing):
                draw.line([(x * ss, 0), (x * ss, h * ss)], 255, max(1, round(width * ss)))

    lines = _layer(w, h, paint, ss=2)
    if margin:
        x = rng.uniform(0.06, 0.2) * w
        lines_margin = _layer(
            w, h, lambda d, ss: d.line([(x * ss, 0), (x * ss, h * ss)], 255, round(width * 1.5 * ss)), 2
        )
        return np.stack([lines, lines_margin])
    return lines[None]


def marker(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A thick felt-marker digit on white or lined paper, photographed by a phone (JPEG)."""
    w, h = _picture_size(rng, 200, 600)
    rgb = _clean_paper(h, w, rng, tint=0.05)
    if rng.random() < 0.5:
        spacing = rng.uniform(0.08, 0.14) * h
        lines = _rule_lines(w, h, spacing, max(1.0, h / 300), rng, squared=False, margin=rng.random() < 0.3)
        _ink(rgb, lines[0], (0.55, 0.7, 0.88), rng.uniform(0.4, 0.8))
        if len(lines) > 1:
            _ink(rgb, lines[1], (0.9, 0.45, 0.45), rng.uniform(0.5, 0.8))
    height = int(rng.uniform(0.45, 0.75) * h)
    ink = _pen_ink(digit, height, rng, stroke=rng.uniform(0.12, 0.2) * height, pressure=0.08)
    if ink.shape[1] > 0.95 * w:
        ink = _resize(ink, int(0.95 * w), int(ink.shape[0] * 0.95 * w / ink.shape[1]))
    dh, dw = ink.shape
    x = int((w - dw) / 2 + rng.uniform(-0.1, 0.1) * (w - dw))
    y = int((h - dh) / 2 + rng.uniform(-0.1, 0.1) * (h - dh))
    color = [(0.07, 0.07, 0.09), (0.1, 0.14, 0.42), (0.1, 0.32, 0.18), (0.62, 0.1, 0.1)][
        rng.choice(4, p=[0.6, 0.2, 0.1, 0.1])
    ]
    _ink(rgb, _place((h, w), ink, x, y), color, rng.uniform(0.88, 0.98))
    _phone_light(rgb, rng, shadow=rng.uniform(0.1, 0.35))
    return _camera(rgb, rng, blur=rng.uniform(0.6, 1.6) * h / 400, quality_low=60)


def _perspective_coeffs(out_pts: list[tuple[float, float]], in_pts: list[tuple[float, float]]) -> list[float]:
    """PIL PERSPECTIVE coefficients taking each output corner to its point in the input."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(out_pts, in_pts, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return list(np.linalg.solve(np.array(rows, float), np.array(rhs, float)))


def phone(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A phone photo of one handwritten digit on squared or lined notebook paper, a little askew (JPEG)."""
    w, h = _picture_size(rng, 300, 1000)
    pw, ph = int(w * 1.25), int(h * 1.25)
    page = _clean_paper(ph, pw, rng, tint=0.04)
    height = int(rng.uniform(0.3, 0.6) * h)
    squared = rng.random() < 0.55
    spacing = height / (rng.uniform(2.5, 5) if squared else rng.uniform(1.2, 2.5))
    color = (0.6, 0.72, 0.88) if rng.random() < 0.7 else (0.68, 0.68, 0.7)
    lines = _rule_lines(pw, ph, spacing, max(1.0, spacing * 0.04), rng, squared, margin=rng.random() < 0.2)
    _ink(page, lines[0], color, rng.uniform(0.45, 0.85))
    if len(lines) > 1:
        _ink(page, lines[1], (0.9, 0.45, 0.45), rng.uniform(0.5, 0.8))
    pen_kind = rng.choice(["ballpoint", "gel", "pencil"], p=[0.5, 0.3, 0.2])
    stroke = rng.uniform(0.04, 0.09) * height
    ink = _pen_ink(digit, height, rng, stroke=stroke, pressure=0.25 if pen_kind != "gel" else 0.08, taper=0.3)
    dh, dw = ink.shape
    x = int(pw / 2 - dw / 2 + rng.uniform(-0.08, 0.08) * w)
    y = int(ph / 2 - dh / 2 + rng.uniform(-0.08, 0.08) * h)
    cov = _place((ph, pw), ink, x, y)
    if pen_kind == "pencil":
        grain = np.clip(0.75 + 0.25 * rng.normal(size=cov.shape), 0.3, 1).astype(np.float32)
        _ink(page, cov * grain, (0.3, 0.3, 0.33), rng.uniform(0.7, 0.9))
    else:
        blue = rng.random() < 0.6
        _ink(page, cov, (0.12, 0.2, 0.6) if blue else (0.1, 0.1, 0.12), rng.uniform(0.8, 0.97))
    # Askew: the picture's corners look at a jittered, slightly turned quadrilateral of the page.
    turn, jitter = math.radians(rng.normal(0, 4)), rng.uniform(0.02, 0.08)
    cx, cy = pw / 2, ph / 2
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    quad = []
    for qx, qy in corners:
        qx, qy = qx + rng.uniform(-jitter, jitter) * w, qy + rng.uniform(-jitter, jitter) * h
        quad.append((cx + qx * math.cos(turn) - qy * math.sin(turn), cy + qx * math.sin(turn) + qy * math.cos(turn)))
    coeffs = _perspective_coeffs([(0, 0), (w, 0), (w, h), (0, h)], quad)
    table = tuple(int(v) for v in rng.uniform(40, 140, 3))
    warped = _to_image(page).transform((w, h), Image.PERSPECTIVE, coeffs, Image.BICUBIC, fillcolor=table)
    rgb = np.asarray(warped, np.float32) / 255
    _phone_light(rgb, rng, shadow=rng.uniform(0.0, 0.3))
    return _camera(rgb, rng, blur=rng.uniform(0.4, 1.3) * h / 600, quality_low=70)


def slanted_fast(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """Fast sloppy writing slanted 20-40 degrees (mostly to the right), uneven pressure, scanned grey PNG."""
    h = int(rng.integers(64, 181))
    height = int(rng.uniform(0.55, 0.8) * h)
    angle = math.radians(rng.uniform(20, 40)) * (1 if rng.random() < 0.8 else -1)
    ink = _pen_ink(
        digit,
        height,
        rng,
        stroke=rng.uniform(0.06, 0.11) * height,
        pressure=rng.uniform(0.2, 0.35),
        taper=rng.uniform(0.3, 0.55),
        slant=math.tan(angle),
        wobble=rng.uniform(0.02, 0.05),
        deslant=True,
    )
    ink = _resize(ink, int(ink.shape[1] * rng.uniform(0.85, 1.2)), ink.shape[0])
    dh, dw = ink.shape
    w = int(dw + rng.uniform(0.15, 0.5) * h)
    level = rng.uniform(0.78, 0.95)
    paper = level * (1 + 0.02 * _smooth_field(h, w, 3, rng) + rng.uniform(0, 0.08) * _ramp(h, w, rng.uniform(0, 6.3)))
    rgb = np.repeat(paper[..., None], 3, axis=2).astype(np.float32)
    x, y = int(rng.uniform(0.2, 0.8) * (w - dw)), int(rng.uniform(0.25, 0.75) * (h - dh))
    _ink(rgb, _place((h, w), ink, x, y), (rng.uniform(0.1, 0.35),) * 3)
    return _finish_scan(rgb, rng, gray=True)


KINDS: dict[str, Callable[[Digit, np.random.Generator], Image.Image]] = {
    "register": register,
    "form_pen": form_pen,
    "tiny": tiny,
    "marker": marker,
    "phone": phone,
    "slanted_fast": slanted_fast,
}


# --- negatives: no digit at all -----------------------------------------------------------------------------


def _register_crop(rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    w, h = int(rng.integers(100, 191)), int(rng.integers(90, 181))
    cw, ch = rng.uniform(35, 110), rng.uniform(22, 50)
    x0, y0 = rng.uniform(0.1, 0.6) * w, rng.uniform(0.15, 0.6) * h
    return _old_paper(h, w, rng), (x0, y0, x0 + cw, y0 + ch)


def _ruled_register(
    rng: np.random.Generator, sides: float, opacity: float | None = None
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A register crop with its rulings printed (``opacity`` drawn at random when None): paper and cell box."""
    rgb, box = _register_crop(rng)
    h, w = rgb.shape[:2]
    coverage = _ruling(w, h, box, rng, sides=sides)
    color = PRINT_COLORS[rng.choice(len(PRINT_COLORS))]
    _ink(rgb, coverage, color, rng.uniform(0.5, 0.9) if opacity is None else opacity)
    return rgb, box


def neg_lines(rng: np.random.Generator) -> Image.Image:
    """Only ruling lines, some crossing the crop."""
    rgb, _ = _ruled_register(rng, sides=0.85)
    return _finish_scan(rgb, rng, gray=rng.random() < 0.4)


def neg_specks(rng: np.random.Generator) -> Image.Image:
    """Only specks of dirt and dust on the paper."""
    rgb, _ = _register_crop(rng)
    h, w = rgb.shape[:2]
    specks = []
    for _ in range(rng.integers(3, 30)):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.3, 2.2), rng.uniform(0.3, 2.2)
        specks.append((cx, cy, rx, ry))

    def paint(draw: ImageDraw.ImageDraw, ss: int) -> None:
        for cx, cy, rx, ry in specks:
            draw.ellipse([(cx - rx) * ss, (cy - ry) * ss, (cx + rx) * ss, (cy + ry) * ss], 255)

    _ink(rgb, _layer(w, h, paint), (0.2, 0.18, 0.16), rng.uniform(0.5, 0.95))
    return _finish_scan(rgb, rng, gray=rng.random() < 0.4)


def neg_text(rng: np.random.Generator) -> Image.Image:
    """Only printed text (no figures)."""
    rgb, _ = _register_crop(rng)
    h, w = rgb.shape[:2]
    cov = np.zeros((h, w), np.float32)
    for _ in range(rng.integers(1, 4)):
        size = int(rng.integers(8, 20))
        xy = (int(rng.uniform(-10, 0.6 * w)), int(rng.uniform(-5, h - size)))
        cov = np.maximum(cov, _text_layer(w, h, str(rng.choice(PLAIN_WORDS)), xy, size, "serif"))
    _ink(rgb, cov, PRINT_COLORS[rng.choice(len(PRINT_COLORS))], rng.uniform(0.6, 0.95))
    return _finish_scan(rgb, rng, gray=rng.random() < 0.4)


def neg_scanner_bar(rng: np.random.Generator) -> Image.Image:
    """The scanner bed's black bar at an edge, and a ruling line."""
    rgb, _ = _ruled_register(rng, sides=0.35, opacity=0.8)
    _scanner_bar(rgb, rng)
    return _finish_scan(rgb, rng, gray=rng.random() < 0.4)


def neg_empty_cell(rng: np.random.Generator) -> Image.Image:
    """An empty cell of a register: its rulings all round, nothing written in it."""
    rgb, _ = _ruled_register(rng, sides=1.0)
    if rng.random() < 0.3:
        _scanner_bar(rgb, rng)
    return _finish_scan(rgb, rng, gray=rng.random() < 0.4)


def neg_period(rng: np.random.Generator) -> Image.Image:
    """A lone handwritten period or comma in a cell."""
    rgb, box = _ruled_register(rng, sides=0.6)
    h, w = rgb.shape[:2]
    x0, _, x1, y1 = box
    px, py = rng.uniform(x0 + 3, max(x0 + 4, x1 - 3)), y1 - rng.uniform(2, 6)
    r = rng.uniform(0.9, 2.2)
    comma = rng.random() < 0.4

    def paint(draw: ImageDraw.ImageDraw, ss: int) -> None:
        draw.ellipse([(px - r) * ss, (py - r) * ss, (px + r) * ss, (py + r) * ss], 255)
        if comma:
            tail = [(px + r * 0.6, py), (px + r * 0.2, py + 2.5 * r), (px - r * 0.9, py + 3.8 * r)]
            draw.line([(a * ss, b * ss) for a, b in tail], 255, max(1, round(r * 0.8 * ss)))

    _ink(rgb, _layer(w, h, paint), PEN_COLORS[rng.choice(len(PEN_COLORS))], rng.uniform(0.7, 0.95))
    return _finish_scan(rgb, rng, gray=rng.random() < 0.4)


NEGATIVES: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "lines": neg_lines,
    "specks": neg_specks,
    "text": neg_text,
    "scanner_bar": neg_scanner_bar,
    "empty_cell": neg_empty_cell,
    "period": neg_period,
}


# --- writing ------------------------------------------------------------------------------------------------


def _save(img: Image.Image, path_without_suffix: Path) -> Path:
    fmt, quality = img.info.get("blind_save", ("PNG", None))
    if fmt == "JPEG":
        path = path_without_suffix.with_suffix(".jpg")
        img.save(path, "JPEG", quality=quality)
    else:
        path = path_without_suffix.with_suffix(".png")
        img.save(path, "PNG")
    return path


README = """Blind test pictures made by tests/bench/blind.py (seed {seed}, {count} per kind).

Command: {command}

Digit sets, ImageFolder layout <kind>/<label>/<source>-<index>.png|jpg; half from MNIST test digits
5000-9999 ("mnist-NNNNN" = test-set index), half from USPS training digits ("usps-NNNNN" = file stem):
{kinds}

Negatives (no digit at all), negatives/<kind>/neg-NNNNN.png, {negatives} each:
{neg_kinds}
"""


def _doc(fn: Callable) -> str:
    return (fn.__doc__ or "").strip().splitlines()[0]


def write_digit_kinds(
    out: Path,
    sources: Sources,
    kinds: dict[str, Callable[[Digit, np.random.Generator], Image.Image]],
    count: int,
    streams: tuple[int, int],
    save: Callable[[Image.Image, Path, np.random.Generator], object],
) -> dict[str, int]:
    """Each kind's pictures of ``count`` digits (``Sources.pick_both``) under ``out/<kind>/<label>/``, kind k
    drawn with the random stream ``[streams[0], streams[1] + k]``; ``save(picture, path_without_suffix, rng)``
    writes one. The number written per kind."""
    written = {}
    for k, (name, make) in enumerate(kinds.items()):
        rng = np.random.default_rng([streams[0], streams[1] + k])
        digits = sources.pick_both(count, rng)
        for digit in digits:
            folder = out / name / str(digit.label)
            folder.mkdir(parents=True, exist_ok=True)
            save(make(digit, rng), folder / f"{digit.source}-{digit.ident}", rng)
        written[name] = len(digits)
    return written


def generate(out: Path, count: int, seed: int, shared: Path = SHARED, command: str = "") -> dict[str, int]:
    """Write every kind's pictures and the negatives under ``out``; the number written per folder."""
    written = write_digit_kinds(out, Sources(shared), KINDS, count, (seed, 0), lambda img, path, _: _save(img, path))
    per_negative = max(1, round(count / 6))
    for k, (name, make) in enumerate(NEGATIVES.items()):
        rng = np.random.default_rng([seed, 100 + k])
        folder = out / "negatives" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_negative):
            _save(make(rng), folder / f"neg-{i:05d}")
        written[f"negatives/{name}"] = per_negative
    (out / "README.txt").write_text(
        README.format(
            seed=seed,
            count=count,
            command=command,
            kinds="\n".join(f"  {n}: {_doc(f)}" for n, f in KINDS.items()),
            negatives=per_negative,
            neg_kinds="\n".join(f"  {n}: {_doc(f)}" for n, f in NEGATIVES.items()),
        ),
        encoding="utf-8",
    )
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.blind", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write (must be empty or new)")
    parser.add_argument("--count", type=int, default=300, help="pictures per kind (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder holding mnist/ and usps/")
    parser.add_argument("--overwrite", action="store_true", help="replace what an earlier run wrote in --out")
    args = parser.parse_args(argv)
    if args.count < 2:
        parser.error("--count must be at least 2")
    if args.out.exists() and any(args.out.iterdir()):
        if not args.overwrite:
            parser.error(f"{args.out} is not empty (pass --overwrite to replace an earlier run's pictures)")
        for name in [*KINDS, "negatives"]:
            shutil.rmtree(args.out / name, ignore_errors=True)
    command = f"python -m tests.bench.blind --out {args.out} --count {args.count} --seed {args.seed}"
    started = time.perf_counter()
    written = generate(args.out, args.count, args.seed, args.shared, command)
    for name, n in written.items():
        print(f"{name:24s} {n}")
    print(f"wrote {sum(written.values())} pictures to {args.out} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
