"""What the MNIST data set is: its four files, their pinned checksums, and where to get them.

Two checksums per file: ``sha256`` of the official ``.gz`` bytes (checked on download, and on
``--from`` imports of the ``.gz`` files) and ``content_sha256`` of the uncompressed IDX bytes (checked on
``--from`` imports, whose gzip framing differs from the official files even when the digits are
identical). Where no one has published the uncompressed checksum (KMNIST, QMNIST), only the official
``.gz`` bytes count as official.
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
    content_sha256: str | None  # of the uncompressed IDX bytes; None where it is not pinned
    # None: labels are an IDX vector. A number: they are a table (QMNIST's idx2-int: 8 int32 columns per digit
    # -- class, NIST series, writer, ...) and this column is the class.
    label_column: int | None = None

    @property
    def idx_name(self) -> str:
        """The uncompressed file name (``...-ubyte``; QMNIST's labels ``...-int``)."""
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


FASHION_MNIST_FILES: tuple[DataFile, ...] = (
    # sha256 of the official .gz bytes (zalandoresearch/fashion-mnist data/fashion/, whose README publishes md5s
    # 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...; these files match them); content_sha256 of the IDX bytes.
    DataFile(
        "train-images-idx3-ubyte.gz",
        "train",
        "images",
        60000,
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        26421880,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    DataFile(
        "train-labels-idx1-ubyte.gz",
        "train",
        "labels",
        60000,
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        29515,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    DataFile(
        "t10k-images-idx3-ubyte.gz",
        "test",
        "images",
        10000,
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        4422102,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    DataFile(
        "t10k-labels-idx1-ubyte.gz",
        "test",
        "labels",
        10000,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        5148,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
)

# KMNIST (rois-codh/kmnist): the official .gz files, as pinned by TensorFlow Datasets' url_checksums/kmnist.txt
# (size and sha256 of the bytes at codh.rois.ac.jp). The uncompressed checksums are published nowhere.
KMNIST_FILES: tuple[DataFile, ...] = (
    DataFile(
        "train-images-idx3-ubyte.gz",
        "train",
        "images",
        60000,
        "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        18165135,
        None,
    ),
    DataFile(
        "train-labels-idx1-ubyte.gz",
        "train",
        "labels",
        60000,
        "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        29497,
        None,
    ),
    DataFile(
        "t10k-images-idx3-ubyte.gz",
        "test",
        "images",
        10000,
        "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        3041136,
        None,
    ),
    DataFile(
        "t10k-labels-idx1-ubyte.gz",
        "test",
        "labels",
        10000,
        "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        5120,
        None,
    ),
)

# QMNIST (facebookresearch/qmnist): MNIST's digits rebuilt from NIST SD19. Its test split holds all 60,000
# test-writer digits: the 10,000 of MNIST's test set first, then the 50,000 that MNIST lost. Sizes and
# sha256 of the official .gz files as pinned by TensorFlow Datasets' url_checksums/qmnist.txt.
QMNIST_FILES: tuple[DataFile, ...] = (
    DataFile(
        "qmnist-train-images-idx3-ubyte.gz",
        "train",
        "images",
        60000,
        "9e26a7bf1683614e065d7b76460ccd52807165b3f22561fb782bd9f38c52b51d",
        9704059,
        None,
    ),
    DataFile(
        "qmnist-train-labels-idx2-int.gz",
        "train",
        "labels",
        60000,
        "2c05dc77f6b916b38e455e97ab129a42a444f3dbef09b278a366f82904e0dd9f",
        463024,
        None,
        label_column=0,
    ),
    DataFile(
        "qmnist-test-images-idx3-ubyte.gz",
        "test",
        "images",
        60000,
        "43fc22bf7498b8fc98de98369d72f752d0deabc280a43a7bcc364ab19e57b375",
        9742279,
        None,
    ),
    DataFile(
        "qmnist-test-labels-idx2-int.gz",
        "test",
        "labels",
        60000,
        "9fbcbe594c3766fdf4f0b15c5165dc0d1e57ac604e01422608bb72c906030d06",
        526800,
        None,
        label_column=0,
    ),
)

DIGIT_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))
# KMNIST's ten hiragana (kmnist_classmap.csv: お き す つ な は ま や れ を), romanised so that every terminal
# and matplotlib's default font can show them.
KMNIST_CLASSES: tuple[str, ...] = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")


@dataclass(frozen=True)
class Dataset:
    """One MNIST-format data set: its four files, where to fetch them, and what its ten labels mean."""

    name: str  # the --dataset value and the folder under datasets/
    title: str  # for people: "MNIST", "Fashion-MNIST"
    files: tuple[DataFile, ...]
    mirrors: tuple[str, ...]  # tried in order after any user mirror
    classes: tuple[str, ...]  # the name of label 0, 1, ...
    # Data sets of one task (MNIST and QMNIST: the same digits from the same NIST forms) score each other's
    # models without --any-dataset.
    task: str = ""

    @property
    def content_pinned(self) -> bool:
        """Whether the uncompressed content of every file is pinned: otherwise only the official ``.gz`` bytes
        can be told official (KMNIST, QMNIST), and other bytes may hold the same data without a way to tell."""
        return all(spec.content_sha256 is not None for spec in self.files)

    @property
    def task_name(self) -> str:
        """What its labels mean: the task it shares with other data sets, or its own name."""
        return self.task or self.name

    @property
    def digits(self) -> bool:
        """True when the labels are the digits themselves (MNIST): no names to print beside them."""
        return self.classes == DIGIT_CLASSES


# The one table of data sets.
DATASETS: dict[str, Dataset] = {
    "mnist": Dataset("mnist", "MNIST", MNIST_FILES, DEFAULT_MIRRORS, DIGIT_CLASSES),
    "fashion-mnist": Dataset(
        "fashion-mnist",
        "Fashion-MNIST",
        FASHION_MNIST_FILES,
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
    "kmnist": Dataset(
        "kmnist", "KMNIST", KMNIST_FILES, ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",), KMNIST_CLASSES
    ),
    "qmnist": Dataset(
        "qmnist",
        "QMNIST",
        QMNIST_FILES,
        (
            "https://raw.githubusercontent.com/facebookresearch/qmnist/master/",
            "https://github.com/facebookresearch/qmnist/raw/master/",
        ),
        DIGIT_CLASSES,
        task="mnist",
    ),
}
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)


def get_dataset(name: str = DATASET_NAME) -> Dataset:
    """The table entry for ``name``; ``UsageError`` for an unknown one."""
    from dataclasses import replace

    from mnistctl.errors import UsageError

    found = DATASETS.get(name)
    if found is None:
        raise UsageError(f"unknown dataset {name!r}", hint="use one of: " + ", ".join(DATASETS))
    if name == DATASET_NAME and found.files is not MNIST_FILES:
        found = replace(found, files=MNIST_FILES)  # tests swap MNIST_FILES for generated files
    return found


def same_task(first: str, second: str) -> bool:
    """True when a model trained on data set ``first`` can be scored on ``second``: their labels mean the same."""
    known = {name: entry.task_name for name, entry in DATASETS.items()}
    return known.get(first, first) == known.get(second, second)


def file_for(split: str, kind: str, dataset: str = DATASET_NAME) -> DataFile:
    """The spec of one split's images or labels."""
    for spec in get_dataset(dataset).files:
        if spec.split == split and spec.kind == kind:
            return spec
    raise KeyError((split, kind))
