"""Offline import: ``mnist.npz`` (the Keras cache file) or a folder of the four IDX files.

Content is checked (magic numbers, shapes, label ranges) before anything is written, and sizes are
checked from the headers (IDX and ``.npy``) before any body is read, so a bomb costs nothing to
refuse. Official ``.gz`` files are copied byte for byte, anything else is re-encoded as IDX + gzip.
Data that differs from the official MNIST is flagged ``official: false`` and never replaces the
official files unless asked to (``force``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistctl.data import spec as dataset_spec
from mnistctl.data.download import DatasetResult, FileResult
from mnistctl.data.idx import check_images, check_labels, check_pair, idx_body, idx_header, read_idx_file
from mnistctl.data.manifest import FileRecord, folder_lock, read_manifest, write_manifest
from mnistctl.data.spec import DATASET_NAME, IMAGE_SIDE, MAX_IMAGES, SPLITS, DataFile, file_for
from mnistctl.errors import InvalidDataError, UsageError
from mnistctl.fsutil import fsync_dir, sha256_file, temp_path_for
from mnistctl.paths import dataset_dir

NPZ_KEYS = {
    ("train", "images"): "x_train",
    ("train", "labels"): "y_train",
    ("test", "images"): "x_test",
    ("test", "labels"): "y_test",
}
SOURCE_HINT = "pass mnist.npz (x_train, y_train, x_test, y_test) or a folder of the four IDX files"
_NPY_MAGIC = b"\x93NUMPY"
# What a damaged or hostile zip/npy raises while being read; each becomes one InvalidDataError.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class _Payload:
    """What one of the four files will hold: an official ``.gz`` copied as is, or an array to encode."""

    spec: DataFile
    origin: str  # the file (or npz member) it came from
    official: bool
    copy_of: Path | None = None
    array: np.ndarray | None = None


def import_dataset(
    source: Path,
    *,
    folder: Path | None = None,
    force: bool = False,
    on_wait: Callable[[str], None] | None = None,
    dataset: str = DATASET_NAME,
) -> DatasetResult:
    """Validate ``source`` and install its four files as the data set.

    Unless ``force`` is set, data that differs from the official MNIST never replaces official
    files already in ``folder`` (``UsageError``); nothing is written when anything is refused.
    ``on_wait`` hears once if another mnistctl holds the folder and we wait for it.
    """
    dataset_spec.get_dataset(dataset)
    folder = folder or dataset_dir(dataset)
    source = source.expanduser()
    if source.is_dir():
        payloads = _payloads_from_folder(source, dataset)
    elif source.is_file():
        payloads = _payloads_from_npz(source, dataset)
    elif not source.exists():
        raise InvalidDataError(f"{source} does not exist", hint="pass mnist.npz or a folder of the four IDX files")
    else:
        raise InvalidDataError(f"{source} is neither a file nor a folder")

    result = DatasetResult(dataset, folder)
    with folder_lock(folder, on_wait=on_wait):
        records = read_manifest(folder)
        if not force:
            _refuse_to_replace_official(folder, records, payloads, source, dataset)
        for record in _install(folder, records, payloads, dataset):
            result.files.append(FileResult(record, "imported"))
    return result


def _refuse_to_replace_official(
    folder: Path, records: dict[str, FileRecord], payloads: list[_Payload], source: Path, dataset: str = DATASET_NAME
) -> None:
    """Raise ``UsageError`` when an unofficial payload would overwrite an official file in place."""
    replaced = []
    for payload in payloads:
        record = records.get(payload.spec.name)
        if not payload.official and record is not None and record.official and (folder / record.name).is_file():
            replaced.append(payload.spec.name)
    if replaced:
        table = dataset_spec.get_dataset(dataset)
        how = "differs from it" if table.content_pinned else "cannot be verified as the same"
        raise UsageError(
            f"{folder} holds the official {table.title} and {source} {how} ({', '.join(replaced)})",
            hint="pass --force to replace the official files with this unofficial copy",
        )


def _install(
    folder: Path, records: dict[str, FileRecord], payloads: list[_Payload], dataset: str = DATASET_NAME
) -> list[FileRecord]:
    """Write every payload to a temp file, then swap them all in and record them in the manifest."""
    staged: dict[str, Path] = {}
    try:
        for payload in payloads:
            staged[payload.spec.name] = _stage(payload, folder / payload.spec.name)
        # Forget the old records before the swap: a crash half way leaves a manifest that names no
        # file it has not checked (loading then says "download first"), never a silent mix of both.
        previous = dict(records)
        for name in staged:
            records.pop(name, None)
        write_manifest(folder, dataset, records)
        installed = []
        for payload in payloads:
            name = payload.spec.name
            digest, size = sha256_file(staged[name]), staged[name].stat().st_size
            os.replace(staged.pop(name), folder / name)
            # A copied .gz is official only if the bytes that landed are the pinned ones.
            official = digest == payload.spec.sha256 if payload.copy_of is not None else payload.official
            origin, known = payload.origin, previous.get(name)
            if known is not None and known.sha256 == digest and Path(origin).resolve() == (folder / name).resolve():
                origin = known.source  # the data set folder imported into itself: its files still came from there
            records[name] = FileRecord(name, digest, size, origin, official)
            installed.append(records[name])
        fsync_dir(folder)
        write_manifest(folder, dataset, records)
        return installed
    finally:
        for tmp in staged.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _stage(payload: _Payload, target: Path) -> Path:
    """A synced temp file beside ``target`` holding the payload's ``.gz`` bytes."""
    tmp = temp_path_for(target)
    try:
        with open(tmp, "wb") as out:
            if payload.copy_of is not None:
                with open(payload.copy_of, "rb") as source:
                    shutil.copyfileobj(source, out)
            else:
                _write_gzipped_idx(out, payload.array)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        # A full disk or Ctrl-C half way: the caller never learns this name, so remove it here.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def _write_gzipped_idx(out: BinaryIO, array: np.ndarray | None) -> None:
    if array is None:
        raise ValueError("a payload holds either a file to copy or an array to encode")
    # No name and mtime=0 keep re-imports of the same content byte-identical.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=6, mtime=0) as packed:
        packed.write(idx_header(array))
        packed.write(idx_body(array))


