"""A look at a model file before Keras opens it: empty, foreign, truncated or oversized files are refused.

Keras reads a .keras archive's config.json (and, memory allowing, its weights) whole into memory, and
trusts the sizes the archive declares; a 1.5 GB config.json of whitespace costs gigabytes. The zip's
central directory says how large every member is without reading any, so each is capped here first.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from mnistctl.errors import MnistctlError

# Caps on what a model file may make us read. An MNIST model's config is a few KB and its weights a few MB
# (the classic CNN: 1.2M parameters, 5 MB); these leave room for far larger models.
MAX_JSON_MEMBER_BYTES = 16 << 20  # config.json, metadata.json
MAX_WEIGHTS_BYTES = 256 << 20  # model.weights.h5: 64M float32 parameters
MAX_ARCHIVE_BYTES = 512 << 20  # a .keras file, and all its members together
MAX_H5_BYTES = 256 << 20  # a legacy .h5 model file
MAX_MEMBERS = 1000  # Keras writes three (config, metadata, weights) plus any assets
# Keras stores members uncompressed, and real weights deflate by well under 10x: a member that inflates
# 100x is padding or a decompression bomb. Small members (a few KB of JSON) may compress as they like.
MAX_COMPRESSION_RATIO = 100
RATIO_FLOOR_BYTES = 1 << 20

KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")
_JSON_MEMBERS = ("config.json", "metadata.json")
_WEIGHTS_MEMBERS = ("model.weights.h5", "model.weights.npz")
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# HDF5 puts its superblock at 0 or after a user block of 512, 1024, 2048… bytes.
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096, 8192)


class InvalidModelError(MnistctlError):
    """The file is not a Keras model we can use for MNIST."""


def readable_size(count: int) -> str:
    """Bytes as a person reads them: "64 MB", "12 KB", "300 bytes"."""
    if count >= 1 << 20:
        return f"{count / (1 << 20):,.0f} MB"
    if count >= 1 << 10:
        return f"{count / (1 << 10):,.0f} KB"
    return f"{count} bytes"


def check_model_file(path: Path) -> None:
    """Refuse ``path`` unless it looks like a .keras archive or an .h5 model small enough to load safely."""
    size = path.stat().st_size
    if size == 0:
        raise InvalidModelError(f"{path} is empty (0 bytes)", hint="export or copy the model again")
    if path.suffix.lower() in H5_SUFFIXES:
        _check_h5_file(path, size)
    else:
        _check_keras_archive(path, size)


def _refuse_file_size(path: Path, size: int, cap: int) -> None:
    if size > cap:
        raise InvalidModelError(
            f"{path} is {readable_size(size)}; refusing more than {readable_size(cap)} for a model file",
            hint="an MNIST model is a few MB; check that this is the file you meant",
        )


def _check_h5_file(path: Path, size: int) -> None:
    _refuse_file_size(path, size, MAX_H5_BYTES)
    with open(path, "rb") as handle:
        for offset in _HDF5_OFFSETS:
            handle.seek(offset)
            if handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return
    raise InvalidModelError(
        f"{path} is not an .h5 file (no HDF5 signature)", hint='save the model with model.save("NAME.keras")'
    )


def _check_keras_archive(path: Path, size: int) -> None:
    _refuse_file_size(path, size, MAX_ARCHIVE_BYTES)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            starts_like_a_zip = handle.read(len(_ZIP_LOCAL_HEADER)) == _ZIP_LOCAL_HEADER
        if starts_like_a_zip:
            # A zip's directory is at its end: a file cut short has the first members and no directory.
            raise InvalidModelError(
                f"{path} is a truncated .keras file (its zip directory is missing)", hint="copy or export it again"
            )
        raise InvalidModelError(
            f"{path} is not a .keras file (not a zip archive)", hint='save the model with model.save("NAME.keras")'
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidModelError(f"{path} is a damaged .keras file ({exc})", hint="copy or export it again") from None
    _check_members(path, members)


def _check_members(path: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive whose declared member sizes would make loading it cost more than a model should."""
    if len(members) > MAX_MEMBERS:
        raise InvalidModelError(
            f"{path} holds {len(members):,} files; a .keras model holds a few (refusing more than {MAX_MEMBERS:,})"
        )
    if "config.json" not in {member.filename for member in members}:
        raise InvalidModelError(f"{path} is not a Keras model archive (it has no config.json)")
    for member in members:
        _check_member(path, member)
    total = sum(member.file_size for member in members)
    if total > MAX_ARCHIVE_BYTES:
        raise InvalidModelError(
            f"{path} unpacks to {readable_size(total)} in all; refusing more than {readable_size(MAX_ARCHIVE_BYTES)}"
        )


def _member_cap(name: str) -> int:
    """The most bytes the member ``name`` may unpack to (read whole into memory, for JSON and weights)."""
    if name in _JSON_MEMBERS:
        return MAX_JSON_MEMBER_BYTES
    if name in _WEIGHTS_MEMBERS:
        return MAX_WEIGHTS_BYTES
    return MAX_ARCHIVE_BYTES


def _check_member(path: Path, member: zipfile.ZipInfo) -> None:
    """One member's declared size against its cap, and against what it takes on disk."""
    name, size = member.filename, member.file_size
    cap = _member_cap(name)
    if size > cap:
        raise InvalidModelError(
            f"{path}: its {name} is {readable_size(size)}; refusing more than {readable_size(cap)}",
            hint="an MNIST model's config is a few KB and its weights a few MB",
        )
    if size > RATIO_FLOOR_BYTES and size > MAX_COMPRESSION_RATIO * max(member.compress_size, 1):
        raise InvalidModelError(
            f"{path}: its {name} is {readable_size(size)} compressed into {readable_size(member.compress_size)};"
            " refusing what looks like a decompression bomb (Keras stores model files uncompressed)"
        )
