"""``--dataset``: the one table of MNIST-format data sets, and download, train, predict and evaluate on them.

Fashion-MNIST is stood in for by generated IDX files of its format (the real files are not in CI).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistctl.data import spec as dataset_spec
from mnistctl.data.download import RetryPolicy, download, mirror_list
from mnistctl.errors import DownloadError, UsageError
from mnistctl.fsutil import sha256_file
from mnistctl.paths import dataset_dir
from tests.conftest import run_cli
from tests.mirror_server import Fault, MirrorServer
from tests.synthetic import make_dataset, make_digits, write_idx_mirror

FAST = RetryPolicy(timeout=2, retries=0, backoff=0)
FASHION = dataset_spec.DATASETS["fashion-mnist"].classes


def test_the_table_pins_every_file_of_every_data_set():
    assert set(dataset_spec.DATASETS) == {"mnist", "fashion-mnist", "kmnist", "qmnist"}
    for entry in dataset_spec.DATASETS.values():
        assert len(entry.classes) == 10 and entry.mirrors
        assert sorted((f.split, f.kind) for f in entry.files) == sorted(
            (s, k) for s in dataset_spec.SPLITS for k in ("images", "labels")
        )
        for spec in entry.files:
            assert re.fullmatch("[0-9a-f]{64}", spec.sha256) and spec.size > 0
            # The uncompressed checksum is pinned where it is published, and never made up where it is not.
            assert spec.content_sha256 is None or re.fullmatch("[0-9a-f]{64}", spec.content_sha256)
    fashion = dataset_spec.get_dataset("fashion-mnist")
    assert fashion.classes[7] == "Sneaker" and not fashion.digits and dataset_spec.get_dataset("mnist").digits
    # The same file names as MNIST, other bytes: the folder and the checksums keep them apart.
    assert {f.sha256 for f in fashion.files}.isdisjoint(f.sha256 for f in dataset_spec.MNIST_FILES)
    kmnist, qmnist = dataset_spec.get_dataset("kmnist"), dataset_spec.get_dataset("qmnist")
    assert kmnist.classes[0] == "o" and kmnist.mirrors[0].startswith("http://codh.rois.ac.jp/kmnist/")
    assert qmnist.digits and dataset_spec.file_for("test", "images", "qmnist").count == 60000
    assert [f.label_column for f in qmnist.files if f.kind == "labels"] == [0, 0]
    assert dataset_spec.file_for("test", "labels", "qmnist").name == "qmnist-test-labels-idx2-int.gz"


def test_qmnist_scores_mnist_models_and_kmnist_does_not():
    assert dataset_spec.same_task("mnist", "qmnist") and dataset_spec.same_task("qmnist", "mnist")
    assert not dataset_spec.same_task("mnist", "kmnist") and not dataset_spec.same_task("qmnist", "fashion-mnist")
    assert dataset_spec.same_task("kmnist", "kmnist") and not dataset_spec.same_task("my-own", "mnist")


def test_an_unknown_data_set_is_refused():
    with pytest.raises(UsageError, match="unknown dataset 'emnist'"):
        dataset_spec.get_dataset("emnist")
    result = run_cli("download", "--dataset", "emnist")
    assert result.returncode == 2 and b"fashion-mnist" in result.stderr and b"qmnist" in result.stderr


def _pinned_mirror(folder: Path, monkeypatch: pytest.MonkeyPatch, dataset: str, data: dict) -> Path:
    """Generated files of ``dataset``'s format (its names; QMNIST's label tables), pinned in the table in place
    of the official ones."""
    entry = dataset_spec.DATASETS[dataset]
    specs = write_idx_mirror(folder, data, entry.files)
    monkeypatch.setitem(dataset_spec.DATASETS, dataset, replace(entry, files=specs))
    return folder


def _fetch(folder: Path, dataset: str):
    """Download ``dataset`` from a real HTTP server over ``folder``."""
    server = MirrorServer(folder).start()
    try:
        return download([server.url], policy=FAST, dataset=dataset)
    finally:
        server.stop()


@pytest.fixture
def fashion_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _pinned_mirror(tmp_path / "fashion-mirror", monkeypatch, "fashion-mnist", make_dataset(200, 50, seed=7))


def test_download_fetches_and_verifies_into_the_data_sets_own_folder(fashion_mirror: Path):
    result = _fetch(fashion_mirror, "fashion-mnist")
    folder = dataset_dir("fashion-mnist")
    assert result.dataset == "fashion-mnist" and result.folder == folder
    for spec in dataset_spec.get_dataset("fashion-mnist").files:
        assert sha256_file(folder / spec.name) == spec.sha256
    assert not (dataset_dir("mnist")).exists()  # MNIST's folder is untouched
    assert json.loads((folder / "manifest.json").read_text())["dataset"] == "fashion-mnist"


def test_a_corrupt_file_from_a_data_sets_mirror_is_refused(fashion_mirror: Path):
    server = MirrorServer(fashion_mirror, faults={"t10k-images-idx3-ubyte.gz": Fault("corrupt")}).start()
    try:
        with pytest.raises(DownloadError, match="checksum mismatch"):
            download([server.url], policy=FAST, dataset="fashion-mnist")
    finally:
        server.stop()
    assert not (dataset_dir("fashion-mnist") / "t10k-images-idx3-ubyte.gz").exists()


def test_each_data_set_has_its_own_default_mirrors(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MNISTCTL_NO_DEFAULT_MIRRORS")
    fashion = mirror_list(dataset="fashion-mnist")
    assert fashion[0] == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert not set(fashion) & set(mirror_list())


@pytest.fixture
def qmnist_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _pinned_mirror(tmp_path / "qmnist-mirror", monkeypatch, "qmnist", make_dataset(120, 60, seed=5))


def test_qmnist_downloads_and_loads_the_class_column_of_its_label_tables(qmnist_mirror: Path):
    from mnistctl.data.idx import read_idx_file
    from mnistctl.data.loader import load

    _fetch(qmnist_mirror, "qmnist")
    folder = dataset_dir("qmnist")
    table = read_idx_file(folder / "qmnist-test-labels-idx2-int.gz")
    assert table.shape == (60, 8) and table.dtype == np.int32  # the file as published: all eight columns
    images, labels = load("test", dataset="qmnist")
    assert images.shape == (60, 28, 28) and labels.dtype == np.uint8
    assert np.array_equal(labels, table[:, 0])
    assert np.array_equal(labels, make_dataset(train=120, test=60, seed=5)["y_test"])


def test_unpinned_content_replacing_official_qmnist_is_refused_as_unverifiable(
    qmnist_mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Only QMNIST's .gz bytes are pinned: the same digits, uncompressed, cannot be told official."""
    import gzip

    from mnistctl.data.importer import import_dataset

    entry = dataset_spec.DATASETS["qmnist"]
    unpinned = tuple(replace(spec, content_sha256=None) for spec in entry.files)
    monkeypatch.setitem(dataset_spec.DATASETS, "qmnist", replace(entry, files=unpinned))
    assert all(item.record.official for item in import_dataset(qmnist_mirror, dataset="qmnist").files)
    plain = tmp_path / "plain"
    plain.mkdir()
    for spec in unpinned:
        (plain / spec.idx_name).write_bytes(gzip.decompress((qmnist_mirror / spec.name).read_bytes()))
    with pytest.raises(UsageError, match="cannot be verified as the same"):
        import_dataset(plain, dataset="qmnist")
    forced = import_dataset(plain, dataset="qmnist", force=True)
    assert not any(item.record.official for item in forced.files)


