"""What one input may cost ``mnistctl predict`` (and ``evaluate --data``): the bytes it reads, the memory it uses.

A bad or oversized input is one error row: the other files on the command line are still answered. Peak memory
is measured on the real entry point, as the kernel reports it for the finished process (max RSS).
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from mnistctl.preprocess import decode
from mnistctl.preprocess.decode import MAX_BYTES, InvalidImageError, load_gray, read_capped
from tests.conftest import REPO, measured, run_cli
from tests.photos import SEVEN, as_uint8, draw, on_paper

LIMIT = f"over the {MAX_BYTES // 1_000_000} MB limit"
# The whole predict process, LiteRT and the model included, for any one image up to the pixel limit.
PEAK_RSS_LIMIT = 300_000_000
BIG_SIDE = 6300  # 39.7 megapixels: just under MAX_PIXELS


def good_png(path: Path) -> Path:
    """A 7 in dark ink on light paper, 200 px: what a user would crop from a photo."""
    Image.fromarray(as_uint8(on_paper(draw(SEVEN, side=200, width=2.4)))).save(path)
    return path


def predict_rows(result: subprocess.CompletedProcess) -> list[dict]:
    assert "Traceback" not in result.stderr.decode(), result.stderr.decode()[-2000:]
    return json.loads(result.stdout)["results"]


# --- bytes: stdin and files are capped at MAX_BYTES -----------------------------------------------------------


def test_endless_stdin_is_one_error_row_and_the_other_files_are_answered(tmp_path):
    good = good_png(tmp_path / "good.png")
    executable = Path(sys.executable).with_name("mnistctl")
    started = time.perf_counter()
    with open("/dev/zero", "rb") as zeros:
        result = subprocess.run(
            [str(executable), "predict", str(good), "-", "--json"],
            stdin=zeros,
            capture_output=True,
            timeout=60,
            cwd=REPO,
        )
    assert time.perf_counter() - started < 30
    assert result.returncode == 1
    rows = predict_rows(result)
    assert rows[0]["file"] == str(good) and rows[0]["digit"] == 7
    assert rows[1] == {"file": "-", "error": rows[1]["error"]}
    assert rows[1]["error"].startswith(f"- is {LIMIT}") and "\n" not in rows[1]["error"]


def test_file_over_the_byte_limit_is_refused_by_its_size_unread(tmp_path):
    good = good_png(tmp_path / "good.png")
    # A valid PNG followed by 2 GB of (sparse) padding: Pillow would stop reading at its end and decode it.
    padded = tmp_path / "padded.png"
    with open(padded, "wb") as file:
        file.write(good.read_bytes())
        file.truncate(2_000_000_000)
    started = time.perf_counter()
    result = run_cli("predict", str(good), str(padded), "--json")
    assert time.perf_counter() - started < 30
    assert result.returncode == 1
    rows = predict_rows(result)
    assert rows[0]["digit"] == 7
    assert rows[1]["error"].startswith(f"{padded} is {LIMIT} (2,000 MB)")


def test_read_capped_stops_one_byte_past_the_limit(monkeypatch):
    monkeypatch.setattr(decode, "MAX_BYTES", 1000)
    assert read_capped(io.BytesIO(b"x" * 1000), "-") == b"x" * 1000

    class Endless(io.RawIOBase):
        """A stream that never ends, counting what was read from it."""

        read_total = 0

        def readinto(self, buffer) -> int:
            buffer[:] = bytes(len(buffer))
            self.read_total += len(buffer)
            return len(buffer)

    endless = Endless()
    with pytest.raises(InvalidImageError, match=r"^- is over the 0 MB limit"):
        read_capped(endless, "-")
    assert endless.read_total == 1001


def test_bytes_over_the_limit_are_refused_before_decoding(monkeypatch):
    png = io.BytesIO()
    Image.new("L", (8, 8)).save(png, "PNG")
    monkeypatch.setattr(decode, "MAX_BYTES", len(png.getvalue()) - 1)
    with pytest.raises(InvalidImageError, match=r"^x\.png is over the 0 MB limit"):
        load_gray(png.getvalue(), "x.png")


def test_stdin_from_a_terminal_is_an_error_row_not_a_hang(tmp_path):
    import pty

    good = good_png(tmp_path / "good.png")
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("mnistctl")), "predict", str(good), "-", "--json"],
            stdin=follower,
            capture_output=True,
            timeout=60,
            cwd=REPO,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 1
    rows = predict_rows(result)
    assert rows[0]["digit"] == 7
    assert "stdin is a terminal" in rows[1]["error"] and "\n" not in rows[1]["error"]


def test_evaluate_folder_skips_a_file_over_the_byte_limit(tmp_path):
    for label in ("1", "7"):
        (tmp_path / label).mkdir()
    good_png(tmp_path / "7" / "a.png")
    good_png(tmp_path / "7" / "b.png")
    with open(tmp_path / "1" / "huge.png", "wb") as file:
        file.write((tmp_path / "7" / "a.png").read_bytes())
        file.truncate(2_000_000_000)
    result = run_cli("evaluate", "--data", str(tmp_path), "--model", "builtin", "--json")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout)
    assert report["images"] == 2
    assert [entry["file"] for entry in report["skipped"]] == ["1/huge.png"]
    assert LIMIT in report["skipped"][0]["error"]


# --- memory: a big image is reduced while it is converted to grey ---------------------------------------------


def seven(mode: str, paper: float, ink: float, side: int = BIG_SIDE) -> Image.Image:
    """A 7 drawn with a thick pen on a ``side`` px canvas of ``mode`` (cheap: no full-size float arrays)."""
    image = Image.new(mode, (side, side), paper)
    scale = side / 28
    points = [(x * scale, y * scale) for x, y in SEVEN[0]]
    ImageDraw.Draw(image).line(points, fill=ink, width=round(2.4 * scale), joint="curve")
    return image


def photo_of_seven(side: int = BIG_SIDE) -> Image.Image:
    """A 7 on paper lit unevenly from the left: grey levels 200..245 across, ink at 40."""
    light = Image.linear_gradient("L").rotate(90).resize((side, side))
    paper = light.point(lambda value: round(245 - value * 45 / 255))
    scale = side / 28
    ImageDraw.Draw(paper).line(
        [(x * scale, y * scale) for x, y in SEVEN[0]], fill=40, width=round(2.4 * scale), joint="curve"
    )
    return paper


def _transparent(path: Path) -> None:
    ink = Image.new("L", (BIG_SIDE, BIG_SIDE), 20)
    Image.merge("RGBA", (ink, ink, ink, seven("L", 0, 255))).save(path, compress_level=1)


def _rgb(path: Path) -> None:
    photo_of_seven().convert("RGB").save(path, compress_level=1)


def _bilevel(path: Path) -> None:
    photo_of_seven().convert("1", dither=Image.Dither.NONE).save(path, compress_level=1)


def _palette(path: Path) -> None:
    photo_of_seven().convert("P").save(path, compress_level=1)


def _sixteen_bit(path: Path) -> None:
    seven("I;16", 228 * 257, 40 * 257).save(path, compress_level=1)


def _thirty_two_bit_tiff(path: Path) -> None:
    seven("I", 228 * 257, 40 * 257).save(path, compression="tiff_deflate")


def _progressive_jpeg(path: Path) -> None:
    photo_of_seven().convert("RGB").save(path, quality=85, progressive=True)


def _progressive_cmyk_jpeg(path: Path) -> None:
    photo_of_seven().convert("CMYK").save(path, quality=85, progressive=True)


def _one_strip_tiff(path: Path) -> None:
    photo_of_seven().convert("RGB").save(path, compression="tiff_deflate", strip_size=2**31)


def blank_png(width: int, height: int, mode: str) -> bytes:
    """A valid all-zero 8-bit ``mode`` ("L": black; "RGBA": clear) PNG, ~1/1000 of its size, built without
    allocating it.

    Each row is a filter byte of 0 (none) and zero pixels, so the image data is one run of zero bytes: it is
    deflated a 1 MB block at a time with a full flush in between, which resets the compressor, so every block
    after the first compresses to the same bytes and is repeated.
    """
    colour_type, channels = {"L": (0, 1), "RGBA": (6, 4)}[mode]
    size = (1 + width * channels) * height
    block = bytes(min(size, 1 << 20))
    blocks, rest = divmod(size, len(block))
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = (compressor.compress(bytes(rest)) + compressor.flush())[:-4]  # its checksum covers what it saw
    checksum = (size % 65521) << 16 | 1  # Adler-32 of ``size`` zero bytes: A stays 1, B adds 1 a byte
    data = first + repeated * (blocks - 1) + end + struct.pack(">I", checksum)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _blank(width: int, height: int, mode: str):
    def save(path: Path) -> None:
        path.write_bytes(blank_png(width, height, mode))

    return save


def _webp(side: int):
    def save(path: Path) -> None:
        seven("RGBA", (228, 228, 228, 255), (40, 40, 40, 255), side).save(path, lossless=True, method=0)

    return save


# (file name, how to write it, what predict answers: a digit, or a fragment of the error row)
BIG_IMAGES = {
    "rgba-transparent": ("big.png", _transparent, 7),
    "rgb-photo": ("big.png", _rgb, 7),
    "bilevel": ("big.png", _bilevel, 7),
    "palette": ("big.png", _palette, 7),
    "16-bit": ("big.png", _sixteen_bit, 7),
    "32-bit-tiff": ("big.tif", _thirty_two_bit_tiff, 7),
    "progressive-jpeg": ("big.jpg", _progressive_jpeg, 7),
    # Their decoders need far more memory than the pixels (see decode._decode_cost): refused by that.
    "progressive-cmyk-jpeg": ("big.jpg", _progressive_cmyk_jpeg, "MB to decode"),
    "webp": ("big.webp", _webp(BIG_SIDE), "MB to decode"),
    "tiff-in-one-strip": ("big.tif", _one_strip_tiff, "MB to decode"),
    "webp-9-megapixels": ("big.webp", _webp(3000), 7),
    # Strips at the pixel limit: a 1-row image is one band, and Pillow keeps a pointer (8 bytes) a row.
    # Refused from the header (before: 893, 580, 412 and 440 MB).
    "strip-40000000x1-rgba": ("strip.png", _blank(40_000_000, 1, "RGBA"), "no digit fits such a strip"),
    "strip-1x40000000-rgba": ("strip.png", _blank(1, 40_000_000, "RGBA"), "no digit fits such a strip"),
    "strip-40000000x1-grey": ("strip.png", _blank(40_000_000, 1, "L"), "no digit fits such a strip"),
    "strip-1x40000000-grey": ("strip.png", _blank(1, 40_000_000, "L"), "no digit fits such a strip"),
    # The longest strips admitted (100:1) at the pixel limit (before: 305 and 238 MB; the wide one is now tiled).
    "strip-63200x632-rgba": ("strip.png", _blank(63_200, 632, "RGBA"), "no digit found"),
    "strip-632x63200-rgba": ("strip.png", _blank(632, 63_200, "RGBA"), "no digit found"),
}


def run_measured(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, int]:
    """``run_cli`` that also returns the process's peak memory in bytes (its max RSS, children included)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "maxrss"
        command = measured(report, [str(Path(sys.executable).with_name("mnistctl")), *args])
        result = subprocess.run(command, capture_output=True, timeout=timeout, cwd=REPO)
        return result, int(report.read_text()) * 1024


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BIG_IMAGES))
def test_a_big_image_is_read_within_the_memory_limit(tmp_path, case):
    name, write, expected = BIG_IMAGES[case]
    path = tmp_path / name
    write(path)
    result, peak = run_measured("predict", str(path), "--json")
    rows = predict_rows(result)
    assert peak <= PEAK_RSS_LIMIT, f"{case}: peak RSS {peak / 1e6:.0f} MB"
    if isinstance(expected, int):
        assert result.returncode == 0 and rows[0]["digit"] == expected, rows
    else:
        assert result.returncode == 1 and expected in rows[0]["error"], rows


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_a_strip_is_refused_from_its_header_past_100_to_1(mode):
    for width, height in [(100, 1), (1, 100), (200, 2)]:
        assert load_gray(blank_png(width, height, mode), "strip.png").shape == (height, width)
    for width, height in [(101, 1), (1, 101), (40_000_000, 1)]:
        with pytest.raises(InvalidImageError) as refused:
            load_gray(blank_png(width, height, mode), "strip.png")
        assert str(refused.value) == (
            f"strip.png is {width:,}x{height:,} pixels: no digit fits such a strip;"
            " crop the digit out (one side may be at most 100 times the other)"
        )


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "F"])
def test_tiles_across_a_wide_image_give_what_whole_bands_give(monkeypatch, mode):
    """A wide image whose ``factor`` rows are over ``_BAND_PIXELS`` is cut across too (here 2 tiles a row, the
    second 52 px wide; bands of 2 rows): reduced and joined, the tiles are the image reduced."""
    rng = np.random.default_rng(1)
    tone = rng.integers(0, 256, (300, 2100), dtype=np.uint8)
    if mode == "RGBA":
        alpha = np.zeros_like(tone)
        alpha[100:200, 900:1300] = rng.integers(0, 256, (100, 400), dtype=np.uint8)
        image = Image.merge("RGBA", [Image.fromarray(tone)] * 3 + [Image.fromarray(alpha)])
    elif mode == "I;16":
        image = Image.fromarray(tone.astype(np.uint16) * 257)
    else:
        image = Image.fromarray(tone).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "TIFF" if mode == "F" else "PNG")
    whole = load_gray(buffer.getvalue(), "wide.png")
    monkeypatch.setattr(decode, "_BAND_PIXELS", 4096)  # 2 rows of 2100 px (factor 2) are 4200 pixels
    tiled = list(decode._tiles(Image.open(io.BytesIO(buffer.getvalue())), 2))
    assert len(tiled) == 150 and [tile.size for tile in tiled[-1]] == [(2048, 2), (52, 2)]
    np.testing.assert_allclose(load_gray(buffer.getvalue(), "wide.png"), whole, atol=1e-3)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("side", [40, 2100], ids=["small", "reduced"])
