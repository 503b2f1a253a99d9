"""What the MNIST data set is: its four files, their pinned checksums, and where to get them.

Both checksums are pinned: ``sha256`` of the official ``.gz`` bytes (checked on download) and
``content_sha256`` of the uncompressed IDX bytes (checked on ``--from`` imports, whose gzip
framing differs from the official files even when the digits are identical).
"""

from __future__ import annotations

from dataclasses import dataclass

DATASET_NAME = "mnist"
IMAGE_SIDE = 28
NUM_CLASSES = 10
# The most images one file may hold. MNIST has 60,000 (EMNIST digits 240,000); the bound keeps a
# hostile or mistaken file (a 4 GB gzip bomb, an npz of millions of blank images) to ~235 MB of pixels.
MAX_IMAGES = 300_000


@dataclass(frozen=True)
class DataFile:
    """One official MNIST file."""

    name: str  # on-disk and on-mirror name, e.g. "train-images-idx3-ubyte.gz"
    split: str  # "train" or "test"
    kind: str  # "images" or "labels"
    count: int  # number of items
    sha256: str  # of the .gz bytes as published
    size: int  # bytes of the .gz as published
    content_sha256: str  # of the uncompressed IDX bytes

    @property
    def idx_name(self) -> str:
        """The uncompressed file name (``...-ubyte``)."""
        return self.name.removesuffix(".gz")


MNIST_FILES: tuple[DataFile, ...] = (
    DataFile(
        "train-images-idx3-ubyte.gz",
        "train",
        "images",
        60000,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9912422,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    DataFile(
        "train-labels-idx1-ubyte.gz",
        "train",
        "labels",
        60000,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28881,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    DataFile(
        "t10k-images-idx3-ubyte.gz",
        "test",
        "images",
        10000,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1648877,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    DataFile(
        "t10k-labels-idx1-ubyte.gz",
        "test",
        "labels",
        10000,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4542,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
)

SPLITS = ("train", "test")

# Tried in order after any user mirror. The first two serve the official bytes over HTTPS
# (torchvision's and TFDS's buckets); LeCun's page often answers 403 but is the origin.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def file_for(split: str, kind: str) -> DataFile:
    """The spec of one split's images or labels."""
    for spec in MNIST_FILES:
        if spec.split == split and spec.kind == kind:
            return spec
    raise KeyError((split, kind))