def test_a_kmnist_file_that_is_not_the_pinned_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = _pinned_mirror(tmp_path / "kmnist-mirror", monkeypatch, "kmnist", make_dataset(60, 30, seed=2))
    # The real KMNIST checksums stay pinned for one file: the generated stand-in must fail them.
    entry = dataset_spec.DATASETS["kmnist"]
    files = tuple(
        spec if spec.name != "t10k-labels-idx1-ubyte.gz" else dataset_spec.KMNIST_FILES[3] for spec in entry.files
    )
    monkeypatch.setitem(dataset_spec.DATASETS, "kmnist", replace(entry, files=files))
    with pytest.raises(DownloadError, match=r"t10k-labels-idx1-ubyte\.gz from any mirror.*expected 5120\)"):
        _fetch(folder, "kmnist")
    assert not (dataset_dir("kmnist") / "t10k-labels-idx1-ubyte.gz").exists()


def test_a_broken_qmnist_label_table_is_one_clear_error(tmp_path: Path, isolated_home: Path):
    import gzip

    from mnistctl.data.idx import to_idx

    data = make_dataset(train=40, test=20, seed=4)
    source = tmp_path / "qmnist"
    write_idx_mirror(source, data, dataset_spec.QMNIST_FILES)
    table = np.zeros((20, 8), dtype=np.int32)
    table[:, 0] = 12  # a class out of 0..9 (a column mix-up: the NIST series where the class should be)
    (source / "qmnist-test-labels-idx2-int.gz").write_bytes(gzip.compress(to_idx(table)))
    result = run_cli("download", "--dataset", "qmnist", "--from", str(source))
    assert result.returncode == 1, result.stderr.decode()
    lines = result.stderr.decode().strip().splitlines()
    assert "labels must be 0..9, found 12..12" in lines[0] and "Traceback" not in result.stderr.decode()
    assert not dataset_dir("qmnist").exists() or not list(dataset_dir("qmnist").glob("*.gz"))

    (source / "qmnist-test-labels-idx2-int.gz").write_bytes(gzip.compress(to_idx(np.zeros((20, 0), np.int32))))
    empty = run_cli("download", "--dataset", "qmnist", "--from", str(source))
    assert empty.returncode == 1 and b"needs a column 0" in empty.stderr


