"""Synthetic "photos" of digits for the preprocessing tests: ink on paper, lighting, noise, file formats.

Everything starts from an MNIST-style 28x28 white-on-black digit (``tests.synthetic.make_digits``) or
from strokes drawn with Pillow, so each photo has an exact MNIST-style original to compare against.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tests.synthetic import make_digits

# A handwritten-looking "7" and "2" as polylines in 28x28 coordinates (x, y).
SEVEN = (((7, 5), (21, 5), (17, 13), (12, 23)),)
TWO = (((8, 9), (10, 6), (15, 5), (19, 7), (20, 11), (16, 16), (8, 23), (21, 23)),)


def mnist_digit(label: int, seed: int = 0) -> np.ndarray:
    """One uint8 28x28 white-on-black digit of class ``label`` (not centred: offsets are random)."""
    images, labels = make_digits(20, seed)
    return images[int(np.flatnonzero(labels == label)[0])]


def centred(digit: np.ndarray) -> np.ndarray:
    """``digit`` shifted by whole pixels so the centre of mass of its ink is at (14, 14), as MNIST's are."""
    weights = np.where(digit > 100, digit, 0).astype(np.float64)  # the strokes, not the background noise
    total = weights.sum()
    row = weights.sum(axis=1) @ np.arange(28) / total
    col = weights.sum(axis=0) @ np.arange(28) / total
    return np.roll(digit, (round(14 - row), round(14 - col)), axis=(0, 1))


