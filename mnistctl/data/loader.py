"""Load a verified MNIST split into numpy arrays.

The sha256 of every file is checked when it is downloaded or imported; loading checks that each
file is still there at the size the manifest recorded, then decodes it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from mnistctl.data import spec as dataset_spec
from mnistctl.data.idx import check_images, check_labels, check_pair, read_idx_file
from mnistctl.data.manifest import read_manifest
from mnistctl.data.spec import DATASET_NAME, SPLITS, file_for
from mnistctl.errors import DataMissingError, InvalidDataError, UsageError
from mnistctl.paths import dataset_dir


def _verified_path(folder: Path, name: str, dataset: str = DATASET_NAME) -> Path:
    record = read_manifest(folder).get(name)
    path = folder / name
    if record is None or not path.is_file():
        raise DataMissingError(
            f"{dataset_spec.get_dataset(dataset).title} is not downloaded ({path} is missing)",
            hint=_download_hint(dataset),
        )
    if path.stat().st_size != record.bytes:
        raise DataMissingError(
            f"{path} is damaged (size changed since it was verified)",
            hint='run "mnistctl download --force"',
        )
    return path


def _read_verified(path: Path) -> np.ndarray:
    """A verified file's array; one that no longer decodes was damaged on disk since, and download repairs it."""
    try:
        return read_idx_file(path)
    except InvalidDataError as exc:
        raise InvalidDataError(
            exc.message, hint='it changed on disk since it was verified; run "mnistctl download" to fetch it again'
        ) from None


def _download_hint(dataset: str) -> str | None:
    return None if dataset == DATASET_NAME else f'run "mnistctl download --dataset {dataset}"'


def load(
    split: str = "train", *, folder: Path | None = None, dataset: str = DATASET_NAME
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x 28 x 28 uint8) and labels (N uint8) of ``split`` ("train" or "test") of ``dataset``."""
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}", hint="use one of: " + ", ".join(SPLITS))
    folder = folder or dataset_dir(dataset)
    label_spec = file_for(split, "labels", dataset)
    images = _read_verified(_verified_path(folder, file_for(split, "images", dataset).name, dataset))
    labels = _read_verified(_verified_path(folder, label_spec.name, dataset))
    check_images(images, f"{split} images")
    labels = check_labels(labels, f"{split} labels", label_spec.label_column)
    check_pair(images, labels, split)
    return images, labels


def fingerprint(folder: Path | None = None, dataset: str = DATASET_NAME) -> str:
    """A short sha256 over the verified files' checksums: which data a model was trained on."""
    folder = folder or dataset_dir(dataset)
    records = read_manifest(folder)
    digest = hashlib.sha256()
    table = dataset_spec.get_dataset(dataset)
    for spec in table.files:
        record = records.get(spec.name)
        if record is None:
            raise DataMissingError(
                f"{table.title} is not downloaded ({folder / spec.name} is missing)", hint=_download_hint(dataset)
            )
        digest.update(f"{spec.name}={record.sha256}\n".encode())
    return digest.hexdigest()