def test_an_mnist_model_is_scored_on_qmnist_without_any_dataset(tmp_path: Path, trained_home: Path):
    """QMNIST is MNIST's task: its 60,000 test digits score an MNIST model (here a generated stand-in)."""
    data = make_dataset(train=100, test=70, seed=9)
    write_idx_mirror(tmp_path / "qmnist", data, dataset_spec.QMNIST_FILES)
    imported = run_cli("download", "--dataset", "qmnist", "--from", str(tmp_path / "qmnist"))
    assert imported.returncode == 0, imported.stderr.decode()
    # Re-encoded IDX is never called official where only the .gz checksums are pinned.
    assert b"not the official QMNIST .gz files" in imported.stderr

    scored = run_cli("evaluate", "-m", "mlp:1", "--dataset", "qmnist", "--json")
    assert scored.returncode == 0, scored.stderr.decode()
    document = json.loads(scored.stdout)
    assert document["dataset"] == "qmnist" and document["images"] == 70
    evaluations = json.loads(run_cli("models", "show", "mlp:1", "--json").stdout)["evaluations"]
    assert [e["images"] for e in evaluations if e["split"] == "qmnist:test"] == [70]
    # inspect shows QMNIST's 70 test digits, not the model's own MNIST test set (100 here).
    shown = run_cli("inspect", "-m", "mlp:1", "--random", "100", "--dataset", "qmnist", "--json")
    assert shown.returncode == 0, shown.stderr.decode()
    document = json.loads(shown.stdout)
    assert document["dataset"] == "qmnist" and len(document["digits"]) == 70
    confusion = json.loads(run_cli("inspect", "-m", "mlp:1", "--confusion", "--dataset", "qmnist", "--json").stdout)
    assert sum(map(sum, confusion["confusion"])) == 70
    kmnist = run_cli("evaluate", "-m", "mlp:1", "--dataset", "kmnist")
    assert kmnist.returncode == 2 and b"trained on MNIST, not KMNIST" in kmnist.stderr