def enlarge(digit: np.ndarray, scale: float, *, thicken: int = 0) -> np.ndarray:
    """Ink coverage 0..1 of ``digit`` blown up ``scale`` times (bicubic), optionally max-filtered first."""
    image = Image.fromarray(digit)
    if thicken:
        image = image.filter(ImageFilter.MaxFilter(thicken))
    side = round(digit.shape[0] * scale)
    coverage = np.asarray(image.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    return np.clip(coverage, 0.0, 1.0)


def draw(polylines, side: int, width: float) -> np.ndarray:
    """Ink coverage 0..1 of ``polylines`` (28x28 coordinates) drawn on a ``side`` px square, anti-aliased."""
    oversample = max(1, min(4, 4000 // side))  # anti-aliasing, without drawing a 64-megapixel image
    scale = side * oversample / 28
    image = Image.new("L", (side * oversample, side * oversample), 0)
    pen = ImageDraw.Draw(image)
    for line in polylines:
        points = [(x * scale, y * scale) for x, y in line]
        pen.line(points, fill=255, width=max(1, round(width * oversample)), joint="curve")
        radius = width * oversample / 2
        for x, y in (points[0], points[-1]):
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    small = image.resize((side, side), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def place(coverage: np.ndarray, height: int, width: int, top: int, left: int) -> np.ndarray:
    """``coverage`` pasted into an empty ``height`` x ``width`` canvas at (top, left)."""
    canvas = np.zeros((height, width), dtype=np.float32)
    canvas[top : top + coverage.shape[0], left : left + coverage.shape[1]] = coverage
    return canvas


def on_paper(coverage: np.ndarray, paper: float = 228.0, ink: float = 40.0) -> np.ndarray:
    """Grey levels of ink (``ink`` where coverage is 1) on paper (``paper`` where it is 0)."""
    return paper - (paper - ink) * coverage


def lit(image: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Lighting multiplies what the paper and ink reflect."""
    return image * light


def gradient(height: int, width: int, left: float, right: float) -> np.ndarray:
    """Lighting that changes evenly from factor ``left`` at the left edge to ``right`` at the right edge."""
    return np.broadcast_to(np.linspace(left, right, width, dtype=np.float32), (height, width))


def shadow(height: int, width: int, centre: tuple[float, float], radius: float, depth: float) -> np.ndarray:
    """A soft round shadow: light factor ``1 - depth`` at ``centre`` (fractions), fading over ``radius``."""
    rows = np.arange(height, dtype=np.float32)[:, None] / height - centre[0]
    cols = np.arange(width, dtype=np.float32)[None, :] / width - centre[1]
    return 1.0 - depth * np.exp(-(rows * rows + cols * cols) / (2 * radius * radius))


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Sensor noise / paper texture: Gaussian, plus a little blotchy low-frequency texture."""
    rng = np.random.default_rng(seed)
    fine = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    blotches = Image.fromarray(rng.normal(128, 40, image.shape).clip(0, 255).astype(np.uint8))
    blotchy = np.asarray(blotches.filter(ImageFilter.GaussianBlur(3)), dtype=np.float32) - 128.0
    return image + fine + blotchy * (sigma / 20.0)


def as_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    """The bytes of ``image`` saved in ``image_format`` (what a file or stdin would hold)."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson correlation of two images' pixels."""
    return float(np.corrcoef(np.ravel(first), np.ravel(second))[0, 1])


def huge_png(width: int, height: int, rows_per_block: int = 1000) -> bytes:
    """A valid black 1-bit PNG of ``width`` x ``height`` pixels, a few hundred KB, built without allocating it.

    The rows are deflated one block of ``rows_per_block`` at a time with a full flush in between, which
    resets the compressor, so every block after the first compresses to the same bytes and is repeated.
    """
    assert height % rows_per_block == 0
    block = bytes(1 + (width + 7) // 8) * rows_per_block  # filter byte 0, then packed zero bits
    blocks = height // rows_per_block
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-4]  # the last (empty) block; its checksum covers only two blocks
    checksum = 1
    for _ in range(blocks):
        checksum = zlib.adler32(block, checksum)
    data = first + repeated * (blocks - 1) + end + struct.pack(">I", checksum)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _ring(cx: float, cy: float, rx: float, ry: float, steps: int = 16) -> tuple:
    angles = np.linspace(0, 2 * np.pi, steps + 1)
    return tuple((cx + rx * np.sin(a), cy - ry * np.cos(a)) for a in angles)


# One plain handwritten-looking shape per digit, as polylines in 28x28 coordinates (x, y): for tests that
# need every class read correctly without the real MNIST.
HANDWRITTEN = {
    0: (_ring(14, 14, 6, 9.5),),
    1: (((13, 6), (16, 4), (14, 24)),),
    2: TWO[0:1],
    3: (((8, 6), (13, 4), (18, 6), (18, 10), (13, 13)), ((13, 13), (19, 16), (19, 21), (14, 24), (8, 22))),
    4: (((11, 4), (8, 16), (21, 16)), ((17, 7), (17, 24))),
    5: (((19, 5), (10, 5), (9, 13), (15, 12), (19, 15), (19, 20), (15, 24), (8, 22)),),
    6: (((18, 4), (12, 8), (9, 15), (10, 21), (14, 24), (18, 21), (18, 16), (14, 14), (10, 17)),),
    7: SEVEN[0:1],
    8: (_ring(14, 8.5, 4.5, 4.5), _ring(14, 18.5, 5.5, 5.5)),
    9: (_ring(14, 9, 4.5, 4.5), ((18.5, 9), (17, 24))),
}


def handwritten_digit(label: int, width: float = 2.2) -> np.ndarray:
    """An MNIST-style uint8 28x28 white-on-black digit drawn from ``HANDWRITTEN``."""
    return as_uint8(draw(HANDWRITTEN[label], side=28, width=width) * 255)


def two_stroke_seven(gap: float) -> np.ndarray:
    """A thin pen's 7 on a 110 px page, its bar drawn apart from its stem, ``gap`` (28x28 units) at the corner:
    read twice, without the bar (a sure "1") and with it (a sure "7"), and flagged."""
    bar = ((8, 5), (19, 5))
    stem = ((19 + 0.3 * gap, 5 + gap), (12 + 0.3 * gap, 24))
    return as_uint8(noisy(on_paper(draw((bar, stem), side=110, width=0.55)), sigma=3, seed=1)).astype(np.float32)


def squarish_zero(height: int, width: int, stroke: int, corner: int, inner_corner: int, margin: int = 0) -> np.ndarray:
    """A "0" drawn as a rounded rectangle (grey levels: ink 25 on paper 230), ``stroke`` px thick, its outer
    corners ``corner`` px round and its counter's ``inner_corner``, ``margin`` px of paper round it."""
    rows, columns = np.mgrid[0:height, 0:width]

    def inside(top: int, bottom: int, left: int, right: int, rounding: int) -> np.ndarray:
        near_row = np.clip(rows, top + rounding, bottom - rounding)
        near_column = np.clip(columns, left + rounding, right - rounding)
        return (rows - near_row) ** 2 + (columns - near_column) ** 2 <= rounding**2

    bottom, right = height - 1 - margin, width - 1 - margin
    outer = inside(margin, bottom, margin, right, corner)
    inner = inside(margin + stroke, bottom - stroke, margin + stroke, right - stroke, inner_corner)
    return np.where(outer & ~inner, 25.0, 230.0)
