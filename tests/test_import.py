"""``download --from``: importing mnist.npz or a folder of IDX files, and refusing bad content."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnistctl.data.importer import import_dataset
from mnistctl.data.loader import load
from mnistctl.errors import DataMissingError, InvalidDataError
from mnistctl.fsutil import sha256_file
from tests.conftest import run_cli
from tests.synthetic import write_idx_mirror, write_npz

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "mnist"


def dataset_files(home: Path) -> list[str]:
    folder = home / "datasets" / "mnist"
    return sorted(p.name for p in folder.glob("*.gz")) if folder.exists() else []


def test_npz_import_round_trips(tiny_npz, tiny_dataset):
    result = import_dataset(tiny_npz)
    assert [item.status for item in result.files] == ["imported"] * 4
    assert not any(item.record.official for item in result.files)  # generated digits are not MNIST
    for split, x_key, y_key in (("train", "x_train", "y_train"), ("test", "x_test", "y_test")):
        images, labels = load(split)
        np.testing.assert_array_equal(images, tiny_dataset[x_key])
        np.testing.assert_array_equal(labels, tiny_dataset[y_key])


def test_folder_import_accepts_gz_and_raw_idx(tmp_path, tiny_dataset):
    folder = tmp_path / "idx"
    write_idx_mirror(folder, tiny_dataset)
    raw = folder / "train-images-idx3-ubyte"
    raw.write_bytes(gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes()))
    (folder / "train-images-idx3-ubyte.gz").unlink()
    import_dataset(folder)
    images, _ = load("train")
    np.testing.assert_array_equal(images, tiny_dataset["x_train"])


def test_official_gz_files_are_copied_byte_for_byte(tiny_mirror_dir, isolated_home):
    import_dataset(tiny_mirror_dir)
    folder = isolated_home / "datasets" / "mnist"
    for path in tiny_mirror_dir.iterdir():
        assert sha256_file(folder / path.name) == sha256_file(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("y_test"), "lacks y_test"),
        (lambda d: d.update(y_train=d["y_train"] + 10), "labels must be 0..9"),
        (lambda d: d.update(x_train=d["x_train"][:, :27, :]), "28 x 28"),
        (lambda d: d.update(y_test=d["y_test"][:5]), "images but 5 labels"),
        (lambda d: d.update(x_test=d["x_test"].astype(np.float32)), "uint8"),
    ],
)
def test_bad_npz_is_refused_and_nothing_is_written(tmp_path, tiny_dataset, isolated_home, mutate, message):
    dataset = {key: value.copy() for key, value in tiny_dataset.items()}
    mutate(dataset)
    with pytest.raises(InvalidDataError, match=message):
        import_dataset(write_npz(tmp_path / "bad.npz", dataset))
    assert dataset_files(isolated_home) == []


def test_not_an_npz_is_refused(tmp_path):
    fake = tmp_path / "mnist.npz"
    fake.write_text("hello")
    with pytest.raises(InvalidDataError, match=r"not a readable \.npz"):
        import_dataset(fake)


def test_folder_missing_a_file_names_it(tmp_path, tiny_dataset):
    folder = tmp_path / "idx"
    write_idx_mirror(folder, tiny_dataset)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(InvalidDataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        import_dataset(folder)


def test_load_without_data_says_to_download():
    with pytest.raises(DataMissingError, match='run "mnistctl download" first'):
        load("train")


def test_load_notices_a_damaged_file(tiny_npz, isolated_home):
    import_dataset(tiny_npz)
    target = isolated_home / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(DataMissingError, match="--force"):
        load("test")


def test_cli_import_from_npz_json_and_warning(tiny_npz):
    result = run_cli("download", "--from", str(tiny_npz), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [entry["status"] for entry in report["files"]] == ["imported"] * 4
    plain = run_cli("download", "--from", str(tiny_npz))
    assert "differ from the official MNIST" in plain.stderr.decode()


def test_cli_import_of_a_missing_path_is_one_line(tmp_path):
    result = run_cli("download", "--from", str(tmp_path / "nope.npz"))
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        f"Error: {tmp_path / 'nope.npz'} does not exist; pass mnist.npz or a folder of the four IDX files"
    ]


def test_cli_from_with_mirror_is_a_usage_error(tiny_npz):
    result = run_cli("download", "--from", str(tiny_npz), "--mirror", "http://127.0.0.1:9/")
    assert result.returncode == 2
    assert "--from" in result.stderr.decode()


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the real MNIST in ../shared/mnist")
def test_real_mnist_npz_import_is_recognised_as_official(tmp_path, isolated_home):
    from mnistctl.data.download import download

    shutil.copytree(SHARED_MNIST, tmp_path / "real")
    download([str(tmp_path / "real")], include_default_mirrors=False)
    arrays = {}
    for split, x_key, y_key in (("train", "x_train", "y_train"), ("test", "x_test", "y_test")):
        arrays[x_key], arrays[y_key] = load(split)
    npz = write_npz(tmp_path / "mnist.npz", arrays)
    shutil.rmtree(isolated_home / "datasets")
    result = import_dataset(npz)
    assert all(item.record.official for item in result.files)


def test_a_single_npy_array_is_refused_clearly(tmp_path, tiny_dataset):
    path = tmp_path / "x_train.npy"
    np.save(path, tiny_dataset["x_train"])
    with pytest.raises(InvalidDataError, match="single array"):
        import_dataset(path)