def _validated(split: str, images: np.ndarray, labels: np.ndarray, what: str, dataset: str = DATASET_NAME) -> None:
    check_images(images, f"{what} {split} images")
    classes = check_labels(labels, f"{what} {split} labels", file_for(split, "labels", dataset).label_column)
    check_pair(images, classes, f"{what} {split}")


def _is_official(spec: DataFile, array: np.ndarray) -> bool:
    """True when ``array`` encodes to exactly the official IDX content of ``spec`` (never where that is not
    pinned: only the official ``.gz`` bytes are then official)."""
    if spec.content_sha256 is None:
        return False
    digest = hashlib.sha256(idx_header(array))
    digest.update(idx_body(array))
    return digest.hexdigest() == spec.content_sha256


def _encoded(spec: DataFile, array: np.ndarray, origin: str) -> _Payload:
    if spec.kind == "images" or array.ndim == 1:
        array = array.astype(np.uint8, copy=False)  # a label table (QMNIST's int32 columns) keeps its type
    return _Payload(spec, origin, _is_official(spec, array), array=array)


# -- mnist.npz ---------------------------------------------------------------------------------


def _payloads_from_npz(path: Path, dataset: str = DATASET_NAME) -> list[_Payload]:
    arrays = _read_npz(path)
    payloads = []
    for split in SPLITS:
        _validated(split, arrays[(split, "images")], arrays[(split, "labels")], str(path), dataset)
        for kind in ("images", "labels"):
            key = NPZ_KEYS[(split, kind)]
            payloads.append(_encoded(file_for(split, kind, dataset), arrays[(split, kind)], f"{path}:{key}"))
    return payloads


