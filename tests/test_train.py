"""``mnistctl train`` end to end: the installed entry point in subprocesses, real Keras, tiny data.

Each run trains for one epoch on a few hundred generated digits, so the whole file takes about a
minute or two on two cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistctl.registry import Registry
from tests.conftest import REPO, registered_refs, run_cli

pytestmark = pytest.mark.slow

QUICK = ("--epochs", "1", "--limit", "200")


def train_json(*args: str, env: dict | None = None) -> dict:
    result = run_cli("train", *args, "--json", env=env, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout)


def spawn_train(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mnistctl", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_line(process: subprocess.Popen, needle: bytes, timeout: float = 240) -> list[bytes]:
    """Read stderr lines until one contains ``needle``; return what was read."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"never saw {needle!r}; stderr so far: {b''.join(seen)[-2000:]!r}")


def test_train_mlp_registers_a_version_and_reports_json(data_home):
    report = train_json("--arch", "mlp", *QUICK)
    assert report["model"] == "mlp:1" and report["name"] == "mlp" and report["version"] == 1
    assert report["arch"] == "mlp" and report["epochs"] == 1
    assert report["params"]["train_samples"] == 180 and report["params"]["val_samples"] == 20
    assert 0.0 <= report["metrics"]["test_accuracy"] <= 1.0 and report["metrics"]["test_loss"] > 0
    assert set(report["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(report["weights_sha256"]) == 64 and report["train_seconds"] > 0
    shown = json.loads(run_cli("models", "show", "mlp", "--json").stdout)
    assert shown["metrics"] == report["metrics"]
    assert set(shown["artifacts"]) == {"model.keras", "model.tflite", "history.json", "metrics.csv"}
    assert shown["environment"]["keras"].startswith("3.")
    assert not (data_home / "runs").exists() or not any((data_home / "runs").iterdir())


def test_train_cnn_with_name_and_no_validation(data_home):
    report = train_json("--arch", "cnn", *QUICK, "--val-split", "0", "--name", "digits")
    assert report["model"] == "digits:1" and report["arch"] == "cnn"
    assert report["params"]["val_samples"] == 0 and report["params"]["optimizer"] == "Adadelta"
    assert set(report["history"]) == {"loss", "accuracy"}


def test_same_seed_gives_identical_weights_in_two_processes(data_home):
    first = train_json("--arch", "mlp", *QUICK, "--seed", "7")
    second = train_json("--arch", "mlp", *QUICK, "--seed", "7")
    assert first["weights_sha256"] == second["weights_sha256"]
    assert first["metrics"] == second["metrics"]
    third = train_json("--arch", "mlp", *QUICK, "--seed", "8")
    assert third["weights_sha256"] != first["weights_sha256"]


def test_four_concurrent_trainings_get_four_versions(data_home):
    processes = [spawn_train("--arch", "mlp", *QUICK, "--json") for _ in range(4)]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs[0][1][-2000:]
    refs = sorted(json.loads(stdout)["model"] for stdout, _ in outputs)
    assert refs == ["mlp:1", "mlp:2", "mlp:3", "mlp:4"]
    assert Registry().integrity_check() == "ok"


def kill_after_the_first_epoch(arch: str, epochs: int) -> None:
    """Start training ``arch`` on 300 images, SIGKILL it once epoch 1 is reported; nothing is registered."""
    process = spawn_train("--arch", arch, "--epochs", str(epochs), "--limit", "300", "--seed", "3")
    wait_for_line(process, f"1/{epochs}".encode())
    process.kill()
    process.wait(timeout=30)
    assert registered_refs() == []


def test_sigkill_during_an_epoch_then_resume(data_home):
    kill_after_the_first_epoch("mlp", 3)
    runs = list((data_home / "runs").iterdir())
    assert len(runs) == 1 and "checkpoint-1.keras" in [p.name for p in runs[0].glob("checkpoint-*.keras")]
    report = train_json("--resume")
    assert report["model"] == "mlp:1" and report["metrics"]["epochs_trained"] == 3
    assert len(report["history"]["loss"]) == 3  # the epochs before the kill are kept
    assert not any((data_home / "runs").iterdir())


def test_sigkill_during_registration_then_resume(data_home):
    result = run_cli("train", "--arch", "mlp", *QUICK, env={"MNISTCTL_CRASH_POINT": "before-commit"}, timeout=300)
    assert result.returncode == -9
    assert registered_refs() == []
    assert Registry().integrity_check() == "ok"
    resumed = run_cli("train", "--resume", "--name", "mlp", "--json", timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert registered_refs() == ["mlp:1"]


def test_ctrl_c_keeps_the_checkpoint_and_says_how_to_resume(data_home):
    process = spawn_train("--arch", "mlp", "--epochs", "50", "--limit", "300")
    wait_for_line(process, b"1/50")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    text = stderr.decode()
    assert "Traceback" not in text
    assert "mnistctl train --resume mlp-" in text
    run = next((data_home / "runs").iterdir())
    assert list(run.glob("checkpoint-*.keras"))


def test_resume_without_an_interrupted_run_is_a_clear_error(data_home):
    result = run_cli("train", "--resume")
    assert result.returncode == 1
    assert "no interrupted run" in result.stderr.decode()


def test_train_without_data_says_to_download(isolated_home):
    result = run_cli("train", "--arch", "mlp")
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        f"Error: MNIST is not downloaded ({Path(isolated_home) / 'datasets/mnist/train-images-idx3-ubyte.gz'}"
        ' is missing); run "mnistctl download" first'
    )


def test_train_flags_are_validated(data_home):
    assert run_cli("train").returncode == 2  # --arch missing
    assert run_cli("train", "--arch", "mlp", "--val-split", "1.5").returncode == 2
    assert run_cli("train", "--arch", "mlp", "--epochs", "0").returncode == 2
    assert run_cli("train", "--arch", "mlp", "--name", "bad name").returncode == 2


def test_diverged_training_registers_nothing_and_says_so(data_home):
    # Before: the NaN weights were registered and predict printed "9 nan" from then on.
    result = run_cli("train", "--arch", "mlp", "--lr", "1e12", "--limit", "200", "--epochs", "3")
    assert result.returncode == 1, result.stderr.decode()
    assert "diverged" in result.stderr.decode() and "--lr" in result.stderr.decode()
    assert result.stdout == b"" and "Traceback" not in result.stderr.decode()
    assert registered_refs() == []
