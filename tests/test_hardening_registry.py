"""Hardening of refs and the registry: blank and impossible refs, damaged rows, a read-only home, the default model.

Each test here failed before its fix (issue 11, items 1, 2, 4, 10, 11, 15 and 17).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, registered_refs, run_cli


def _digit_png(path: Path) -> Path:
    """A white "1"-ish stroke on black, MNIST-style, so every model gives some answer."""
    pixels = np.zeros((28, 28), np.uint8)
    pixels[5:23, 13:16] = 255
    Image.fromarray(pixels).save(path)
    return path


def _stderr(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode()


def _one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    stderr = _stderr(result)
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# -- item 1: an empty or blank REF, name or alias is a usage error ---------------------------------------------


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_rm_with_a_blank_ref_removes_nothing(trained_home, blank):
    result = run_cli("models", "rm", blank, "--yes")
    assert "reference" in _one_line_error(result, 2) or "invalid" in _stderr(result)
    assert registered_refs() == ["mlp:1"]


@pytest.mark.parametrize(
    "args",
    [
        ("models", "show", ""),
        ("models", "alias", "", "best"),
        ("models", "alias", "mlp:1", ""),
        ("models", "export", "", "-o", "out.keras"),
        ("models", "default", ""),
        ("predict", "--model", "", "IMAGE"),
        ("evaluate", "--model", ""),
        ("inspect", "--model", "", "--wrong", "2"),
    ],
)
def test_blank_refs_are_usage_errors_everywhere(trained_home, tmp_path, args):
    image = _digit_png(tmp_path / "digit.png")
    result = run_cli(*(str(image) if a == "IMAGE" else a for a in args))
    _one_line_error(result, 2)


def test_train_refuses_an_empty_name(data_home):
    result = run_cli("train", "--arch", "mlp", "--name", "", "--limit", "50", "--epochs", "1")
    assert "--name" in _one_line_error(result, 2)
    assert registered_refs() == []


def test_names_with_a_trailing_newline_are_refused():
    from mnistctl.errors import UsageError
    from mnistctl.registry import parse_ref

    with pytest.raises(UsageError):
        parse_ref("mlp\n")


# -- item 2: builtin has one version and no aliases ------------------------------------------------------------


@pytest.mark.parametrize("ref", ["builtin:2", "builtin@x", "builtin:0"])
def test_builtin_with_another_version_or_an_alias_is_not_the_builtin_model(tmp_path, ref):
    result = run_cli("predict", "--model", ref, str(_digit_png(tmp_path / "d.png")))
    assert result.returncode in (1, 2), _stderr(result)
    assert "Traceback" not in _stderr(result) and not result.stdout.strip()


def test_builtin_and_builtin_1_name_the_builtin_model(tmp_path):
    for ref in ("builtin", "builtin:1"):
        result = run_cli("predict", "--model", ref, "--json", str(_digit_png(tmp_path / "d.png")))
        assert result.returncode == 0, _stderr(result)
        assert '"model": "builtin"' in result.stdout.decode()


# -- item 10 and its siblings: numbers too large are usage errors ----------------------------------------------


@pytest.mark.parametrize("ref", ["mlp:999999999999999999999", "mlp:9223372036854775808", "mlp:²"])
def test_huge_version_numbers_are_usage_errors(trained_home, ref):
    assert "invalid version" in _one_line_error(run_cli("models", "show", ref), 2)


def test_largest_version_number_is_simply_not_found(trained_home):
    assert "no model" in _one_line_error(run_cli("models", "show", "mlp:9223372036854775807"), 1)


@pytest.mark.parametrize(
    "flag, value", [("--seed", str(2**70)), ("--epochs", str(10**30)), ("--batch-size", str(10**30))]
)
def test_huge_training_numbers_are_usage_errors(data_home, flag, value):
    result = run_cli("train", "--arch", "mlp", "--limit", "50", flag, value)
    assert flag in _one_line_error(result, 2)


# -- item 4: a damaged row is listed, marked, and can be removed ------------------------------------------------


def _damage(home: Path, column: str, table: str = "versions") -> None:
    with sqlite3.connect(home / "registry.db") as db:
        db.execute(f"UPDATE {table} SET {column} = '{{x'")


@pytest.mark.parametrize("column", ["params", "metrics", "layers", "environment"])
def test_damaged_json_is_listed_marked_and_removable(trained_home, column):
    _damage(trained_home, column)
    listed = run_cli("models", "list")
    assert listed.returncode == 0, _stderr(listed)
    assert "DAMAGED" in listed.stdout.decode() and "mlp:1" in listed.stdout.decode()
    shown = run_cli("models", "show", "mlp:1")
    assert shown.returncode == 0, _stderr(shown)
    assert "DAMAGED" in shown.stdout.decode()
    assert run_cli("models", "list", "--json").returncode == 0
    removed = run_cli("models", "rm", "mlp:1", "--yes")
    assert removed.returncode == 0, _stderr(removed)
    assert registered_refs() == []


def test_a_damaged_version_is_not_used_to_predict(trained_home, tmp_path):
    _damage(trained_home, "params")
    result = run_cli("predict", "--model", "mlp:1", str(_digit_png(tmp_path / "d.png")))
    message = _one_line_error(result, 1)
    assert "damaged" in message and "models rm mlp:1" in message


def test_a_damaged_evaluation_row_does_not_hide_the_version(trained_home):
    assert run_cli("evaluate", "--model", "mlp:1").returncode == 0
    _damage(trained_home, "metrics", table="evaluations")
    shown = run_cli("models", "show", "mlp:1")
    assert shown.returncode == 0, _stderr(shown)
    assert "DAMAGED (evaluations" in run_cli("models", "list").stdout.decode()


# -- item 11: read commands work on a read-only home -----------------------------------------------------------


@pytest.fixture
def read_only_home(trained_home: Path) -> Iterator[Path]:
    """A copy of the trained home that this test's commands cannot write (as root: run as nobody)."""
    base = Path(tempfile.mkdtemp(prefix="mnistctl-ro-"))
    home = base / "home"
    shutil.copytree(trained_home, home)
    for path in [home, *home.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod((mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        if path.is_dir():
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    base.chmod(0o755)
    yield home
    for path in [home, *home.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    shutil.rmtree(base, ignore_errors=True)


def _as_reader(home: Path, *args: str) -> subprocess.CompletedProcess:
    """Run mnistctl with ``home`` as its home, unable to write it: chmod stops an ordinary user; root is stopped
    only by a read-only mount, made here in a private mount namespace (``unshare -m``)."""
    executable = Path(sys.executable).with_name("mnistctl")
    command = [str(executable), *args]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
            pytest.skip("running as root without unshare -m: cannot make a read-only home")
        command = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(home), *command]
    env = {**os.environ, "MNISTCTL_HOME": str(home)}
    return subprocess.run(command, capture_output=True, env=env, timeout=300, cwd=REPO)


def test_read_commands_work_on_a_read_only_home(read_only_home, tmp_path):
    image = _digit_png(tmp_path / "d.png")
    for args in (
        ("models", "list"),
        ("models", "show", "mlp:1"),
        ("models", "default"),
        ("predict", "--model", "mlp:1", str(image)),
        ("predict", str(image)),
        ("evaluate", "--model", "mlp:1"),
    ):
        result = _as_reader(read_only_home, *args)
        assert result.returncode == 0, (args, _stderr(result))
        assert "Traceback" not in _stderr(result)
    evaluated = _as_reader(read_only_home, "evaluate", "--model", "mlp:1")
    assert "not recorded" in _stderr(evaluated) and "read-only" in _stderr(evaluated)


def test_writes_to_a_read_only_home_fail_with_one_line(read_only_home):
    result = _as_reader(read_only_home, "models", "alias", "mlp:1", "best")
    assert result.returncode == 1, _stderr(result)
    assert "Traceback" not in _stderr(result) and _stderr(result).startswith("Error:")


# -- item 15: which model answered, and a default model --------------------------------------------------------


def _register_copy(name: str, *, params: dict | None = None, with_artifacts: bool = True) -> None:
    """Register mlp:1's record again under ``name`` (a second model without a second training)."""
    from mnistctl.registry import Registry

    registry = Registry()
    first = registry.resolve("mlp:1")
    registry.register(
        name=name,
        arch=first.arch,
        params={**first.params, **(params or {})},
        metrics=first.metrics,
        layers=first.layers,
        weights_sha256=first.weights_sha256,
        data_fingerprint=first.data_fingerprint,
        environment=first.environment,
        artifacts={kind: registry.artifact(first, kind) for kind in first.artifacts} if with_artifacts else {},
    )


def test_piped_predict_names_its_model_on_stderr(trained_home, tmp_path):
    result = run_cli("predict", str(_digit_png(tmp_path / "d.png")))
    assert result.returncode == 0, _stderr(result)
    assert "model: mlp:1" in _stderr(result).splitlines()


def test_models_default_is_used_before_the_newest(trained_home, tmp_path):
    image = str(_digit_png(tmp_path / "d.png"))
    _register_copy("other")  # now the newest version
    assert "model: other:1" in _stderr(run_cli("predict", image))
    chosen = run_cli("models", "default", "mlp:1")
    assert chosen.returncode == 0 and "mlp:1" in chosen.stdout.decode(), _stderr(chosen)
    assert "model: mlp:1" in _stderr(run_cli("predict", image))
    assert "default" in run_cli("models", "list").stdout.decode()
    assert "default model: mlp:1" in run_cli("models", "default").stdout.decode()
    # The environment variable still comes first.
    assert "model: other:1" in _stderr(run_cli("predict", image, env={"MNISTCTL_MODEL": "other"}))
    assert run_cli("models", "default", "builtin").returncode == 0
    assert "model: builtin" in _stderr(run_cli("predict", image))
    assert run_cli("models", "default", "--clear").returncode == 0
    assert "model: other:1" in _stderr(run_cli("predict", image))
    # Removing the default version falls back to the newest, not to an error.
    run_cli("models", "default", "mlp:1")
    assert run_cli("models", "rm", "mlp:1", "--yes").returncode == 0
    assert "model: other:1" in _stderr(run_cli("predict", image))


def test_default_alias_is_one_across_names(trained_home):
    from mnistctl.registry import Registry

    _register_copy("other", with_artifacts=False)
    registry = Registry()
    registry.set_alias("mlp:1", "default")
    registry.set_alias("other:1", "default")
    assert registry.default_ref() == "other:1"
    assert registry.resolve("mlp:1").aliases == ()


# -- item 17: papercuts ----------------------------------------------------------------------------------------


def test_unknown_model_error_names_builtin(trained_home):
    message = _one_line_error(run_cli("models", "show", "nosuch"), 1)
    assert "builtin" in message and "mlp" in message


def test_unknown_model_in_an_empty_home_names_builtin():
    message = _one_line_error(run_cli("models", "show", "nosuch"), 1)
    assert "builtin" in message


def test_models_show_prints_thousands_separators(trained_home):
    _register_copy("big", params={"train_samples": 54000, "val_samples": 6000, "epochs": 1}, with_artifacts=False)
    shown = run_cli("models", "show", "big").stdout.decode()
    assert "54,000 train / 6,000 validation" in shown
    assert "1 epoch," in shown and "1 epochs" not in shown


def test_train_says_epoch_once_and_loading_tensorflow(data_home):
    result = run_cli("train", "--arch", "mlp", "--limit", "60", "--epochs", "1", "--val-split", "0")
    assert result.returncode == 0, _stderr(result)
    assert "(1 epoch," in result.stdout.decode()
    assert _stderr(result).splitlines()[0] == "loading TensorFlow…"
    assert "……" not in _stderr(result)


def test_resumed_training_says_what_its_times_cover():
    from types import SimpleNamespace

    from mnistctl.cli.train import _time_spent

    fresh = _time_spent(1, SimpleNamespace(resumed_from_epoch=0, train_seconds=3.0), 9.0)
    assert fresh == "1 epoch, 3.0 s training, 9.0 s in all"
    resumed = _time_spent(4, SimpleNamespace(resumed_from_epoch=2, train_seconds=37.2), 34.4)
    assert "across sessions" in resumed and "in this session from epoch 3" in resumed


def test_the_readme_sample_images_are_read_right():
    # The README's first command, as written, from the repository root.
    assert "mnistctl predict mnistctl/builtin/examples/\n" in (REPO / "README.md").read_text()
    result = run_cli("predict", "mnistctl/builtin/examples/", "--json")
    assert result.returncode == 0, _stderr(result)
    answers = {Path(row["file"]).name: row["digit"] for row in json.loads(result.stdout)["results"]}
    assert answers == {"four-form-crop.jpg": 4, "seven-photo.jpg": 7, "six-pen-on-form.png": 6}


def test_a_version_removed_while_a_command_runs_is_named_so(trained_home):
    # Before: "artifact ... is missing from the store; remove the version ... and train it again".
    from mnistctl.registry import ModelNotFoundError, Registry

    registry = Registry()
    version = registry.resolve("mlp:1")  # predict resolves first, reads the model after preprocessing
    registry.remove("mlp:1")
    with pytest.raises(ModelNotFoundError, match="removed while this command ran"):
        registry.artifact(version, "model.tflite")
