"""Reader and writer for the IDX format MNIST ships in (optionally gzip-compressed).

Any malformed input -- bad magic, truncated body, wrong dimensions, broken gzip -- raises
``InvalidDataError`` with a message that says what is wrong; nothing else escapes.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from mnistctl.data.spec import IMAGE_SIDE, NUM_CLASSES
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


def parse_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes into an array, checking the header against the body length exactly."""
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
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise InvalidDataError(
            f"{what} is {state}: header {'x'.join(map(str, dims))} needs {expected} bytes, found {actual}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def to_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (uint8 arrays, the MNIST case, round-trip exactly)."""
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    code = _CODE_FOR_DTYPE.get(big_endian)
    if code is None:
        raise InvalidDataError(f"cannot store dtype {array.dtype} in IDX")
    if array.ndim == 0 or array.ndim > 255:
        raise InvalidDataError(f"cannot store a {array.ndim}-dimensional array in IDX")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=big_endian).tobytes()


def decompress_if_gzip(data: bytes, what: str) -> bytes:
    """Gunzip ``data`` when it starts with the gzip magic; raise ``InvalidDataError`` if broken."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidDataError(f"{what} is not a valid gzip file ({exc})") from None


def read_idx_file(path: Path) -> np.ndarray:
    """Read an IDX file from disk, gzip-compressed or not."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidDataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_idx(decompress_if_gzip(raw, str(path)), str(path))


def check_images(images: np.ndarray, what: str) -> np.ndarray:
    """Require an N x 28 x 28 uint8 array."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise InvalidDataError(f"{what}: expected images of shape N x 28 x 28, got {images.shape}")
    if images.dtype != np.uint8:
        raise InvalidDataError(f"{what}: expected uint8 pixels, got {images.dtype}")
    if images.shape[0] == 0:
        raise InvalidDataError(f"{what}: holds no images")
    return images


def check_labels(labels: np.ndarray, what: str) -> np.ndarray:
    """Require a 1-D array of integer labels in 0..9, returned as uint8."""
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
