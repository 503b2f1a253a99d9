"""stdout that goes away or cannot encode, paths too long or too deep: found by a second hostile sweep.

Each test failed before its fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

EXAMPLE = REPO / "mnistctl" / "builtin" / "examples" / "seven-photo.jpg"


def _into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run mnistctl with stdout a pipe whose reader is already gone (``mnistctl ... | head -0``)."""
    read, write = os.pipe()
    os.close(read)
    executable = Path(sys.executable).with_name("mnistctl")
    try:
        return subprocess.run([str(executable), *args], stdout=write, stderr=subprocess.PIPE, timeout=120, cwd=REPO)
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args", [("models", "list"), ("--help",), ("completion", "bash"), ("predict", str(EXAMPLE.parent))]
)
def test_a_closed_pipe_is_the_reader_gone_exit_not_a_runtime_error(args):
    # Before: exit 1 (the code for "runtime error", and for predict "an image was unreadable").
    result = _into_closed_pipe(*args)
    assert result.returncode == 141, result.stderr.decode()
    assert "Traceback" not in result.stderr.decode() and "Exception ignored" not in result.stderr.decode()


def test_a_file_name_stdout_cannot_encode_is_escaped(tmp_path):
    # Before: rows stopped at the first such name with "unexpected UnicodeEncodeError".
    shutil.copy(EXAMPLE, tmp_path / "ünï€.jpg")
    shutil.copy(EXAMPLE, tmp_path / "z-plain.jpg")
    result = run_cli("predict", str(tmp_path), env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr.decode()
    rows = result.stdout.decode("ascii").splitlines()
    assert len(rows) == 2 and any("\\xfcn\\xef\\u20ac.jpg\t7" in row for row in rows), rows


def test_a_path_too_long_is_its_own_error_row(tmp_path):
    # Before: "Error: File name too long" and no row for the good file.
    result = run_cli("predict", str(EXAMPLE), str(tmp_path / ("a" * 300 + ".png")))
    assert result.returncode == 1
    rows = result.stdout.decode().splitlines()
    assert rows[0].endswith("7:1.000 1:0.000 9:0.000") or "\t7\t" in rows[0]
    assert "too long" in rows[1]


def test_folders_a_thousand_deep_are_walked(tmp_path):
    # Before: "unexpected RecursionError" from Path.rglob, for predict and evaluate --data alike.
    top = tmp_path / "data" / "7"
    top.mkdir(parents=True)
    shutil.copy(EXAMPLE, top / "seven.jpg")
    deep = top
    for _ in range(1100):  # one level at a time: Path.mkdir(parents=True) itself recurses per level
        deep = deep / "d"
        deep.mkdir()
    shutil.copy(EXAMPLE, deep / "deep.jpg")
    try:
        predicted = run_cli("predict", str(tmp_path / "data"))
        assert predicted.returncode == 0, predicted.stderr.decode()
        assert len(predicted.stdout.decode().splitlines()) == 2
        evaluated = run_cli("evaluate", "--model", "builtin", "--data", str(tmp_path / "data"))
        assert evaluated.returncode == 0, evaluated.stderr.decode()
        assert "on 2 images" in evaluated.stdout.decode()
    finally:
        _remove_deep(top)


def _remove_deep(folder: Path) -> None:
    """Delete a tree without recursion: pytest's clean-up of old temp folders, shutil.rmtree and os.walk (Python
    3.11) all recurse once per level and would die with RecursionError on it, failing a later run."""
    stack = [str(folder)]
    while stack:
        with os.scandir(stack[-1]) as entries:
            children = list(entries)
        folders = [entry.path for entry in children if entry.is_dir(follow_symlinks=False)]
        for entry in children:
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        if folders:
            stack += folders
        else:
            os.rmdir(stack.pop())


def test_one_image_is_one_image(tmp_path):
    (tmp_path / "7").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "7" / "seven.jpg")
    evaluated = run_cli("evaluate", "--model", "builtin", "--data", str(tmp_path))
    assert "on 1 image in" in evaluated.stdout.decode()
