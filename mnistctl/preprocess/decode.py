"""Stage 1, decode: any image file or stdin bytes -> float32 grey levels 0..255, safely.

Every failure -- an empty, truncated, corrupt or unsupported file, or one over ``MAX_PIXELS`` -- is an
``InvalidImageError`` naming the file; nothing from Pillow escapes. ``NoDigitError`` (raised by the later
stages) is the "decodes fine, but shows no digit" case.
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

# JPEGs larger than twice this are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, several
# times faster), never below this: the later stages look at no more than 1024 pixels a side anyway.
_DRAFT_SIDE = 768
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class InvalidImageError(MnistctlError):
    """A file that cannot be turned into a digit image: unreadable, corrupt, unsupported, or too large."""

    default_hint = "use a PNG or JPEG image"


class NoDigitError(InvalidImageError):
    """The image decodes fine but shows nothing that stands out from the background."""

    default_hint = "check that the image shows a digit, dark on light paper or light on dark"


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
