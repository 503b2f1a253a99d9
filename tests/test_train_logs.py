"""What a run leaves to look at besides its version: ``--early-stopping`` (and the best epoch's weights it keeps, also
across an interruption), ``--tensorboard DIR``, and ``metrics.csv`` (in the run folder as training goes, then an
artifact of the version).

Each run trains an MLP on a few hundred generated digits.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from mnistctl.registry import Registry
from mnistctl.run_metrics import METRICS_COLUMNS, METRICS_CSV
from mnistctl.training import STATE_FILE
from tests.conftest import REPO, registered_refs, run_cli
from tests.test_train import spawn_train, train_json, wait_for_line


def train_report(*args: str) -> tuple[dict, str]:
    """``train ... --json``: its JSON document and its stderr."""
    result = run_cli("train", *args, "--json", timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout), result.stderr.decode()


def csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == METRICS_COLUMNS
    return list(reader)


def test_early_stopping_needs_validation_data(isolated_home):
    # Refused before anything is read or trained (no data is even downloaded here).
    for args in (("--val-split", "0"), ("--early-stopping", "0")):
        result = run_cli("train", "--arch", "mlp", "--early-stopping", "3", *args)
        assert result.returncode == 2, result.stderr.decode()
    no_split = run_cli("train", "--arch", "mlp", "--early-stopping", "3", "--val-split", "0")
    assert "--val-split 0" in no_split.stderr.decode() and "Traceback" not in no_split.stderr.decode()
    resumed = run_cli("train", "--resume", "--early-stopping", "3")
    assert resumed.returncode == 2 and "--early-stopping" in resumed.stderr.decode()
    assert not (isolated_home / "runs").exists() or not any((isolated_home / "runs").iterdir())


@pytest.mark.slow
def test_early_stopping_stops_and_registers_the_best_epochs_weights(data_home):
    # 180 images to fit, 20 to validate on, a high learning rate: val_loss soon stops falling.
    report, stderr = train_report(
        "--arch", "mlp", "--limit", "200", "--epochs", "40", "--lr", "0.01", "--seed", "1", "--early-stopping", "2"
    )
    stopping = report["params"]["early_stopping"]
    val_loss = report["history"]["val_loss"]
    best, stopped = stopping["best_epoch"], stopping["stopped_at_epoch"]
    assert stopping["patience"] == 2 and stopped is not None and stopped < 40, stopping
    assert stopped == best + 2 == len(val_loss) == report["metrics"]["epochs_trained"]
    assert val_loss[best - 1] == min(val_loss) < val_loss[-1]
    assert f"stopped early at epoch {stopped} (best: epoch {best})" in stderr
    assert report["metrics"]["val_loss"] == val_loss[best - 1]  # the metrics are the registered epoch's

    # The registered weights are the best epoch's: their loss on the held-out images is its val_loss.
    import numpy as np

    from mnistctl.data.loader import load
    from mnistctl.model_io import load_version_model
    from mnistctl.training import TrainConfig, split_data

    registry = Registry()
    version = registry.resolve(report["model"])
    model = load_version_model(registry, version)
    _, (images, targets) = split_data(*load("train"), TrainConfig.create("mlp", limit=200, seed=1))
    probabilities = np.clip(model.predict(images, verbose=0), 1e-7, 1.0)
    loss = float(np.mean(-np.log((probabilities * targets).sum(axis=1))))
    assert loss == pytest.approx(val_loss[best - 1], rel=1e-3)
    assert loss != pytest.approx(val_loss[-1], rel=1e-3)


@pytest.mark.slow
def test_tensorboard_logs_and_the_metrics_csv_artifact(data_home, tmp_path):
    logs = tmp_path / "tb"
    report = train_json("--arch", "mlp", "--limit", "200", "--epochs", "2", "--seed", "1", "--tensorboard", str(logs))
    run_logs = logs / report["run_id"]
    for split in ("train", "validation"):
        assert list((run_logs / split).glob("events.out.tfevents.*")), list(run_logs.rglob("*"))
    assert not list(run_logs.rglob("*.trace.json.gz"))  # no profile
    assert report["params"]["early_stopping"] is None

    registry = Registry()
    version = registry.resolve(report["model"])
    rows = csv_rows(registry.artifact(version, METRICS_CSV).decode())
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [float(row[key]) for row in rows] == report["history"][key]
    assert [float(row["seconds"]) for row in rows] == report["epoch_seconds"]
    assert all(float(row["learning_rate"]) == pytest.approx(0.001) for row in rows)  # the mlp recipe's Adam

    # The run folder is gone once registered: inspect hands the registered metrics.csv back, byte for byte.
    saved = tmp_path / "mlp-history.csv"
    result = run_cli("inspect", "--history", "-m", report["model"], "--save", str(saved))
    assert result.returncode == 0, result.stderr.decode()
    assert saved.read_bytes() == registry.artifact(version, METRICS_CSV)


def test_history_of_a_version_without_metrics_csv_is_rebuilt_from_its_history(isolated_home, tmp_path):
    """The builtin model predates metrics.csv: the same columns from history.json, learning rates empty."""
    saved = tmp_path / "builtin.csv"
    result = run_cli("inspect", "--history", "-m", "builtin", "--save", str(saved))
    assert result.returncode == 0, result.stderr.decode()
    rows = csv_rows(saved.read_text())
    history = json.loads((REPO / "mnistctl" / "builtin" / "history.json").read_text())
    assert [float(row["val_accuracy"]) for row in rows] == history["history"]["val_accuracy"]
    assert [float(row["seconds"]) for row in rows] == history["epoch_seconds"]
    assert {row["learning_rate"] for row in rows} == {""}
    refused = run_cli("inspect", "--wrong", "3", "-m", "builtin", "--save", str(tmp_path / "wrong.csv"))
    assert refused.returncode == 2 and b"cannot save a figure as .csv" in refused.stderr


@pytest.mark.slow
def test_metrics_csv_and_the_best_epoch_survive_an_interruption(data_home):
    process = spawn_train("--arch", "mlp", "--epochs", "3", "--limit", "300", "--seed", "3", "--early-stopping", "5")
    wait_for_line(process, b"1/3")
    process.kill()
    process.wait(timeout=30)
    assert registered_refs() == []
    (run,) = (data_home / "runs").iterdir()
    state = json.loads((run / STATE_FILE).read_text())
    rows = csv_rows((run / METRICS_CSV).read_text())  # written as training goes
    assert len(rows) == state["epochs_done"] >= 1
    assert state["best_epoch"] >= 1 and (run / state["best_weights"]).is_file()
    assert state["best_val_loss"] == min(state["history"]["val_loss"])

    report = train_json("--resume")
    stopping = report["params"]["early_stopping"]
    assert (
        stopping["patience"] == 5 and stopping["stopped_at_epoch"] is None and report["metrics"]["epochs_trained"] == 3
    )
    assert report["history"]["val_loss"][stopping["best_epoch"] - 1] == min(report["history"]["val_loss"])
    registry = Registry()
    rows = csv_rows(registry.artifact(registry.resolve(report["model"]), METRICS_CSV).decode())
    assert [float(row["loss"]) for row in rows] == report["history"]["loss"]