def test_exif_orientation_turns_the_image_as_pillow_does(orientation, side):
    rng = np.random.default_rng(orientation)
    stored = Image.fromarray(rng.integers(0, 256, (side // 2, side), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, "PNG", exif=exif, compress_level=1)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue())))
    factor = max(1, side // 1024)
    expected = upright.reduce(factor) if factor > 1 else upright
    gray = load_gray(buffer.getvalue(), "turned.png")
    assert gray.shape == np.asarray(expected).shape
    np.testing.assert_allclose(gray, np.asarray(expected, dtype=np.float32), atol=0.51 if factor > 1 else 0)


@pytest.mark.parametrize("opaque", ["ink", "picture"])
def test_reduced_transparent_image_is_the_reduced_composite(opaque):
    """Compositing is linear in (tone x alpha, alpha): reducing those first gives the reduced composite, and the
    backdrop is chosen from full-size statistics, as for a small image."""
    rng = np.random.default_rng(0)
    side = 2100
    tone = rng.integers(0, 256, (side, side), dtype=np.uint8)
    if opaque == "ink":  # a minority of opaque pixels, dark on average: a white backdrop
        alpha = np.zeros((side, side), np.uint8)
        alpha[500:1500, 700:900] = rng.integers(0, 256, (1000, 200), dtype=np.uint8)
    else:  # a picture with a transparent margin: the backdrop is its median tone
        alpha = np.full((side, side), 255, np.uint8)
        alpha[:, :301] = rng.integers(0, 120, (side, 301), dtype=np.uint8)
    rgba = Image.merge("RGBA", [Image.fromarray(tone)] * 3 + [Image.fromarray(alpha)])
    buffer = io.BytesIO()
    rgba.save(buffer, "PNG", compress_level=1)
    a = alpha.astype(np.float64) / 255
    backdrop = 255.0 if opaque == "ink" else float(np.median(tone[alpha > 127]))
    full = tone * a + backdrop * (1 - a)
    expected = np.asarray(Image.fromarray(full.astype(np.float32)).reduce(2))
    np.testing.assert_allclose(load_gray(buffer.getvalue(), "ink.png"), expected, atol=1e-3)


def test_a_pipe_or_device_is_refused_by_the_decoder_not_called_missing(tmp_path):
    # Before: "no such file or folder" for a path that exists.
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result = run_cli("predict", str(fifo), "/dev/zero", timeout=60)
    assert result.returncode == 1
    out = result.stdout.decode()
    assert "no such file" not in out and out.count("not a regular file") == 2, out
