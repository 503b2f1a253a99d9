"""Scenes the other generators do not draw: a sheet on a desk, a page's edge, a hard shadow, a form's boxes.

``tests/wild.py`` and ``tests/bench/blind.py`` draw paper that fills the picture, ruled or plain. Real photos
and forms also show what lies around the writing: a sticky note or a sheet photographed on a desk, the desk
beyond the page's edge in a corner, the hard shadow of a phone or a hand across the page (straight-edged,
soft-edged over uneven light, or curved), a form's printed box round the digit, or a comb field (a row of
boxes open at the top). Digits are MNIST test digits 5,000-9,999 and real USPS digits (``blind.Sources``).

Run: python -m tests.bench.scenes --out DIR [--count 150] [--seed 0]
Writes DIR/<kind>/<label>/<source>-<index>.jpg and, with nothing written in them, DIR/negatives/<kind>/neg-<n>.jpg
(the layout ``bench_blind`` scores).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tests.bench.blind import SHARED, Digit, Sources, write_digit_kinds

PEN_INKS = [(20, 30, 110), (15, 15, 20), (30, 30, 35)]


def _ink_at(digit: Digit, height: int) -> np.ndarray:
    """The digit's ink (0..1) resized to ``height`` px tall, its aspect kept, strokes kept solid."""
    ink = digit.ink
    width = max(1, round(ink.shape[1] * height / ink.shape[0]))
    resized = Image.fromarray((ink * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(resized, np.float32) / 255 * 1.3, 0, 1)


def _put(rgb: np.ndarray, ink: np.ndarray, top: int, left: int, colour: tuple[int, int, int]) -> None:
    """Lay ``ink`` over ``rgb`` (in place) in ``colour``, its top-left corner at (top, left), cut at the edges."""
    region = rgb[top : top + ink.shape[0], left : left + ink.shape[1]]
    cover = ink[: region.shape[0], : region.shape[1], None]
    region[:] = region * (1 - cover) + np.array(colour, np.float32) * cover


def _finish(rgb: np.ndarray, rng: np.random.Generator, noise: float) -> Image.Image:
    return Image.fromarray(np.clip(rgb + rng.normal(0, noise, rgb.shape), 0, 255).astype(np.uint8))


def _pen(rng: np.random.Generator) -> tuple[int, int, int]:
    return PEN_INKS[int(rng.integers(len(PEN_INKS)))]


def sticky(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A yellow sticky note or a white card on a wooden desk, turned a little, the digit in ballpoint on it."""
    height, width = int(rng.integers(300, 500)), int(rng.integers(300, 500))
    desk = np.zeros((height, width, 3), np.float32) + np.array([120, 85, 55]) * rng.uniform(0.6, 1.1)
    desk += np.sin(np.arange(width) / rng.uniform(3, 9))[None, :, None] * 12  # the wood's grain
    side = int(min(height, width) * rng.uniform(0.55, 0.8))
    middle_y, middle_x = height // 2 + int(rng.integers(-20, 20)), width // 2 + int(rng.integers(-20, 20))
    angle = np.deg2rad(rng.uniform(-12, 12))
    corners = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, y = sx * side / 2, sy * side / 2
        corners.append(
            (middle_x + x * np.cos(angle) - y * np.sin(angle), middle_y + x * np.sin(angle) + y * np.cos(angle))
        )
    note = Image.new("L", (width, height), 0)
    ImageDraw.Draw(note).polygon(corners, fill=255)
    cover = np.asarray(note.filter(ImageFilter.GaussianBlur(1)), np.float32)[..., None] / 255
    colour = np.array([250, 235, 120]) if rng.random() < 0.6 else np.array([245, 245, 240])
    rgb = desk * (1 - cover) + colour * cover
    ink = _ink_at(digit, int(side * rng.uniform(0.4, 0.6)))
    _put(rgb, ink, middle_y - ink.shape[0] // 2, middle_x - ink.shape[1] // 2, _pen(rng))
    return _finish(rgb, rng, 4)


def page_edge(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A page photographed with the dark table beyond its edge, across a corner or a side of the picture."""
    height, width = int(rng.integers(300, 450)), int(rng.integers(300, 450))
    rows, columns = np.mgrid[0:height, 0:width]
    tilt, reach = rng.uniform(-0.5, 0.5), rng.uniform(0.75, 0.92)
    across = [columns / width, rows / height, 1 - columns / width, 1 - rows / height]
    along = [rows / height, columns / width, rows / height, columns / width]
    side = int(rng.integers(4))
    table = np.clip((across[side] - (reach + tilt * (along[side] - 0.5))) * 200, 0, 1)[..., None]
    rgb = np.array([235, 235, 228], np.float32) * (1 - table) + np.array([40, 35, 30], np.float32) * table
    ink = _ink_at(digit, int(min(height, width) * rng.uniform(0.3, 0.5)))
    _put(rgb, ink, int(height * 0.45 - ink.shape[0] / 2), int(width * 0.45 - ink.shape[1] / 2), _pen(rng))
    return _finish(rgb, rng, 4)


def _page_to_shade(digit: Digit, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plain page 250-400 px each way with the digit in pen in its middle (RGB), and its row and column indices."""
    height, width = int(rng.integers(250, 400)), int(rng.integers(250, 400))
    rgb = np.full((height, width, 3), 230, np.float32)
    ink = _ink_at(digit, int(min(height, width) * rng.uniform(0.3, 0.5)))
    _put(rgb, ink, (height - ink.shape[0]) // 2, (width - ink.shape[1]) // 2, _pen(rng))
    rows, columns = np.mgrid[0:height, 0:width]
    return rgb, rows, columns


def hard_shadow(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A hard-edged shadow (a phone's, a hand's) across the page, dimming it to 40-65%; the digit may be in it."""
    rgb, rows, columns = _page_to_shade(digit, rng)
    height, width = rows.shape
    angle, offset = rng.uniform(0, 2 * np.pi), rng.uniform(-0.2, 0.2)
    beyond = np.cos(angle) * (columns / width - 0.5) + np.sin(angle) * (rows / height - 0.5) - offset
    dim = 1 - rng.uniform(0.35, 0.6) * np.clip(beyond * 25 + 0.5, 0, 1)
    return _finish(rgb * dim[..., None], rng, 4)


def soft_shadow(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A shadow with a soft straight edge (its penumbra 8-25% of the picture across) over uneven light: a gradient
    and the lens's vignette; the digit may be in it."""
    rgb, rows, columns = _page_to_shade(digit, rng)
    height, width = rows.shape
    angle, offset = rng.uniform(0, 2 * np.pi), rng.uniform(-0.25, 0.25)
    beyond = np.cos(angle) * (columns / width - 0.5) + np.sin(angle) * (rows / height - 0.5) - offset
    dim = 1 - rng.uniform(0.3, 0.6) * np.clip(beyond / rng.uniform(0.08, 0.25) + 0.5, 0, 1)
    tilt = rng.uniform(0, 2 * np.pi)
    dim *= 1 + rng.uniform(0, 0.15) * (np.cos(tilt) * (columns / width - 0.5) + np.sin(tilt) * (rows / height - 0.5))
    dim *= 1 - rng.uniform(0.05, 0.25) * 2 * ((columns / width - 0.5) ** 2 + (rows / height - 0.5) ** 2)
    return _finish(rgb * dim[..., None], rng, 4)


def curved_shadow(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A hand's shadow: hard-edged like ``hard_shadow``, but its edge an arc (a circle 0.5-1.5 pictures across,
    its centre beyond the picture's edge); the digit may be in it."""
    rgb, rows, columns = _page_to_shade(digit, rng)
    height, width = rows.shape
    side = max(height, width)
    radius = rng.uniform(0.5, 1.5) * side
    angle = rng.uniform(0, 2 * np.pi)
    reach = radius + rng.uniform(-0.3, 0.2) * side  # the centre's distance from the picture's middle
    centre_y, centre_x = height / 2 + reach * np.sin(angle), width / 2 + reach * np.cos(angle)
    inside = radius - np.hypot(rows - centre_y, columns - centre_x)
    dim = 1 - rng.uniform(0.35, 0.6) * np.clip(inside / (side / 25) + 0.5, 0, 1)
    return _finish(rgb * dim[..., None], rng, 4)


def printed_box(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A form's printed box (1-3 px outline) round the digit, short of the picture's edges."""
    height, width = int(rng.integers(180, 300)), int(rng.integers(200, 400))
    page = Image.new("RGB", (width, height), (240, 240, 240))
    box_w, box_h = int(rng.uniform(0.35, 0.6) * width), int(rng.uniform(0.5, 0.8) * height)
    x0 = (width - box_w) // 2 + int(rng.integers(-10, 10))
    y0 = (height - box_h) // 2 + int(rng.integers(-10, 10))
    outline = int(rng.integers(1, 4))
    ImageDraw.Draw(page).rectangle([x0, y0, x0 + box_w, y0 + box_h], outline=(60, 60, 60), width=outline)
    rgb = np.asarray(page, np.float32).copy()
    ink = _ink_at(digit, int(min(box_w, box_h) * rng.uniform(0.6, 0.9)))
    top = y0 + (box_h - ink.shape[0]) // 2 + int(rng.integers(-5, 6))
    _put(rgb, ink, top, x0 + (box_w - ink.shape[1]) // 2 + int(rng.integers(-5, 6)), _pen(rng))
    return _finish(rgb, rng, 3)


def comb(digit: Digit, rng: np.random.Generator) -> Image.Image:
    """A comb field: a baseline with teeth every cell, grey or red, the digit in one cell standing on the line."""
    height, width = int(rng.integers(120, 200)), int(rng.integers(160, 300))
    page = Image.new("RGB", (width, height), (242, 242, 242))
    cell = int(rng.uniform(0.25, 0.4) * width)
    base = int(height * rng.uniform(0.7, 0.85))
    tooth = int(cell * rng.uniform(0.2, 0.5))
    left = (width - cell) // 2
    colour = (80, 80, 80) if rng.random() < 0.5 else (200, 80, 80)
    draw = ImageDraw.Draw(page)
    draw.line([(0, base), (width, base)], fill=colour, width=1)
    for k in range(-3, 4):
        draw.line([(left + k * cell, base - tooth), (left + k * cell, base)], fill=colour, width=1)
    rgb = np.asarray(page, np.float32).copy()
    ink = _ink_at(digit, min(int(cell * rng.uniform(0.8, 1.0)), base - 4))
    top = max(0, base - ink.shape[0] + int(rng.integers(-2, 4)))
    _put(rgb, ink, top, left + (cell - ink.shape[1]) // 2 + int(rng.integers(-4, 5)), _pen(rng))
    return _finish(rgb, rng, 3)


KINDS: dict[str, Callable[[Digit, np.random.Generator], Image.Image]] = {
    "sticky": sticky,
    "page_edge": page_edge,
    "hard_shadow": hard_shadow,
    "printed_box": printed_box,
    "comb": comb,
    "soft_shadow": soft_shadow,
    "curved_shadow": curved_shadow,
}


def _save_jpeg(picture: Image.Image, path_without_suffix: Path, rng: np.random.Generator) -> None:
    """Save ``picture`` as a JPEG of a quality drawn from ``rng`` (75-94), as phones and scanners vary."""
    picture.save(path_without_suffix.with_suffix(".jpg"), quality=int(rng.integers(75, 95)))


def generate(out: Path, count: int, seed: int, shared: Path = SHARED) -> dict[str, int]:
    """Write ``count`` pictures of every kind under ``out`` (half MNIST, half USPS); the number per kind."""
    written = write_digit_kinds(out, Sources(shared), KINDS, count, (seed, 200), _save_jpeg)
    # The same scenes with nothing written in them: whatever is read there is read in the clutter.
    blank = Digit("none", "00000", 0, np.zeros((28, 20), np.float32))
    for number, (name, make) in enumerate(KINDS.items()):
        rng = np.random.default_rng([seed, 300 + number])
        folder = out / "negatives" / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(max(1, count // 3)):
            _save_jpeg(make(blank, rng), folder / f"neg-{index:05d}", rng)
        written[f"negatives/{name}"] = max(1, count // 3)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.scenes", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write (must be empty or new)")
    parser.add_argument("--count", type=int, default=150, help="pictures per kind (default 150)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder holding mnist/ and usps/")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty")
    started = time.perf_counter()
    written = generate(args.out, args.count, args.seed, args.shared)
    for name, count in written.items():
        print(f"{name:12s} {count}")
    print(f"wrote {sum(written.values())} pictures to {args.out} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
