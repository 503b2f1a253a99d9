"""Run folders under ``runs/``: one process per run (a lock), damaged ``run.json``, interruptions after the epochs,
SIGTERM, and the hint about abandoned runs.

The fast tests write run folders by hand and run the CLI in a subprocess that fails before any training (no data,
or a refused run); the slow ones train for real on the generated digits.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from filelock import FileLock

from mnistctl.training import CONFIG_FILE, STATE_FILE, TrainConfig
from tests.conftest import registered_refs, run_cli
from tests.test_train import spawn_train, train_json, wait_for_line


def make_run(home: Path, run_id: str, *, age_days: float = 0.0, **changes: object) -> Path:
    """A run folder as ``train`` leaves it before its first checkpoint, with ``changes`` written into run.json."""
    config = asdict(TrainConfig.create("mlp", seed=1, epochs=1, limit=200))
    config.update(changes)
    run = home / "runs" / run_id
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text(json.dumps(config))
    if age_days:
        then = time.time() - age_days * 86400
        os.utime(run / CONFIG_FILE, (then, then))
    return run


def error_line(result) -> str:
    """The one stderr line of a command that failed before doing anything."""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr.decode()
    return lines[0]


# Bug: a run being trained by one process could be resumed by another, and both registered it.


def test_resume_refuses_a_run_that_another_process_holds(isolated_home):
    run = make_run(isolated_home, "mlp-20260101-000000-0001")
    with FileLock(run / ".lock"):
        latest = run_cli("train", "--resume")
        by_id = run_cli("train", "--resume", run.name)
    for result in (latest, by_id):
        assert result.returncode == 1, result.stderr.decode()
        assert f"run {run.name} is still training in another process" in error_line(result)


def test_resume_latest_skips_a_held_run_for_an_older_free_one(isolated_home):
    older = make_run(isolated_home, "mlp-20260101-000000-0001", age_days=1)
    held = make_run(isolated_home, "mlp-20260102-000000-0002")
    with FileLock(held / ".lock"):
        result = run_cli("train", "--resume")
    # The older run is taken (then fails for want of data: nothing here trains).
    assert f"resuming {older.name}" in result.stderr.decode()
    assert "MNIST is not downloaded" in result.stderr.decode()


@pytest.mark.slow
def test_resume_while_another_process_trains_the_run_is_refused(data_home):
    process = spawn_train("--arch", "mlp", "--epochs", "1000", "--limit", "300")
    try:
        wait_for_line(process, b"1/1000")
        run_id = next((data_home / "runs").iterdir()).name
        latest = run_cli("train", "--resume", timeout=300)
        by_id = run_cli("train", "--resume", run_id, timeout=300)
        assert process.poll() is None  # the first process was training all along
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    for result in (latest, by_id):
        assert result.returncode == 1, result.stderr.decode()[-2000:]
        assert f"run {run_id} is still training in another process" in result.stderr.decode()
    assert process.returncode == 130
    assert registered_refs() == []


# Bug: run.json was trusted as written, so a damaged one failed late, or as a usage error, or with a TypeError.


@pytest.mark.parametrize(
    "changes",
    [
        {"epochs": "abc"},
        {"epochs": True},
        {"epochs": 0},
        {"name": "../../evil"},
        {"arch": "nosuch"},
        {"val_split": 1.5},
        {"seed": -1},
        {"learning_rate": float("nan")},
        {"limit": 0},
        {"augment_profile": "nosuch"},
        {"precision": "float8"},
        {"deterministic": "yes"},
        {"surprise": 1},
    ],
    ids=lambda changes: "-".join(f"{key}={value}" for key, value in changes.items()),
)
@pytest.mark.parametrize("resume", [(), ("mlp-20260101-000000-0001",)], ids=["latest", "by-id"])
def test_a_damaged_run_json_is_refused_before_training(isolated_home, changes, resume):
    run = make_run(isolated_home, "mlp-20260101-000000-0001", **changes)
    result = run_cli("train", "--resume", *resume)
    assert result.returncode == 1
    line = error_line(result)
    assert f"run {run.name} is damaged" in line and str(run / CONFIG_FILE) in line
    assert f"delete {run}" in line
    assert (run / CONFIG_FILE).is_file()  # nothing is deleted for the user


@pytest.mark.parametrize("content", ["not json", "[1, 2]", "{}"])
def test_an_unreadable_run_json_is_refused(isolated_home, content):
    run = make_run(isolated_home, "mlp-20260101-000000-0001")
    (run / CONFIG_FILE).write_text(content)
    result = run_cli("train", "--resume", run.name)
    assert result.returncode == 1
    assert f"run {run.name} is damaged" in error_line(result)


def test_damaged_runs_are_listed_as_such(isolated_home):
    make_run(isolated_home, "mlp-20260101-000000-0001", epochs="abc")
    make_run(isolated_home, "mlp-20260101-000000-0002")
    result = run_cli("train", "--resume", "nosuch")
    line = error_line(result)
    assert "interrupted runs: mlp-20260101-000000-0002" in line
    assert "damaged: mlp-20260101-000000-0001" in line


def test_runs_recorded_before_newer_fields_still_load(isolated_home):
    from mnistctl.training import find_run

    old = asdict(TrainConfig.create("fastcnn", seed=1, augment=True))
    for newer in ("augment_strokes", "label_smoothing", "precision", "augment_profile"):
        del old[newer]
    run = isolated_home / "runs" / "fastcnn-20261101-000000-0001"
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text(json.dumps(old))
    assert find_run(run.name, None)[1] == TrainConfig(**old)


# Bug: --resume --val-split F was silently ignored (its default was 0.1, not "not given").


@pytest.mark.parametrize("value", ["0.5", "0.1"])
def test_resume_refuses_val_split(isolated_home, value):
    result = run_cli("train", "--resume", "--val-split", value)
    assert result.returncode == 2
    assert "drop --val-split" in error_line(result)


def test_val_split_still_defaults_to_a_tenth():
    assert TrainConfig.create("mlp", seed=1).val_split == 0.1


# Bug: Ctrl-C after the epochs said only "Error: interrupted", though the run could be resumed.


@pytest.mark.slow
def test_ctrl_c_after_the_epochs_says_how_to_resume(data_home):
    process = spawn_train("--arch", "mlp", "--epochs", "1", "--limit", "200", "--seed", "2")
    wait_for_line(process, b"evaluating on the test set")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    text = stderr.decode()
    assert process.returncode == 130, text[-2000:]
    assert "Traceback" not in text
    assert "Error: training interrupted after 1 of 1 epochs" in text and "mnistctl train --resume mlp-" in text
    assert registered_refs() == []
    report = train_json("--resume")  # nothing left to train: it evaluates and registers
    assert report["model"] == "mlp:1" and report["metrics"]["epochs_trained"] == 1


# Bug: SIGTERM (kill, systemd, docker stop) killed training without a word.


@pytest.mark.slow
def test_sigterm_during_training_keeps_the_run_like_ctrl_c(data_home):
    from mnistctl.training import find_run

    process = spawn_train("--arch", "mlp", "--epochs", "1000", "--limit", "300")
    wait_for_line(process, b"1/1000")
    process.terminate()
    _, stderr = process.communicate(timeout=120)
    text = stderr.decode()
    assert process.returncode == 143, text[-2000:]
    assert "Traceback" not in text
    assert "Error: training terminated (SIGTERM) after" in text and "mnistctl train --resume mlp-" in text
    run = next((data_home / "runs").iterdir())
    state = json.loads((run / STATE_FILE).read_text())
    assert state["epochs_done"] >= 1 and (run / state["checkpoint"]).is_file()
    assert not list(run.glob("*.tmp"))
    assert find_run("latest", None)[0] == run.name  # its lock went with the process
    assert registered_refs() == []


@pytest.mark.slow
def test_sigterm_before_training_exits_143(data_home):
    process = spawn_train("--arch", "mlp", "--epochs", "1", "--limit", "200")
    wait_for_line(process, b"loading TensorFlow")
    process.terminate()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr.decode()[-2000:]
    assert "Traceback" not in stderr.decode()
    assert registered_refs() == []


# Abandoned runs keep their checkpoints forever: train says so.


def test_train_mentions_runs_abandoned_for_a_week(isolated_home):
    old = make_run(isolated_home, "mlp-20260101-000000-0001", age_days=30)
    make_run(isolated_home, "mlp-20260102-000000-0002", age_days=1)
    result = run_cli("train", "--arch", "mlp")
    text = result.stderr.decode()
    assert f"1 interrupted run untouched for more than 7 days in {old.parent}" in text
    assert old.name in text and "mnistctl train --resume RUN_ID" in text
    assert "mlp-20260102-000000-0002" not in text


# A kill between the registry's commit and the folder's removal left a run that --resume registered a second time.


@pytest.mark.slow
def test_resuming_a_run_that_was_registered_already_only_cleans_up(trained_home):
    from mnistctl.registry import Registry

    (version,) = [version for version in Registry().list() if not version.builtin]
    run = make_run(trained_home, version.run_id)
    result = run_cli("train", "--resume", timeout=300)
    assert result.returncode == 1, result.stderr.decode()[-2000:]
    assert f"run {run.name} was already registered as {version.ref}" in result.stderr.decode()
    assert registered_refs() == [version.ref]
    assert not run.exists()
