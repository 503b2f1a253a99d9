"""What commands print and write: tables on a real terminal of any width, file names that cannot forge rows
or inject markup, and figure paths checked before any work."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistctl.cli._output import printable
from tests.conftest import REPO, run_cli
from tests.synthetic import make_digits

EXAMPLE = REPO / "mnistctl" / "builtin" / "examples" / "seven-photo.jpg"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A name that, printed as is, reads as a second row: "FAKE.png  7  1.000  7:1.000".
FORGED = "b\nFAKE.png\t7\t1.000\t7:1.000.png"
MARKUP = "[bold red]x[link=https:example.com]y.png"  # no "/": a file name cannot hold one


def run_in_terminal(
    *args: str, cwd: Path = REPO, env: dict | None = None, timeout: float = 120
) -> tuple[int, str, str]:
    """The installed entry point with stdout on a real pseudo-terminal (stderr piped apart); exit code, stdout
    without ANSI codes, stderr."""
    import pty

    leader, follower = pty.openpty()
    executable = Path(sys.executable).with_name("mnistctl")
    process = subprocess.Popen(
        [str(executable), *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(leader)
        process.kill()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    out = ANSI.sub("", b"".join(chunks).decode(errors="replace")).replace("\r\n", "\n")
    return code, out, stderr


# --- a terminal of any width shows the results --------------------------------------------------------------------


@pytest.mark.parametrize("columns", ["0", "1", "12", "30"])
def test_a_tiny_columns_value_never_hides_the_results(tmp_path, columns):
    shutil.copy(EXAMPLE, tmp_path / "7.jpg")
    code, out, err = run_in_terminal("predict", "7.jpg", "--model", "builtin", cwd=tmp_path, env={"COLUMNS": columns})
    assert code == 0, err
    assert "model builtin" in out and "file" in out and "confidence" in out
    assert any(line.split()[:2] == ["7.jpg", "7"] for line in out.splitlines()), out
    code, out, err = run_in_terminal("models", "list", env={"COLUMNS": columns})
    assert code == 0, err
    assert "model" in out and "builtin" in out


# --- file names are shown, never obeyed ----------------------------------------------------------------------------


def test_printable_escapes_control_characters_only():
    assert printable("digits/7 – ünïcode.png") == "digits/7 – ünïcode.png"
    assert printable(FORGED) == "b\\nFAKE.png\\t7\\t1.000\\t7:1.000.png"
    assert printable("a\x1b[31mb\rc\u202ed\u2028e") == "a\\x1b[31mb\\rc\\u202ed\\u2028e"
    assert printable(os.fsdecode(b"bad\xff.png")) == "bad\\udcff.png"


def test_a_file_name_cannot_forge_a_plain_text_row(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / FORGED)
    result = run_cli("predict", str(tmp_path / FORGED), "--model", "builtin")
    assert result.returncode == 0, result.stderr.decode()
    [line] = result.stdout.decode().splitlines()
    assert line.split("\t")[0] == str(tmp_path / printable(FORGED)) and line.split("\t")[1] == "7"
    document = json.loads(run_cli("predict", str(tmp_path / FORGED), "--model", "builtin", "--json").stdout)
    assert [row["file"] for row in document["results"]] == [str(tmp_path / FORGED)]  # JSON keeps the real name


def test_a_file_name_cannot_forge_a_table_row_or_inject_markup(tmp_path):
    for name in (FORGED, MARKUP):
        shutil.copy(EXAMPLE, tmp_path / name)
    (tmp_path / "[red]broken.png").write_text("not an image")
    code, out, err = run_in_terminal(
        "predict", FORGED, MARKUP, "[red]broken.png", "--model", "builtin", cwd=tmp_path, env={"COLUMNS": "200"}
    )
    assert code == 1, err  # the broken image is an error row
    lines = out.splitlines()
    assert not any(line.lstrip().startswith("FAKE") for line in lines), out
    assert printable(FORGED) in out, out
    assert MARKUP in out and "[red]broken.png" in out


def write_named_digits(root: Path, names: list[str], *, label: int = 1, seed: int = 5) -> None:
    """Digits that are not ``label`` saved in ``root/<label>/`` under ``names``: every one is a mistake."""
    images, labels = make_digits(40, seed)
    folder = root / str(label)
    folder.mkdir(parents=True, exist_ok=True)
    others = [image for image, digit in zip(images, labels, strict=True) if digit not in (label, 7)]
    for name, image in zip(names, others, strict=False):
        Image.fromarray(255 - np.kron(image, np.ones((2, 2), np.uint8))).save(folder / name, format="PNG")


def test_evaluate_folder_lists_names_escaped_in_text_and_real_in_json(tmp_path):
    names = [FORGED, MARKUP, "$\\foo$.png", "ok.png"]
    write_named_digits(tmp_path / "data", names)
    (tmp_path / "data" / "1" / "un\nreadable.png").write_text("not an image")
    result = run_cli("evaluate", "--model", "builtin", "--data", str(tmp_path / "data"))
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert not any(line.lstrip().startswith(("FAKE", "readable")) for line in out.splitlines()), out
    assert "  1/un\\nreadable.png " in out and f"1/{printable(FORGED)}" in out and f"1/{MARKUP}" in out
    code, shown, err = run_in_terminal(
        "evaluate", "--model", "builtin", "--data", "data", cwd=tmp_path, env={"COLUMNS": "200"}
    )
    assert code == 0, err
    assert f"1/{MARKUP}" in shown and f"1/{printable(FORGED)}" in shown
    document = json.loads(run_cli("evaluate", "--model", "builtin", "--data", str(tmp_path / "data"), "--json").stdout)
    assert {w["file"] for w in document["worst"]} == {f"1/{name}" for name in names}
    assert [s["file"] for s in document["skipped"]] == ["1/un\nreadable.png"]


def test_worst_mistakes_figure_shows_dollar_signs_in_names_as_text(tmp_path):
    write_named_digits(tmp_path / "data", ["$\\foo$.png", "$x^$.png", "a$b$c.png"])
    target = tmp_path / "worst.png"
    result = run_cli("evaluate", "--model", "builtin", "--data", str(tmp_path / "data"), "--save-worst", str(target))
    assert result.returncode == 0, result.stderr.decode()
    with Image.open(target) as image:
        assert image.format == "PNG"


# --- figure paths are checked before any work ----------------------------------------------------------------------

COMMANDS = {
    "inspect-wrong": ("inspect", "--wrong", "3", "--save"),
    "inspect-samples": ("inspect", "--samples", "3", "--save"),
    "inspect-confusion": ("inspect", "--confusion", "--save"),
    "evaluate": ("evaluate", "--model", "builtin", "--save-confusion"),
    "evaluate-data-worst": ("evaluate", "--model", "builtin", "--data", "{tmp}/data", "--save-worst"),
    "evaluate-data-confusion": ("evaluate", "--model", "builtin", "--data", "{tmp}/data", "--save-confusion"),
}
TARGETS = {
    "bad-suffix": ("{tmp}/g.xyz", "cannot save a figure as .xyz"),
    "empty": ("", "needs a file name"),
    "dot": (".", "needs a file name"),
    "dotdot": ("{tmp}/..", "needs a file name"),
    "folder": ("{tmp}/outdir", "is a folder"),
    "too-long": ("{tmp}/" + "x" * 252 + ".png", "is too long"),  # 256 bytes, one more than a file system allows
    "under-a-file": ("{tmp}/notes.txt/g.png", "notes.txt is a file, not a folder"),
    # Never /dev/null here: code without the check replaces it with a PNG (as root, for every process).
    "fifo": ("{tmp}/pipe", "not a regular file"),
}


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS.keys())
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_figure_path_is_checked_before_any_work(tmp_path, command, target):
    # The home has no MNIST: any work before the check would fail with "run mnistctl download first" (exit 1).
    (tmp_path / "outdir").mkdir()
    (tmp_path / "notes.txt").write_text("keep me")
    os.mkfifo(tmp_path / "pipe")
    write_named_digits(tmp_path / "data", ["a.png", "b.png"])
    before = sorted(tmp_path.rglob("*"))
    path, message = target
    result = run_cli(*(part.format(tmp=tmp_path) for part in (*command, path)))
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.startswith("Error: ") and len(stderr.strip().splitlines()) == 1, stderr
    assert message in stderr and "Traceback" not in stderr
    assert result.stdout == b""
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no temp file left
    assert (tmp_path / "notes.txt").read_text() == "keep me" and (tmp_path / "pipe").is_fifo()


def test_two_figures_may_not_share_a_file(tmp_path):
    write_named_digits(tmp_path / "data", ["a.png"])
    result = run_cli(
        "evaluate", "--model", "builtin", "--data", str(tmp_path / "data"), "--save-worst", str(tmp_path / "fig.png"),
        "--save-confusion", str(tmp_path / "new" / ".." / "fig.png"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "--save-worst and --save-confusion name the same file" in result.stderr.decode()
    assert not (tmp_path / "fig.png").exists()


def test_a_figure_in_a_new_folder_is_written(tmp_path):
    write_named_digits(tmp_path / "data", ["a.png", "b.png"])
    target = tmp_path / "new" / "deeper" / "cm.svg"
    result = run_cli(
        "evaluate", "--model", "builtin", "--data", str(tmp_path / "data"), "--save-confusion", str(target)
    )
    assert result.returncode == 0, result.stderr.decode()
    assert target.read_text().lstrip().startswith("<?xml")
    assert [p.name for p in target.parent.iterdir()] == ["cm.svg"]


def test_an_error_quoting_a_file_name_stays_one_line(tmp_path):
    # Before: the folder name's newline split the error in two lines (the second could pass for anything).
    labelled = tmp_path / "data"
    (labelled / "x\nError: fake").mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(labelled / "x\nError: fake" / "a.png")
    result = run_cli("evaluate", "--data", str(labelled))
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "x\\nError: fake" in lines[0], lines
