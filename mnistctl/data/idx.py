"""Reader and writer for the IDX format MNIST ships in (optionally gzip-compressed).

Any malformed input -- bad magic, truncated body, wrong dimensions, broken gzip -- raises
``InvalidDataError`` with a message that says what is wrong; nothing else escapes.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistctl.data.spec import IMAGE_SIDE, MAX_IMAGES, NUM_CLASSES
from mnistctl.errors import InvalidDataError

# IDX type codes -> big-endian numpy dtypes (the format stores multi-byte values big-endian).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_FOR_DTYPE = {
    dtype.newbyteorder(">") if dtype.itemsize > 1 else dtype: code for code, dtype in _IDX_DTYPES.items()
}

GZIP_MAGIC = b"\x1f\x8b"
# The largest IDX body decoded: MAX_IMAGES images of 28x28 bytes (~235 MB). Checked against the
# header before a byte of the body is read, so a lying or hostile file costs nothing to refuse.
MAX_BODY_BYTES = MAX_IMAGES * IMAGE_SIDE * IMAGE_SIDE
_MAX_HEADER_BYTES = 4 + 4 * 255


def _parse_header(data: bytes, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """The dimensions, dtype and header length an IDX file declares in its first bytes."""
    if len(data) < 4:
        raise InvalidDataError(f"{what} is too short to be an IDX file ({len(data)} bytes)")
    zero1, zero2, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero1 != 0 or zero2 != 0 or type_code not in _IDX_DTYPES:
        raise InvalidDataError(f"{what} has a bad IDX magic number 0x{data[:4].hex()}")
    if ndim == 0:
        raise InvalidDataError(f"{what} declares zero dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise InvalidDataError(f"{what} is truncated inside its header")
    return struct.unpack(f">{ndim}I", data[4:header_len]), _IDX_DTYPES[type_code], header_len


def _body_bytes(dims: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(dims, dtype=object)) * dtype.itemsize


def _size_error(what: str, dims: tuple[int, ...], expected: int, found: int | None) -> InvalidDataError:
    state = "truncated" if found is not None and found < expected else "longer than its header says"
    shown = "more" if found is None else str(found)
    return InvalidDataError(
        f"{what} is {state}: header {'x'.join(map(str, dims))} needs {expected} bytes, found {shown}"
    )


def parse_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes into an array, checking the header against the body length exactly."""
    dims, dtype, header_len = _parse_header(data, what)
    expected = _body_bytes(dims, dtype)
    actual = len(data) - header_len
    if actual != expected:
        raise _size_error(what, dims, expected, actual)
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes (fewer only at the end of the stream)."""
    chunks, missing = [], size
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            break
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _fill(stream: BinaryIO, buffer: memoryview) -> int:
    """Read into ``buffer`` until it is full or the stream ends; return the bytes read."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:])
        if not count:
            break
        filled += count
    return filled


def read_idx_stream(stream: BinaryIO, what: str, *, max_items: int = MAX_IMAGES) -> np.ndarray:
    """Decode IDX from a stream, reading the header's size exactly and not one byte more.

    The header is checked against ``max_items`` (and ``MAX_BODY_BYTES``) before the body is read,
    so a gzip bomb or a header claiming billions of items is refused after a few bytes.
    """
    head = _read_up_to(stream, 4)
    if len(head) == 4:
        head += _read_up_to(stream, 4 * head[3])
    dims, dtype, _ = _parse_header(head, what)
    expected = _body_bytes(dims, dtype)
    if dims[0] > max_items or expected > max_items * IMAGE_SIDE * IMAGE_SIDE:
        raise InvalidDataError(
            f"{what} declares {dims[0]:,} items ({expected:,} bytes); mnistctl reads at most "
            f"{max_items:,} 28x28 images per file",
            hint="split the data into smaller files",
        )
    body = np.empty(expected, dtype=np.uint8)
    found = _fill(stream, memoryview(body))
    if found < expected:
        raise _size_error(what, dims, expected, found)
    if stream.read(1):
        raise _size_error(what, dims, expected, None)
    return body.view(dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def idx_header(array: np.ndarray) -> bytes:
    """The IDX header for ``array`` (magic number and dimensions)."""
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    code = _CODE_FOR_DTYPE.get(big_endian)
    if code is None:
        raise InvalidDataError(f"cannot store dtype {array.dtype} in IDX")
    if array.ndim == 0 or array.ndim > 255:
        raise InvalidDataError(f"cannot store a {array.ndim}-dimensional array in IDX")
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)


def idx_body(array: np.ndarray) -> memoryview:
    """The IDX body of ``array`` as a flat byte view (no copy for uint8 data, the MNIST case)."""
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    # Flat bytes by a uint8 view: memoryview.cast refuses arrays with a zero in their shape.
    return memoryview(np.ascontiguousarray(array, dtype=big_endian).reshape(-1).view(np.uint8))


def to_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (uint8 arrays, the MNIST case, round-trip exactly)."""
    return idx_header(array) + idx_body(array).tobytes()


def decompress_if_gzip(data: bytes, what: str, *, max_bytes: int = MAX_BODY_BYTES + _MAX_HEADER_BYTES) -> bytes:
    """Gunzip ``data`` when it starts with the gzip magic, stopping past ``max_bytes`` of output."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            raw = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidDataError(f"{what} is not a valid gzip file ({exc})") from None
    if len(raw) > max_bytes:
        raise InvalidDataError(f"{what} expands to more than {max_bytes:,} bytes")
    return raw


def read_idx_file(path: Path, *, max_items: int = MAX_IMAGES) -> np.ndarray:
    """Read an IDX file from disk, gzip-compressed or not, streaming (see ``read_idx_stream``)."""
    try:
        with open(path, "rb") as handle:
            compressed = handle.peek(2)[:2] == GZIP_MAGIC
            stream = gzip.GzipFile(fileobj=handle, mode="rb") if compressed else handle
            return read_idx_stream(stream, str(path), max_items=max_items)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InvalidDataError(f"{path} is not a valid gzip file ({exc})") from None
    except OSError as exc:
        raise InvalidDataError(f"cannot read {path}: {exc.strerror or exc}") from None


def check_images(images: np.ndarray, what: str) -> np.ndarray:
    """Require an N x 28 x 28 uint8 array."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise InvalidDataError(f"{what}: expected images of shape N x 28 x 28, got {images.shape}")
    if images.dtype != np.uint8:
        raise InvalidDataError(f"{what}: expected uint8 pixels, got {images.dtype}")
    if images.shape[0] == 0:
        raise InvalidDataError(f"{what}: holds no images")
    return images


def check_labels(labels: np.ndarray, what: str, column: int | None = None) -> np.ndarray:
    """Require a 1-D array of integer labels in 0..9, returned as uint8. With ``column``, a label table (QMNIST's
    8 columns per item) is accepted too, and its ``column`` holds the class (a plain vector still may)."""
    if column is not None and labels.ndim == 2:
        if labels.shape[1] <= column:
            raise InvalidDataError(f"{what}: a label table needs a column {column}, got shape {labels.shape}")
        labels = labels[:, column]
    if labels.ndim != 1:
        raise InvalidDataError(f"{what}: expected a 1-D label vector, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InvalidDataError(f"{what}: expected integer labels, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise InvalidDataError(f"{what}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return labels.astype(np.uint8, copy=False)


def check_pair(images: np.ndarray, labels: np.ndarray, what: str) -> None:
    """Images and labels must describe the same number of digits."""
    if images.shape[0] != labels.shape[0]:
        raise InvalidDataError(f"{what}: {images.shape[0]} images but {labels.shape[0]} labels")
