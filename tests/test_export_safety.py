"""``models export`` never destroys what it should not: user folders, the home folder, the registry, its own inputs.

Also: output paths that cannot work are refused up front with the user's own path in the message (never a temp
name), a file suffix must agree with the format, and the note about calibration that an export cannot carry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnistctl.errors import MnistctlError
from mnistctl.registry import Registry
from tests.conftest import registered_refs, run_cli
from tests.test_registry import register

CALIBRATION = {"temperature": 1.156, "fitted_on": "validation", "images": 500, "ece_before": 0.05, "ece_after": 0.01}


@pytest.fixture
def fake_home(isolated_home):
    """A registry whose version mlp:1 has small fake artifacts ("one", "one-lite"): no TensorFlow needed."""
    register(Registry(), payload=b"one")
    return isolated_home


def _error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert ".tmp" not in lines[0] and "Traceback" not in lines[0]
    return lines[0]


def _cli_in(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``run_cli`` from another working directory (for "-o ." and "-o ..")."""
    executable = Path(sys.executable).with_name("mnistctl")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "mnistctl"]
    return subprocess.run([*command, *args], capture_output=True, cwd=cwd, env=dict(os.environ), timeout=300)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- bug 2: the home folder and the export's own inputs are never an output --------------------------------------


@pytest.mark.parametrize("fmt", ["tflite", "keras"])
def test_export_refuses_to_overwrite_the_registry_even_with_force(fake_home, fmt):
    before = (fake_home / "registry.db").read_bytes()
    result = run_cli("models", "export", "mlp:1", "-f", fmt, "--force", "-o", str(fake_home / "registry.db"))
    assert result.returncode == 2
    assert "home folder" in _error_line(result)
    assert (fake_home / "registry.db").read_bytes() == before
    assert registered_refs() == ["mlp:1"]


def test_export_refuses_any_path_inside_the_home_folder(fake_home, tmp_path):
    blob = Registry().store.path_for(Registry().resolve("mlp:1").artifacts["model.tflite"].sha256)
    link = tmp_path / "link-to-home"
    link.symlink_to(fake_home)
    for target in (fake_home / "exports" / "m.tflite", link / "m.tflite", blob):
        result = run_cli("models", "export", "mlp:1", "-f", "tflite", "--force", "-o", str(target))
        assert result.returncode == 2, target
        assert "home folder" in _error_line(result)
    assert not (fake_home / "exports").exists() and not (fake_home / "m.tflite").exists()
    assert blob.read_bytes() == b"one-lite"


def test_export_refuses_to_write_over_the_builtin_models_own_file():
    from mnistctl import builtin

    source = builtin.artifact_path("model.keras")
    before = source.stat()
    result = run_cli("models", "export", "builtin", "-f", "keras", "--force", "-o", str(source))
    assert result.returncode == 2
    assert "builtin" in _error_line(result)
    after = source.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


# -- bug 1: --force replaces a SavedModel folder, never any other folder --------------------------------------


@pytest.mark.slow
def test_savedmodel_force_leaves_a_folder_of_user_files_alone(trained_home, tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "thesis.txt").write_text("four years of work")
    (folder / "saved_model.pb").write_bytes(b"a SavedModel next to other files is still not ours to delete")
    before = _tree(folder)
    result = run_cli("models", "export", "mlp:1", "-f", "savedmodel", "--force", "-o", str(folder))
    assert result.returncode == 2
    line = _error_line(result)
    assert "not a SavedModel" in line and "thesis.txt" in line
    assert _tree(folder) == before


@pytest.mark.slow
def test_savedmodel_force_refuses_the_home_folder(trained_home):
    before = _tree(trained_home)
    result = run_cli("models", "export", "mlp:1", "-f", "savedmodel", "--force", "-o", str(trained_home))
    assert result.returncode == 2
    assert "home folder" in _error_line(result)
    assert _tree(trained_home) == before and registered_refs() == ["mlp:1"]