def test_kmnist_samples_are_titled_with_romanised_hiragana(tmp_path: Path, isolated_home: Path):
    write_idx_mirror(tmp_path / "kmnist", make_dataset(train=50, test=20, seed=6), dataset_spec.KMNIST_FILES)
    assert run_cli("download", "--dataset", "kmnist", "--from", str(tmp_path / "kmnist")).returncode == 0
    shown = run_cli("inspect", "--samples", "6", "--dataset", "kmnist", "--json", "--seed", "1")
    assert shown.returncode == 0, shown.stderr.decode()
    records = json.loads(shown.stdout)["digits"]
    assert all(r["label_name"] == dataset_spec.KMNIST_CLASSES[r["label"]] for r in records)
    grid = tmp_path / "kmnist.png"
    assert run_cli("inspect", "--samples", "6", "--dataset", "kmnist", "--save", str(grid)).returncode == 0
    assert Image.open(grid).size[0] > 0


def _png(path: Path, image: np.ndarray) -> Path:
    Image.fromarray(image.astype(np.uint8)).save(path)
    return path


@pytest.mark.slow
def test_train_predict_and_evaluate_on_another_data_set(tmp_path: Path, isolated_home: Path):
    data = make_dataset(train=300, test=100, seed=11)
    write_idx_mirror(tmp_path / "fashion", data)
    imported = run_cli("download", "--dataset", "fashion-mnist", "--from", str(tmp_path / "fashion"))
    assert imported.returncode == 0, imported.stderr.decode()
    assert b"Fashion-MNIST ready in" in imported.stderr and b"official Fashion-MNIST" in imported.stderr

    trained = run_cli("train", "--dataset", "fashion-mnist", "--arch", "mlp", "--epochs", "2", "--seed", "1", "--json")
    assert trained.returncode == 0, trained.stderr.decode()[-2000:]
    ref = json.loads(trained.stdout)["model"]
    from mnistctl.registry import Registry

    params = Registry().resolve(ref).params
    assert params["dataset"] == "fashion-mnist" and params["classes"] == list(FASHION)

    image = _png(tmp_path / "item.png", data["x_test"][0])
    predicted = run_cli("predict", "-m", ref, "--raw", "--json", str(image))
    assert predicted.returncode == 0, predicted.stderr.decode()
    row = json.loads(predicted.stdout)["results"][0]
    assert isinstance(row["digit"], int) and row["label"] == FASHION[row["digit"]]  # digit stays the index
    plain = run_cli("predict", "-m", ref, "--raw", str(image))
    assert plain.stdout.decode().split("\t")[1] == row["label"]

    own = run_cli("evaluate", "-m", ref, "--json")  # default: the data set it was trained on
    assert own.returncode == 0, own.stderr.decode()
    assert json.loads(own.stdout)["dataset"] == "fashion-mnist"

    refused = run_cli("evaluate", "-m", ref, "--dataset", "mnist")
    assert refused.returncode == 2 and b"trained on Fashion-MNIST, not MNIST" in refused.stderr
    assert b"--any-dataset" in refused.stderr

    mnist = tmp_path / "mnist"
    write_idx_mirror(mnist, make_dataset(train=100, test=50, seed=3))
    assert run_cli("download", "--from", str(mnist)).returncode == 0
    crossed = run_cli("evaluate", "-m", ref, "--dataset", "mnist", "--any-dataset", "--json")
    assert crossed.returncode == 0, crossed.stderr.decode()
    assert json.loads(crossed.stdout)["dataset"] == "mnist"
    _class_names_travel_with_the_model(ref, isolated_home, image)


