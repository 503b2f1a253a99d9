"""Offline import: ``mnist.npz`` (the Keras cache file) or a folder of the four IDX files.

Content is checked (magic numbers, shapes, label ranges) before anything is written; official
``.gz`` files are copied byte for byte, anything else is re-encoded as IDX + gzip. Data that
differs from the official MNIST is accepted but flagged ``official: false``.
"""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from mnistctl.data import spec as dataset_spec
from mnistctl.data.download import DatasetResult, FileResult
from mnistctl.data.idx import check_images, check_labels, check_pair, decompress_if_gzip, parse_idx, to_idx
from mnistctl.data.manifest import FileRecord, folder_lock, read_manifest, write_manifest
from mnistctl.data.spec import DATASET_NAME, SPLITS, DataFile, file_for
from mnistctl.errors import InvalidDataError
from mnistctl.fsutil import atomic_write_bytes
from mnistctl.paths import dataset_dir

NPZ_KEYS = {
    ("train", "images"): "x_train",
    ("train", "labels"): "y_train",
    ("test", "images"): "x_test",
    ("test", "labels"): "y_test",
}


def import_dataset(source: Path, *, folder: Path | None = None) -> DatasetResult:
    """Validate ``source`` and install its four files as the verified data set."""
    folder = folder or dataset_dir(DATASET_NAME)
    source = source.expanduser()
    if source.is_dir():
        payloads = _payloads_from_folder(source)
    elif source.is_file():
        payloads = _payloads_from_npz(source)
    elif not source.exists():
        raise InvalidDataError(f"{source} does not exist", hint="pass mnist.npz or a folder of the four IDX files")
    else:
        raise InvalidDataError(f"{source} is neither a file nor a folder")

    result = DatasetResult(DATASET_NAME, folder)
    with folder_lock(folder):
        records = read_manifest(folder)
        for spec in dataset_spec.MNIST_FILES:
            gz_bytes, official, origin = payloads[spec.name]
            atomic_write_bytes(folder / spec.name, gz_bytes)
            record = FileRecord(spec.name, hashlib.sha256(gz_bytes).hexdigest(), len(gz_bytes), origin, official)
            records[spec.name] = record
            result.files.append(FileResult(record, "imported"))
        write_manifest(folder, DATASET_NAME, records)
    return result


def _validated(split: str, images: np.ndarray, labels: np.ndarray, what: str) -> None:
    check_images(images, f"{what} {split} images")
    check_labels(labels, f"{what} {split} labels")
    check_pair(images, labels, f"{what} {split}")


def _encode(spec: DataFile, array: np.ndarray) -> tuple[bytes, bool]:
    raw = to_idx(array.astype(np.uint8, copy=False))
    official = hashlib.sha256(raw).hexdigest() == spec.content_sha256
    # mtime=0 keeps re-imports of the same content byte-identical.
    return gzip.compress(raw, compresslevel=6, mtime=0), official


def _payloads_from_npz(path: Path) -> dict[str, tuple[bytes, bool, str]]:
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise InvalidDataError(
                f"{path} holds a single array, not an .npz archive",
                hint="pass mnist.npz (x_train, y_train, x_test, y_test) or a folder of the four IDX files",
            )
        with npz:
            missing = sorted(set(NPZ_KEYS.values()) - set(npz.files))
            if missing:
                raise InvalidDataError(f"{path} lacks {', '.join(missing)} (expected x_train, y_train, x_test, y_test)")
            arrays = {key: npz[name] for key, name in NPZ_KEYS.items()}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InvalidDataError(f"{path} is not a readable .npz file ({exc})") from None
    payloads = {}
    for split in SPLITS:
        _validated(split, arrays[(split, "images")], arrays[(split, "labels")], str(path))
        for kind in ("images", "labels"):
            spec = file_for(split, kind)
            gz_bytes, official = _encode(spec, arrays[(split, kind)])
            payloads[spec.name] = (gz_bytes, official, f"{path}:{NPZ_KEYS[(split, kind)]}")
    return payloads


def _find_in_folder(folder: Path, spec: DataFile) -> Path:
    # Accept the official names, their uncompressed forms, and the dotted names inside the .gz files.
    stem = spec.idx_name
    dotted = stem.replace("-idx", ".idx")
    for name in (spec.name, stem, dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise InvalidDataError(f"{folder} has no {spec.name} (nor {stem})", hint="it needs all four MNIST IDX files")


def _payloads_from_folder(folder: Path) -> dict[str, tuple[bytes, bool, str]]:
    paths = {spec.name: _find_in_folder(folder, spec) for spec in dataset_spec.MNIST_FILES}
    raws: dict[str, bytes] = {}
    payloads = {}
    for spec in dataset_spec.MNIST_FILES:
        path = paths[spec.name]
        try:
            stored = path.read_bytes()
        except OSError as exc:
            raise InvalidDataError(f"cannot read {path}: {exc.strerror or exc}") from None
        raws[spec.name] = decompress_if_gzip(stored, str(path))
        if hashlib.sha256(stored).hexdigest() == spec.sha256:
            payloads[spec.name] = (stored, True, str(path))  # the official file: keep its bytes as they are
    for split in SPLITS:
        image_spec, label_spec = file_for(split, "images"), file_for(split, "labels")
        images = parse_idx(raws[image_spec.name], str(paths[image_spec.name]))
        labels = parse_idx(raws[label_spec.name], str(paths[label_spec.name]))
        _validated(split, images, labels, str(folder))
        for spec, array in ((image_spec, images), (label_spec, labels)):
            if spec.name not in payloads:
                gz_bytes, official = _encode(spec, array)
                payloads[spec.name] = (gz_bytes, official, str(paths[spec.name]))
    return payloads