@pytest.mark.slow
def test_savedmodel_force_refuses_a_folder_holding_the_home(trained_home, tmp_path):
    parent = trained_home.parent
    (parent / "notes.txt").write_text("keep me")
    result = run_cli("models", "export", "mlp:1", "-f", "savedmodel", "--force", "-o", str(parent))
    assert result.returncode == 2
    assert "home folder" in _error_line(result)
    assert (parent / "notes.txt").read_text() == "keep me" and registered_refs() == ["mlp:1"]


@pytest.mark.slow
@pytest.mark.parametrize("name", [".", ".."])
def test_savedmodel_force_refuses_dot_and_dot_dot(trained_home, tmp_path, name):
    work = tmp_path / "work"
    cwd = work / "sub"
    cwd.mkdir(parents=True)
    (work / "sibling.txt").write_text("keep me")
    (cwd / "mine.txt").write_text("keep me too")
    result = _cli_in(cwd, "models", "export", "mlp:1", "-f", "savedmodel", "--force", "-o", name)
    assert result.returncode == 2
    assert "folder name" in _error_line(result)
    assert (work / "sibling.txt").read_text() == "keep me" and (cwd / "mine.txt").read_text() == "keep me too"


@pytest.mark.slow
def test_savedmodel_force_replaces_an_earlier_export_whole(trained_home, tmp_path):
    target = tmp_path / "out" / "saved"
    first = run_cli("models", "export", "mlp:1", "-f", "savedmodel", "-o", str(target), timeout=300)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    (target / "variables" / "marker").write_bytes(b"")  # foreign: refused
    refused = run_cli("models", "export", "mlp:1", "-f", "savedmodel", "--force", "-o", str(target), timeout=300)
    assert refused.returncode == 2 and "marker" in _error_line(refused)
    (target / "variables" / "marker").unlink()
    again = run_cli("models", "export", "mlp:1", "-f", "savedmodel", "--force", "-o", str(target), timeout=300)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert (target / "saved_model.pb").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["saved"]  # nothing set aside is left behind


@pytest.mark.slow
def test_a_failed_savedmodel_export_keeps_the_old_one(trained_home, tmp_path):
    target = tmp_path / "out" / "saved"
    first = run_cli("models", "export", "mlp:1", "-f", "savedmodel", "-o", str(target), timeout=300)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    before = _tree(target)
    registry = Registry()
    blob = registry.store.path_for(registry.resolve("mlp:1").artifacts["model.keras"].sha256)
    blob.write_bytes(b"damaged")
    failed = run_cli("models", "export", "mlp:1", "-f", "savedmodel", "--force", "-o", str(target), timeout=300)
    assert failed.returncode == 1 and "corrupt" in _error_line(failed)
    assert _tree(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["saved"]


# -- bug 4: outputs that cannot work are named as the user wrote them ----------------------------------------


def test_export_to_a_folder_as_a_file_format_says_give_a_file_name(fake_home, tmp_path):
    folder = tmp_path / "x.tflite"
    folder.mkdir()
    result = run_cli("models", "export", "mlp:1", "-f", "tflite", "--force", "-o", str(folder))
    assert result.returncode == 2
    assert _error_line(result) == f"Error: {folder} is a folder; give a file name"
    assert list(folder.iterdir()) == []


def test_savedmodel_over_a_file_is_refused_with_the_files_name(fake_home, tmp_path):
    target = tmp_path / "model"
    target.write_bytes(b"a file")
    result = run_cli("models", "export", "mlp:1", "-f", "savedmodel", "--force", "-o", str(target))
    assert result.returncode == 2
    assert str(target) in _error_line(result) and "is a file" in _error_line(result)
    assert target.read_bytes() == b"a file"


def test_export_to_an_empty_path_is_a_usage_error(fake_home):
    result = run_cli("models", "export", "mlp:1", "-f", "tflite", "-o", "")
    assert result.returncode == 2
    assert "no file name" in _error_line(result)


def test_atomic_writers_name_the_real_target(tmp_path):
    from mnistctl.fsutil import atomic_write_bytes, atomic_writer, temp_path_for

    for empty in (Path(""), Path("."), Path(".."), Path("/")):
        with pytest.raises(MnistctlError, match="no file name in"):
            temp_path_for(empty)
        with pytest.raises(MnistctlError, match="no file name in"):
            atomic_write_bytes(empty, b"x")
    folder = tmp_path / "grid.png"
    folder.mkdir()
    with pytest.raises(MnistctlError) as caught:
        atomic_write_bytes(folder, b"x")
    assert str(caught.value) == f"{folder} is a folder; give a file name"
    with pytest.raises(MnistctlError, match="is a folder"), atomic_writer(folder) as handle:
        handle.write(b"x")
    blocker = tmp_path / "notes"
    blocker.write_text("a file")
    with pytest.raises(MnistctlError) as caught:
        atomic_write_bytes(blocker / "out.png", b"x")
    assert str(caught.value) == f"{blocker} is a file, not a folder; choose another place for out.png"
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(MnistctlError, match="not a regular file"):
        atomic_write_bytes(pipe, b"x")
    assert pipe.is_fifo() and list(folder.iterdir()) == [] and blocker.read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "notes", "pipe"]