def _class_names_travel_with_the_model(ref: str, home: Path, image: Path) -> None:
    """The registry, evaluate's tables, inspect's grids and serve's answers name a Fashion-MNIST model's classes."""
    from tests.serving import Server
    from tests.test_serve_api import post_files, request

    listed = run_cli("models", "list")
    assert [line.split()[2] for line in listed.stdout.decode().splitlines() if line.startswith(ref)] == [
        "fashion-mnist"
    ]
    documents = json.loads(run_cli("models", "list", "--json").stdout)["models"]
    assert {document["model"]: document["data"] for document in documents}[ref] == "fashion-mnist"

    scored = json.loads(run_cli("evaluate", "-m", ref, "--json").stdout)
    assert [row["label"] for row in scored["per_class"]] == list(FASHION)
    table = run_cli("evaluate", "-m", ref).stdout.decode()
    assert "9 Ankle boot" in table and "most confused:" in table

    # inspect shows the model's own data set (Fashion-MNIST's test images, not MNIST's), titled with names.
    shown = run_cli("inspect", "-m", ref, "--random", "5", "--json")
    assert shown.returncode == 0, shown.stderr.decode()
    records = json.loads(shown.stdout)["digits"]
    assert all(
        r["label_name"] == FASHION[r["label"]] and r["predicted_name"] == FASHION[r["predicted"]] for r in records
    )
    grid = home / "grid.png"
    assert run_cli("inspect", "-m", ref, "--random", "4", "--save", str(grid)).returncode == 0
    assert Image.open(grid).size[0] > 0
    samples = json.loads(run_cli("inspect", "--samples", "3", "--dataset", "fashion-mnist", "--json").stdout)
    assert samples["dataset"] == "fashion-mnist" and all("label_name" in r for r in samples["digits"])
    refused = run_cli("inspect", "-m", ref, "--wrong", "3", "--dataset", "mnist")
    assert refused.returncode == 2 and b"trained on fashion-mnist, not mnist" in refused.stderr

    with Server("--model", ref, home=home) as server:
        status, document = post_files(server.wait_ready(), ("image", "item.png", image.read_bytes()), query="?raw=true")
        status_models, _, listing = request(server, "GET", "/v1/models")
    assert status == 200, document
    answer = document["results"][0]
    assert answer["label"] == FASHION[answer["digit"]]
    entry = next(entry for entry in json.loads(listing)["models"] if entry["model"] == ref)
    assert status_models == 200 and entry["classes"] == list(FASHION) and entry["dataset"] == "fashion-mnist"


def test_an_mnist_model_is_refused_on_another_data_set(trained_home: Path):
    refused = run_cli("evaluate", "-m", "mlp:1", "--dataset", "fashion-mnist")
    assert refused.returncode == 2 and b"trained on MNIST, not Fashion-MNIST" in refused.stderr
    missing = run_cli("evaluate", "-m", "mlp:1", "--dataset", "fashion-mnist", "--any-dataset")
    assert missing.returncode != 0 and b"mnistctl download --dataset fashion-mnist" in missing.stderr
    plain = run_cli(
        "predict", "-m", "mlp:1", "--raw", "--json", str(_png(trained_home / "d.png", make_digits(1)[0][0]))
    )
    for row in json.loads(plain.stdout)["results"]:
        assert "label" not in row  # a digit model's answers are the digits themselves


def test_resume_refuses_a_dataset_flag(data_home):
    # Before: --dataset was silently ignored by --resume (the run keeps its own data set).
    result = run_cli("train", "--resume", "--dataset", "fashion-mnist")
    assert result.returncode == 2 and "--dataset" in result.stderr.decode()


def test_fastcnns_recipe_trains_longer_on_fashion_mnist():
    """4 epochs is MNIST's count; Fashion-MNIST needs 12 to clear 91% (tests/bench/RESULTS.md)."""
    from mnistctl.training import TrainConfig

    assert TrainConfig.create("fastcnn").epochs == 4
    assert TrainConfig.create("fastcnn", dataset="fashion-mnist").epochs == 12
    assert TrainConfig.create("fastcnn", dataset="fashion-mnist", epochs=3).epochs == 3
    assert TrainConfig.create("mlp", dataset="fashion-mnist").epochs == 4
