"""Small generated MNIST-like data for tests: learnable digit shapes, IDX files, specs with checksums.

Each digit class is a fixed stroke pattern (seven-segment style) drawn with random thickness,
offset and noise, so a tiny model can learn it in one epoch and tests never need the real MNIST.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from mnistctl.data.idx import to_idx
from mnistctl.data.spec import DataFile

# Segments: a top, b upper-right, c lower-right, d bottom, e lower-left, f upper-left, g middle.
_SEGMENTS = {
    0: "abcdef",
    1: "bc",
    2: "abged",
    3: "abgcd",
    4: "fgbc",
    5: "afgcd",
    6: "afgedc",
    7: "abc",
    8: "abcdefg",
    9: "abcdfg",
}


def _draw(digit: int, rng: np.random.Generator) -> np.ndarray:
    image = np.zeros((28, 28), dtype=np.float32)
    top, left = 4 + rng.integers(-2, 3), 8 + rng.integers(-2, 3)
    height, width, thick = 20, 12, int(rng.integers(2, 4))
    mid = top + height // 2
    bottom, right = top + height - 1, left + width - 1
    boxes = {
        "a": (top, top + thick, left, right + 1),
        "g": (mid - thick // 2, mid - thick // 2 + thick, left, right + 1),
        "d": (bottom - thick + 1, bottom + 1, left, right + 1),
        "f": (top, mid + 1, left, left + thick),
        "e": (mid, bottom + 1, left, left + thick),
        "b": (top, mid + 1, right - thick + 1, right + 1),
        "c": (mid, bottom + 1, right - thick + 1, right + 1),
    }
    for segment in _SEGMENTS[digit]:
        r0, r1, c0, c1 = boxes[segment]
        image[max(r0, 0) : min(r1, 28), max(c0, 0) : min(c1, 28)] = 1.0
    image = image * rng.uniform(0.75, 1.0) + rng.normal(0, 0.05, image.shape)
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def make_digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images (uint8, N x 28 x 28) with balanced labels 0..9."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = np.stack([_draw(int(label), rng) for label in labels])
    return images, labels


def make_dataset(train: int = 300, test: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays keyed like the Keras ``mnist.npz`` file."""
    x_train, y_train = make_digits(train, seed)
    x_test, y_test = make_digits(test, seed + 1)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_npz(path: Path, dataset: dict[str, np.ndarray]) -> Path:
    np.savez_compressed(path, **dataset)
    return path


_KEYS = {
    ("train", "images"): "x_train",
    ("train", "labels"): "y_train",
    ("test", "images"): "x_test",
    ("test", "labels"): "y_test",
}


def qmnist_label_table(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """QMNIST's extended labels: 8 int32 columns per digit, the class first, then NIST metadata (made up)."""
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 4000, size=(len(labels), 8)).astype(np.int32)
    table[:, 0] = labels
    return table


def write_idx_mirror(
    folder: Path, dataset: dict[str, np.ndarray], files: tuple[DataFile, ...] | None = None
) -> tuple[DataFile, ...]:
    """Write the four gzip IDX files into ``folder``; return specs pinning their checksums.

    ``files`` (a data set's table entry, default MNIST's) gives the names, and which labels are a table
    (QMNIST's idx2-int) rather than a vector.
    """
    from mnistctl.data.spec import MNIST_FILES

    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for template in files or MNIST_FILES:
        array = dataset[_KEYS[(template.split, template.kind)]]
        if template.label_column is not None and array.ndim == 1:
            array = qmnist_label_table(array)
        raw = to_idx(array)
        gz = gzip.compress(raw, mtime=0)
        (folder / template.name).write_bytes(gz)
        specs.append(
            DataFile(
                template.name,
                template.split,
                template.kind,
                len(array),
                hashlib.sha256(gz).hexdigest(),
                len(gz),
                hashlib.sha256(raw).hexdigest(),
                template.label_column,
            )
        )
    return tuple(specs)
