"""Stage 1, decode: any image file or stdin bytes -> float32 grey levels 0..255, safely.

Every failure -- an empty, truncated, corrupt or unsupported file, or one over a limit (``MAX_BYTES``,
``MAX_PIXELS``, ``MAX_SIDE_RATIO``, ``DECODE_BUDGET``) -- is an ``InvalidImageError`` naming the file; nothing
from Pillow escapes.
Large images come out reduced (see ``load_gray``), so that one image costs a bounded amount of memory.
``NoDigitError`` (raised by the later stages) is the "decodes fine, but shows no digit" case.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from mnistctl.errors import MnistctlError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

MAX_PIXELS = 40_000_000
"""Larger images are refused before their pixels are decoded (decompression-bomb guard)."""

MAX_BYTES = 64_000_000
"""Larger inputs -- a file, or stdin -- are refused by their size, unread (stdin: after ``MAX_BYTES + 1`` bytes).

A digit needs a few KB; a 40-megapixel phone photo is 10-25 MB as JPEG, a 40-megapixel grey scan 40 MB even
uncompressed. Only uncompressed colour near the pixel limit is refused by this rather than by ``MAX_PIXELS``.
"""

MAX_SIDE_RATIO = 100
"""An image with one side more than this many times the other is refused from its header: no digit fits such a
strip. Reduced to the 1024 px a side the later stages look at (``paper.WORK_SIDE``), or as it is when smaller,
it is under 11 px across. (Its pixels would cost more too: Pillow keeps a pointer, 8 bytes, a row.)
"""

DECODE_BUDGET = 200_000_000
"""Decoding one image may hold this much memory at once (bytes): its pixels, what its decoder keeps beside
them, and its encoded bytes when they are in memory (stdin). With the rest of ``predict`` (about 55 MB) a
process stays under 300 MB. Pillow stores at most 4 bytes a pixel, so this admits every image up to
``MAX_PIXELS``, except where a decoder needs much more (see ``_decode_cost``): a WebP over 12 megapixels, a
progressive JPEG with unsubsampled colour (4:4:4, CMYK) over 25-33 megapixels, a TIFF stored in one huge strip.
"""

# JPEGs larger than twice this are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, several
# times faster), never below this: the later stages look at no more than 1024 pixels a side anyway.
_DRAFT_SIDE = 768
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
# Reading stdin a chunk at a time, so that an endless stream stops at the limit.
_CHUNK = 1 << 20
# Large images are converted to grey a tile of about this many pixels at a time, each reduced at once:
# besides the decoded image, no full-size copy (a float32 one is 160 MB at the pixel limit) ever exists.
_BAND_PIXELS = 1 << 20
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_WIDE = ("I", "F", "I;16S")
_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")
# On transparency, ink drawn this much of it darker than mid-grey is dark ink, whatever light marks come with it
# (a thin pen's "1" beside a form's light grid lines is a few percent of the opaque pixels)...
_DARK_INK_SHARE = 0.02
# ...counting only dark pixels more than this many pixels from any light one: a light digit's drop shadow or
# outline hugs it, and on white it would be read alone.
_SHADOW_REACH = 3
# EXIF orientation -> what turns the stored pixels upright (the table of Pillow's ImageOps.exif_transpose).
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda pixels: pixels[:, ::-1],  # FLIP_LEFT_RIGHT
    3: lambda pixels: pixels[::-1, ::-1],  # ROTATE_180
    4: lambda pixels: pixels[::-1],  # FLIP_TOP_BOTTOM
    5: lambda pixels: pixels.T,  # TRANSPOSE
    6: lambda pixels: np.rot90(pixels, -1),  # ROTATE_270 (counter-clockwise)
    7: lambda pixels: pixels[::-1, ::-1].T,  # TRANSVERSE
    8: lambda pixels: np.rot90(pixels),  # ROTATE_90
}


class InvalidImageError(MnistctlError):
    """A file that cannot be turned into a digit image: unreadable, corrupt, unsupported, or too large."""

    default_hint = "use a PNG or JPEG image"


class NoDigitError(InvalidImageError):
    """The image decodes fine but shows nothing that stands out from the background."""

    default_hint = "check that the image shows a digit, dark on light paper or light on dark"


def read_capped(stream: BinaryIO, name: str) -> bytes:
    """All of ``stream`` (stdin), read a chunk at a time; over ``MAX_BYTES`` it stops and raises ``InvalidImageError``.

    At most ``MAX_BYTES + 1`` bytes are read, so an endless stream (``< /dev/zero``) costs no more than a file.
    """
    chunks: list[bytes] = []
    total = 0
    while total <= MAX_BYTES:
        chunk = stream.read(min(_CHUNK, MAX_BYTES + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise _too_many_bytes(name)


# The darkest pixels, this share of the image, are taken for the ink...
_INK_PERCENTILE = 0.5
# ...and colour drops out when the ink keeps this share of its contrast in the brightest channel...
_DROPOUT_KEEPS = 0.8
# ...and there is coloured print: marks (pixels darker than the paper by this share of the ink's contrast)
# more colourful than the paper by this much (brightest channel less darkest), on this share of the picture.
# (300 phone photos of notebooks: 0.023 in the median; register scans on tinted paper 0 but for 1 in 40.)
_MARK_DEPTH = 0.1
_COLOURFUL = 25
_COLOURED_SHARE = 0.005
_DROPOUT_SAMPLE = 262_144
# Pixels darker than the paper by this share of the ink's contrast are ink (or shadow)...
_INK_DEPTH = 0.7
# ...and when this share of them is colourful, the ink is a coloured pen's: no dropout (a pencil crossing
# blue squares: 0-6%, where its edges blend with them; a blue or red pen: nearly all).
_COLOURED_INK = 0.3


def load_gray(source: Path | bytes, name: str) -> np.ndarray:
    """Decode an image into float32 grey levels 0..255 (H x W), upright as its EXIF orientation says.

    Animated images give their first frame. 16-bit images are scaled by full scale (65535 -> 255), not
    by their own range, so a dim image stays dim and ``--raw`` sees what was saved; 32-bit and float
    images, see ``_wide_to_8bit``. Transparent pixels are composited onto the backdrop described in
    ``_composite``. JPEGs over 1536 px are decoded at reduced scale, no smaller than 768 px (see
    ``_DRAFT_SIDE``); other images of 2048 px or more come out reduced by a whole factor, to no less than
    ``paper.WORK_SIDE`` (1024) a side, the most the later stages look at. Every failure -- an empty,
    truncated, corrupt or unsupported file, one over ``MAX_BYTES`` or ``MAX_PIXELS``, a strip (one side over
    ``MAX_SIDE_RATIO`` times the other), or one whose decoder would need more than ``DECODE_BUDGET`` --
    raises ``InvalidImageError`` naming ``name``; nothing from Pillow escapes.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    # Pillow warns above this and raises above twice this; both are turned into our error below.
    # (This is process-wide, and stricter than Pillow's default of ~89 megapixels.)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    size, opened, held = _opened(source, name)
    if size == 0:
        raise InvalidImageError(f"{name} is empty (0 bytes)", hint="check that the file was written completely")
    if size > MAX_BYTES:
        raise _too_many_bytes(name, size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(opened) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise _too_large(name, f"{width}x{height} pixels")
                if width == 0 or height == 0:
                    raise InvalidImageError(f"{name} has no pixels ({width}x{height})")
                if max(width, height) > MAX_SIDE_RATIO * min(width, height):
                    raise InvalidImageError(
                        f"{name} is {width:,}x{height:,} pixels: no digit fits such a strip",
                        hint=f"crop the digit out (one side may be at most {MAX_SIDE_RATIO} times the other)",
                    )
                if image.format in ("JPEG", "MPO") and max(width, height) > 2 * _DRAFT_SIDE:
                    ratio = _DRAFT_SIDE / max(width, height)
                    # (In colour where it is colour: light coloured print drops out, see ``_dropout``.)
                    image.draft(
                        "RGB" if image.mode == "RGB" else "L", (math.ceil(width * ratio), math.ceil(height * ratio))
                    )
                cost = _decode_cost(image, width, height, size) + held
                if cost > DECODE_BUDGET:
                    raise InvalidImageError(
                        f"{name} ({width}x{height} {image.format}) would need about {cost / 1e6:,.0f} MB to decode,"
                        f" over the {DECODE_BUDGET // 1_000_000} MB limit",
                        hint="scale it down, or save it as PNG or baseline JPEG",
                    )
                image.load()
                return _upright(_gray_pixels(image, name), _orientation(image))
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


def _opened(source: Path | bytes, name: str) -> tuple[int, Path | io.BytesIO, int]:
    """The input's size in bytes, what to hand ``Image.open``, and how many of its bytes are in memory."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source), io.BytesIO(source), len(source)
    try:
        status = Path(source).stat()
    except OSError as exc:
        raise InvalidImageError(f"cannot read {name}: {exc.strerror or exc}", hint="check the path") from None
    if not stat.S_ISREG(status.st_mode):  # a pipe or a device would be read without end
        raise InvalidImageError(f"{name} is not a regular file", hint="save the image to a file first")
    return status.st_size, Path(source), 0


def _too_many_bytes(name: str, size: int | None = None) -> InvalidImageError:
    measured = f" ({size / 1e6:,.0f} MB)" if size is not None else ""
    return InvalidImageError(
        f"{name} is over the {MAX_BYTES // 1_000_000} MB limit{measured}",
        hint="scale it down or save it as JPEG (a digit needs far fewer bytes)",
    )


def _too_large(name: str, size: str) -> InvalidImageError:
    return InvalidImageError(
        f"{name} is {size}, over the {MAX_PIXELS:,}-pixel limit", hint="scale it down (a digit needs far fewer)"
    )


def _corrupt(name: str, exc: BaseException) -> InvalidImageError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return InvalidImageError(f"{name} is truncated or corrupt ({reason})", hint="export or download the image again")


def _decode_cost(image: PILImage, width: int, height: int, size: int) -> int:
    """Bytes that decoding ``image`` (``width`` x ``height`` as stored, ``size`` bytes encoded) holds at once.

    Its pixels as Pillow stores them (after any JPEG draft) and a pointer (8 bytes) to each row, plus what its
    decoder keeps beside them: for every format a row and the one before it (at most 8 bytes a pixel), for some
    much more. Errs high.
    """
    stored_width, stored_height = image.size
    pixels = stored_width * stored_height * (1 if image.mode in ("1", "L", "P") else 4)
    pixels += 8 * stored_height + 16 * stored_width
    if image.format == "WEBP":
        # Pillow's WebP decoder holds the whole file, two full RGBA canvases and a copy of the frame.
        return pixels + size + 12 * width * height
    if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
        # A progressive JPEG is decoded from full-size DCT coefficients (2 bytes each, every component at its
        # own sampling), whatever the draft scale.
        layers = getattr(image, "layer", None) or [(0, 1, 1, 0)] * len(image.getbands())
        most = max(h for _, h, _, _ in layers) * max(v for _, _, v, _ in layers)
        return pixels + sum(2 * width * height * h * v // most for _, h, v, _ in layers)
    if image.format == "TIFF":
        # libtiff decodes a strip (or a tile) at a time into a buffer of its own; a strip may be the whole image.
        tags = image.tag_v2
        bits = tags.get(258) or (1,)
        samples = int(tags.get(277) or len(bits))
        per_pixel = sum(bits) if len(bits) == samples else bits[0] * samples
        block = (int(tags[322]), int(tags[323])) if 322 in tags and 323 in tags else (width, tags.get(278, height))
        return pixels + block[0] * min(int(block[1]), height) * per_pixel // 8
    return pixels


def _orientation(image: PILImage) -> int:
    """The EXIF orientation (1 upright); a malformed EXIF block counts as none: the pixels are used as stored."""
    with contextlib.suppress(Exception):
        return int(image.getexif().get(0x0112, 1))
    return 1


def _upright(gray: np.ndarray, orientation: int) -> np.ndarray:
    # Turning the grey result equals turning the image first (every step before is per pixel or per block,
    # and the composite's statistics do not depend on the order), and it moves 1 byte a pixel, not 4.
    turn = _UPRIGHT.get(orientation)
    return np.ascontiguousarray(turn(gray)) if turn else gray


def _gray_pixels(image: PILImage, name: str) -> np.ndarray:
    """Grey levels of a loaded image, as float32, reduced by a whole factor when it has 2048 px or more a side."""
    from mnistctl.preprocess.paper import WORK_SIDE  # here: paper imports this module

    factor = max(1, max(image.size) // WORK_SIDE)
    mode = image.mode
    if mode in _SIXTEEN_BIT:
        return _reduced(image, factor, lambda tile: np.asarray(tile).astype(np.float32) / 257.0)
    if mode in _WIDE:
        return _wide_to_8bit(image, factor)
    if mode in _ALPHA or "transparency" in image.info:
        return _composite(image, factor)
    if mode == "RGB":
        return _dropout(*_reduced_planes(image, factor, _luma_and_channels))
    try:
        return _reduced(image, factor, lambda tile: np.asarray(tile.convert("L"), dtype=np.float32))
    except ValueError:  # e.g. LAB, which Pillow converts only through a colour profile
        raise InvalidImageError(
            f"{name} uses the {mode} colour mode, which cannot be converted to grey",
            hint="save it as RGB or greyscale",
        ) from None


def _tiles(image: PILImage, factor: int) -> Iterator[list[PILImage]]:
    """The image in rows of tiles of about ``_BAND_PIXELS`` each, their sides multiples of ``factor``.

    A tile is as wide as the image (a horizontal band) unless ``factor`` rows of it are over ``_BAND_PIXELS``:
    a wide strip, whose bands would otherwise be several times that (63,200x632 px: 61 rows, 3.9 megapixels).
    """
    width, height = image.size
    columns = width if width * factor <= _BAND_PIXELS else factor * max(1, _BAND_PIXELS // (factor * factor))
    rows = factor * max(1, _BAND_PIXELS // (columns * factor))
    if rows >= height and columns >= width:
        yield [image]
        return
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        yield [image.crop((left, top, min(width, left + columns), bottom)) for left in range(0, width, columns)]


def _shrink(values: np.ndarray, factor: int) -> np.ndarray:
    """Each ``factor`` x ``factor`` block averaged (blocks cut by the edge, over the pixels they have)."""
    if factor == 1:
        return values
    from PIL import Image

    return np.asarray(Image.fromarray(values).reduce(factor))


def _reduced(image: PILImage, factor: int, grey: Callable[[PILImage], np.ndarray]) -> np.ndarray:
    """``grey`` (a tile -> float32 grey levels) over the whole image, tile by tile, reduced by ``factor``."""
    return _reduced_planes(image, factor, lambda tile: (grey(tile),))[0]


def _reduced_planes(
    image: PILImage, factor: int, planes: Callable[[PILImage], tuple[np.ndarray, ...]]
) -> list[np.ndarray]:
    """``planes`` (a tile -> float32 arrays of its size) over the whole image, tile by tile, each reduced by
    ``factor``; the reduced tiles of each plane are joined into one array."""
    grid = [[[_shrink(values, factor) for values in planes(tile)] for tile in row] for row in _tiles(image, factor)]
    count = len(grid[0][0])
    return [_joined([_joined([tile[plane] for tile in row], axis=1) for row in grid]) for plane in range(count)]


def _joined(parts: list[np.ndarray], axis: int = 0) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)


def _wide_to_8bit(image: PILImage, factor: int) -> np.ndarray:
    """32-bit integer or float pixels, by their range: 0..1 is a fraction of white, 0..255 is kept,
    0..65535 is 16-bit full scale; anything else (negative values, say) is stretched to 0..255."""
    low, high = math.inf, -math.inf

    def cleaned(tile: PILImage) -> np.ndarray:
        nonlocal low, high
        values = np.nan_to_num(np.asarray(tile).astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = min(low, float(values.min())), max(high, float(values.max()))
        return values

    # The mapping is linear, so applying it after reducing gives what applying it before would.
    values = _reduced(image, factor, cleaned)
    if low >= 0 and high <= 1:
        return values * np.float32(255.0)
    if low >= 0 and high <= 255:
        return values
    if low >= 0 and high <= 65535:
        return values / 257.0
    return (values - low) * np.float32(255.0 / (high - low))


def _composite(image: PILImage, factor: int) -> np.ndarray:
    """Flatten transparency onto the backdrop a digit would be drawn on.

    When the opaque pixels are a minority they are the ink: they go onto the colour that contrasts with
    them (white behind dark ink, as a viewer shows it; black behind light ink, as a dark theme does), so
    a white-on-transparent digit works as well as a black one. Where some of them are dark and others
    light (a blue pen beside a form's light grid lines), white: black would hide the dark pen, while the
    light lines stay visible on white; but dark pixels that hug light ones are a light digit's drop shadow
    or outline, not ink of their own (on white, the shadow would be read alone). When they are the majority
    they are a picture (paper with transparent margins): the transparent parts take the picture's typical
    tone.

    The statistics are gathered at full size, tile by tile; the composite, tone x alpha + backdrop x
    (1 - alpha), is linear in (tone x alpha, alpha), so it is computed from those two reduced.
    """
    from mnistctl.preprocess.paper import grown  # here: paper imports this module

    histogram = np.zeros(256, np.int64)  # tones of the pixels more opaque than not
    sums = np.zeros(2)  # alpha, tone x alpha
    apart = np.zeros(1, np.int64)  # dark opaque pixels clear of light ones: ink, not a shadow or an outline

    def premultiplied(tile: PILImage) -> tuple[np.ndarray, np.ndarray]:
        rgba = tile.convert("RGBA")
        tone = np.asarray(rgba.convert("L"))
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        ink = tone.astype(np.float32) * alpha
        opaque = alpha > 0.5
        histogram[:] += np.bincount(tone[opaque], minlength=256)
        sums[:] += alpha.sum(dtype=np.float64), ink.sum(dtype=np.float64)
        apart[:] += int((opaque & (tone < 128) & ~grown(opaque & (tone >= 128), _SHADOW_REACH)).sum())
        return ink, alpha

    ink, alpha = _reduced_planes(image, factor, premultiplied)
    coverage = sums[0] / (image.size[0] * image.size[1])
    if coverage >= 1.0:
        return ink  # the tone itself: alpha is 1 everywhere
    if coverage == 0.0:
        return np.full_like(ink, 255.0)  # nothing visible: blank, to_mnist says so
    if coverage < 0.5:
        dark_share = int(apart[0]) / max(int(histogram.sum()), 1)
        backdrop = 0.0 if sums[1] / sums[0] > 127.5 and dark_share < _DARK_INK_SHARE else 255.0
    else:
        backdrop = _median(histogram) if histogram.any() else 255.0
    return ink + np.float32(backdrop) * (1.0 - alpha)


def _median(histogram: np.ndarray) -> float:
    """The median of the values a histogram of whole numbers counts (the mean of the middle two, as numpy's)."""
    cdf = histogram.cumsum()
    count = int(cdf[-1])
    lower, upper = cdf.searchsorted([(count - 1) // 2, count // 2], side="right")
    return (int(lower) + int(upper)) / 2


def _luma_and_channels(tile: PILImage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A colour tile's grey levels (Pillow's luma), and its brightest and darkest channel per pixel."""
    red, green, blue = (np.asarray(channel) for channel in tile.split())
    # (Channel by channel: numpy's max along the last axis of an RGB array is 40 times slower.)
    brightest = np.maximum(np.maximum(red, green), blue)
    darkest = np.minimum(np.minimum(red, green), blue)
    return np.asarray(tile.convert("L"), dtype=np.float32), brightest.astype(np.float32), darkest.astype(np.float32)


def _dropout(luma: np.ndarray, brightest: np.ndarray, darkest: np.ndarray) -> np.ndarray:
    """``brightest`` where there is coloured print to drop out and the ink stays: marks more colourful than the
    paper (a notebook's blue squares, a red margin: bright in some channel, so as light as the paper in the
    brightest) on at least ``_COLOURED_SHARE`` of the picture, and ink that keeps ``_DROPOUT_KEEPS`` of its
    contrast in the brightest channel and is not colourful (black, grey pencil: dark in every channel).
    Otherwise ``luma``: a coloured pen (red, blue) is bright in its own channel and would drop out with the
    print, and a picture without coloured print is left as it was."""
    # Measured on every pixel up to ``_DROPOUT_SAMPLE`` of them, beyond that on as many drawn at random (a
    # photo's tones need no more; every n-th row and column could miss a grid whose period is a multiple of n).
    if luma.size > _DROPOUT_SAMPLE:
        chosen = np.random.default_rng(0).integers(0, luma.size, _DROPOUT_SAMPLE)
        luma_sample, brightest_sample, darkest_sample = (plane.ravel()[chosen] for plane in (luma, brightest, darkest))
    else:
        luma_sample, brightest_sample, darkest_sample = luma, brightest, darkest
    paper, ink = np.percentile(luma_sample, [50, _INK_PERCENTILE])
    contrast = float(paper - ink)
    bright_paper, bright_ink = np.percentile(brightest_sample, [50, _INK_PERCENTILE])
    if contrast <= 0 or bright_paper - bright_ink < _DROPOUT_KEEPS * contrast:
        return luma
    colour = brightest_sample - darkest_sample
    colourful = colour > np.median(colour) + _COLOURFUL
    coloured = colourful & (luma_sample < paper - _MARK_DEPTH * contrast)
    if float(coloured.mean()) < _COLOURED_SHARE:
        return luma
    # A coloured pen's strokes are among the darkest pixels, and colourful: a navy marker's core is dark in every
    # channel, but its edges are bright in the blue one, and beside a dark shadow they would drop out.
    ink_pixels = luma_sample < paper - _INK_DEPTH * contrast
    return luma if float(colourful[ink_pixels].mean()) >= _COLOURED_INK else brightest