def _read_npz(path: Path) -> dict[tuple[str, str], np.ndarray]:
    """The four arrays of an npz, each loaded only after every header has been checked."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            if handle.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
                raise InvalidDataError(f"{path} holds a single array, not an .npz archive", hint=SOURCE_HINT)
        raise InvalidDataError(f"{path} is not a readable .npz file (not a zip archive)", hint=SOURCE_HINT)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            missing = [name for name in NPZ_KEYS.values() if name not in members]
            if missing:
                raise InvalidDataError(f"{path} lacks {', '.join(missing)} (expected x_train, y_train, x_test, y_test)")
            for key, name in NPZ_KEYS.items():
                _check_npy_header(archive, members[name], key, f"{path}:{name}")
            return {key: _read_npy(archive, members[name]) for key, name in NPZ_KEYS.items()}
    except _READ_ERRORS as exc:
        raise InvalidDataError(f"{path} is not a readable .npz file ({exc})") from None


def _read_npy(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    with archive.open(member) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


def _check_npy_header(archive: zipfile.ZipFile, member: str, key: tuple[str, str], what: str) -> None:
    """Refuse a member by its ``.npy`` header alone: pickles, wrong shapes or dtypes, too many items."""
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise InvalidDataError(f"{what} uses .npy format {version[0]}.{version[1]}, which mnistctl does not read")
    if dtype.hasobject:
        raise InvalidDataError(
            f"{what} holds Python objects (a pickle), which mnistctl never loads",
            hint="save plain arrays: uint8 images and integer labels",
        )
    kind = key[1]
    count = shape[0] if shape else 0
    if count > MAX_IMAGES:
        raise InvalidDataError(
            f"{what} holds {count:,} {kind}; mnistctl reads at most {MAX_IMAGES:,} per split",
            hint="import a subset of the data",
        )
    if kind == "images":
        if len(shape) != 3 or shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise InvalidDataError(f"{what}: expected images of shape N x 28 x 28, got {shape}")
        if dtype != np.uint8:
            raise InvalidDataError(f"{what}: expected uint8 pixels, got {dtype}")
    elif len(shape) != 1:
        raise InvalidDataError(f"{what}: expected a 1-D label vector, got shape {shape}")
    elif dtype.kind not in "iu":
        raise InvalidDataError(f"{what}: expected integer labels, got {dtype}")


# -- a folder of IDX files ----------------------------------------------------------------------


def _find_in_folder(folder: Path, spec: DataFile, title: str = "MNIST") -> Path:
    # Accept the official names, their uncompressed forms, and the dotted names inside the .gz files.
    stem = spec.idx_name
    dotted = stem.replace("-idx", ".idx")
    for name in (spec.name, stem, dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise InvalidDataError(f"{folder} has no {spec.name} (nor {stem})", hint=f"it needs all four {title} IDX files")


def _payloads_from_folder(folder: Path, dataset: str = DATASET_NAME) -> list[_Payload]:
    table = dataset_spec.get_dataset(dataset)
    paths = {spec.name: _find_in_folder(folder, spec, table.title) for spec in table.files}
    # Streamed and bounded by each header: a gzip bomb stops at the first byte too many.
    arrays = {name: read_idx_file(path) for name, path in paths.items()}
    payloads = []
    for split in SPLITS:
        image_spec, label_spec = file_for(split, "images", dataset), file_for(split, "labels", dataset)
        _validated(split, arrays[image_spec.name], arrays[label_spec.name], str(folder), dataset)
        for spec in (image_spec, label_spec):
            path = paths[spec.name]
            if sha256_file(path) == spec.sha256:
                payloads.append(_Payload(spec, str(path), True, copy_of=path))  # the official file, as it is
            else:
                payloads.append(_encoded(spec, arrays[spec.name], str(path)))
    return payloads
