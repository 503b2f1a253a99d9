"""``train --data DIR`` (a labelled folder through predict's preprocessing) and ``train --from REF`` (fine-tuning)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistctl.registry import Registry
from tests.test_evaluate_data import cli, write_digits


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """100 generated digits in root/<digit>/, one unreadable file and one blank page among them."""
    root = tmp_path / "mine"
    write_digits(root, 100)
    (root / "3" / "broken.png").write_bytes(b"not a png at all")
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(root / "4" / "blank.png")
    return root


def train_json(capsys: pytest.CaptureFixture, *args: str) -> tuple[dict, str]:
    code, out, err = cli(capsys, "train", "--json", "--seed", "0", *args)
    assert code == 0, err[-3000:]
    # In-process, TFLite's converter prints to stdout too (the installed command keeps it off stdout).
    return json.loads(out[out.index('{\n  "model"') :]), err


def test_train_on_a_labelled_folder_records_it_and_tests_on_its_held_out_part(capsys, labelled):
    # No MNIST in this home: the folder is the whole of the data, test set included.
    report, err = train_json(capsys, "--arch", "mlp", "--epochs", "2", "--data", str(labelled))
    params, metrics = report["params"], report["metrics"]
    folder = str(labelled.resolve())
    assert params["data"]["folder"] == folder and params["data_folder"] == folder
    assert params["data"]["images"] == 100
    skipped = params["data"]["skipped"]
    assert len(skipped) == 2 and any(line.startswith("3/broken.png: ") for line in skipped)
    assert any(line.startswith("4/blank.png: ") for line in skipped)
    assert "broken.png" in err and "blank.png" in err  # listed for the user, not only recorded
    # 10 of the 100 held out for testing, 9 of the other 90 for validation.
    assert metrics["test_on"].startswith(f"folder:{folder} (held out")
    assert params["train_samples"] == 81 and params["val_samples"] == 9
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["test_loss"] > 0
    version = Registry().resolve(report["model"])
    assert version.params["data"] == params["data"] and len(version.data_fingerprint) == 64


def test_the_folder_split_is_shuffled_by_the_seed_not_the_last_fraction(labelled):
    from mnistctl.folder_training import load_folder

    first, again, other = (load_folder(labelled, seed) for seed in (0, 0, 1))
    assert np.array_equal(first.test[1], again.test[1]) and np.array_equal(first.train[0], again.train[0])
    assert not np.array_equal(first.test[1], other.test[1])
    # Sorted by class on disk; the held-out digits are not all nines.
    assert len(set(first.test[1].tolist())) > 3
    assert len(first.test[1]) + len(first.train[1]) == 100


def test_folders_not_named_by_digits_are_a_usage_error(capsys, tmp_path):
    write_digits(tmp_path / "set", 20)
    (tmp_path / "set" / "7").rename(tmp_path / "set" / "cat")
    code, _, err = cli(capsys, "train", "--arch", "mlp", "--data", str(tmp_path / "set"))
    assert code == 2 and '"cat"' in err and "only folders named 0 to 9" in err


def test_a_folder_of_nothing_usable_is_an_error(capsys, tmp_path):
    (tmp_path / "bad" / "1").mkdir(parents=True)
    (tmp_path / "bad" / "1" / "a.png").write_bytes(b"junk")
    code, _, err = cli(capsys, "train", "--arch", "mlp", "--data", str(tmp_path / "bad"))
    assert code == 1 and "none of the 1 images" in err
    code, _, err = cli(capsys, "train", "--arch", "mlp", "--data", str(tmp_path / "missing"))
    assert code == 2 and "no such folder" in err


def test_fine_tuning_a_registered_version_records_its_parent(capsys, trained_home, labelled):
    parent = Registry().resolve("mlp:1")
    report, _ = train_json(capsys, "--from", "mlp:1", "--epochs", "1")
    assert report["model"] == "mlp:2" and report["arch"] == "mlp"
    params = report["params"]
    assert params["parent"] == {"ref": "mlp:1", "weights_sha256": parent.weights_sha256}
    assert params["learning_rate"] == pytest.approx(parent.params["learning_rate"] / 10)
    assert params["optimizer"] == parent.params["optimizer"] and "data" not in params
    assert report["weights_sha256"] != parent.weights_sha256
    # On a folder, with flags overriding the recipe; models show names the parent.
    report, _ = train_json(capsys, "--from", "mlp:1", "--data", str(labelled), "--epochs", "1", "--lr", "0.0005")
    assert report["params"]["parent"]["ref"] == "mlp:1" and report["params"]["data"]["images"] == 100
    assert report["params"]["learning_rate"] == 0.0005 and report["params"]["epochs"] == 1
    code, out, _ = cli(capsys, "models", "show", report["model"])
    assert code == 0 and "fine-tuned from mlp:1" in out


def test_fine_tuning_from_an_unknown_ref_or_another_arch_is_refused(capsys, trained_home):
    code, _, err = cli(capsys, "train", "--from", "nosuch:3")
    assert code != 0 and "nosuch" in err
    code, _, err = cli(capsys, "train", "--from", "mlp:1", "--arch", "cnn")
    assert code == 2 and "contradicts" in err