def test_a_long_output_name_still_gets_a_temp_file(tmp_path):
    from mnistctl.fsutil import atomic_write_bytes

    target = tmp_path / ("d" * 250 + ".png")
    atomic_write_bytes(target, b"x")
    assert target.read_bytes() == b"x" and [p.name for p in tmp_path.iterdir()] == [target.name]


# -- bug 5: a suffix that contradicts the format is refused; without --format the suffix decides ----------------


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("tflite", "m.keras"),
        ("keras", "m.tflite"),
        ("h5", "m.keras"),
        ("keras", "m"),
        ("keras", "m.KERAS"),  # Keras itself reads only names ending in ".keras"
        ("savedmodel", "m.tflite"),
    ],
)
def test_a_suffix_that_contradicts_the_format_is_refused(fake_home, tmp_path, fmt, name):
    result = run_cli("models", "export", "mlp:1", "-f", fmt, "-o", str(tmp_path / name))
    assert result.returncode == 2
    assert "--format" in _error_line(result)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("name", "fmt", "payload"), [("m.tflite", "tflite", b"one-lite"), ("m.h5.keras", "keras", b"one")]
)
def test_without_format_the_suffix_decides(fake_home, tmp_path, name, fmt, payload):
    result = run_cli("models", "export", "mlp:1", "-o", str(tmp_path / name), "--json")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["format"] == fmt
    assert (tmp_path / name).read_bytes() == payload


def test_without_format_a_name_without_suffix_asks_for_one(fake_home, tmp_path):
    result = run_cli("models", "export", "mlp:1", "-o", str(tmp_path / "model"))
    assert result.returncode == 2
    assert "--format" in _error_line(result)
    assert not (tmp_path / "model").exists()


# -- bug 6: the calibration an export cannot carry is mentioned ---------------------------------------------------


def test_export_of_a_calibrated_version_says_its_probabilities_are_uncalibrated(isolated_home, tmp_path):
    registry = Registry()
    register(registry, payload=b"plain")
    registry.register(
        name="cal",
        arch="mlp",
        params={"epochs": 1, "calibration": CALIBRATION},
        metrics={},
        layers=[],
        weights_sha256="0" * 64,
        data_fingerprint="",
        environment={},
        artifacts={"model.keras": b"cal", "model.tflite": b"cal-lite"},
    )
    calibrated = run_cli("models", "export", "cal:1", "-o", str(tmp_path / "cal.tflite"), "--json")
    assert calibrated.returncode == 0, calibrated.stderr.decode()
    assert json.loads(calibrated.stdout)["path"] == str(tmp_path / "cal.tflite")
    assert calibrated.stderr.decode().strip() == (
        "note: the exported model gives uncalibrated probabilities; "
        "mnistctl's calibration (temperature 1.156) is stored in the registry only"
    )
    plain = run_cli("models", "export", "mlp:1", "-o", str(tmp_path / "plain.tflite"))
    assert plain.returncode == 0 and plain.stderr.decode() == ""
