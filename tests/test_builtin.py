"""The model shipped in the package: used when the registry is empty, never removed or shadowed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mnistctl import builtin
from mnistctl.registry import Registry
from tests.conftest import REPO, run_cli
from tests.photos import SEVEN, TWO, as_uint8, draw, gradient, lit, noisy, on_paper, place


def handwritten_photo(path, strokes, side: int = 400) -> None:
    """A dark pen digit on light, unevenly lit paper, off-centre on a larger sheet."""
    coverage = place(draw(strokes, side, width=2.2), side + 200, side + 300, 60, 220)
    paper = lit(on_paper(coverage, paper=215, ink=45), gradient(side + 200, side + 300, 0.85, 1.0))
    Image.fromarray(as_uint8(noisy(paper, 5))).save(path, quality=90)


def test_the_package_ships_a_verified_builtin_model():
    assert builtin.available()
    meta = builtin.metadata()
    for kind, artifact in meta["artifacts"].items():
        data = builtin.artifact_path(kind).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"] and len(data) == artifact["bytes"]
    assert sum(artifact["bytes"] for artifact in meta["artifacts"].values()) <= 5 * 2**20
    assert meta["metrics"]["test_accuracy"] >= 0.99
    assert meta["params"]["command"].startswith("mnistctl train --arch")


def test_empty_home_predicts_with_builtin_and_no_tensorflow(isolated_home, tmp_path):
    handwritten_photo(tmp_path / "seven.jpg", SEVEN)
    handwritten_photo(tmp_path / "two.jpg", TWO)
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "mnistctl",
            "predict",
            str(tmp_path / "seven.jpg"),
            str(tmp_path / "two.jpg"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tensorflow" not in result.stderr and "keras" not in result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == "builtin"
    assert [row["digit"] for row in report["results"]] == [7, 2]
    assert not (isolated_home / "registry.db").exists()


def test_models_list_and_show_include_builtin(isolated_home):
    listed = json.loads(run_cli("models", "list", "--json").stdout)
    assert [m["model"] for m in listed["models"]] == ["builtin"]
    shown = json.loads(run_cli("models", "show", "builtin", "--json").stdout)
    assert shown["arch"] == builtin.metadata()["arch"] and shown["layers"]


def test_builtin_evaluates_but_records_nothing(data_home):
    report = json.loads(run_cli("evaluate", "--json").stdout)
    assert report["model"] == "builtin" and 0 <= report["accuracy"] <= 1
    assert not (data_home / "registry.db").exists() or Registry().list()[0].builtin


def test_registered_models_come_first_but_builtin_stays_reachable(isolated_home, tmp_path):
    from tests.test_registry import register

    register(Registry())
    assert Registry().resolve().ref == "mlp:1"
    assert Registry().resolve("builtin").builtin
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "blank.png")
    assert run_cli("models", "rm", "builtin", "--yes").returncode == 2
    assert run_cli("models", "alias", "builtin", "best").returncode == 2
    assert run_cli("train", "--arch", "mlp", "--name", "builtin").returncode == 2


@pytest.mark.slow
def test_builtin_keras_fallback_gives_the_same_digits(isolated_home):
    from mnistctl.inference import Predictor
    from tests.synthetic import make_digits

    registry = Registry()
    version = registry.resolve("builtin")
    images, _ = make_digits(50, seed=5)
    lite = Predictor(registry, version, backend="litert").predict(images)
    keras = Predictor(registry, version, backend="keras").predict(images)
    np.testing.assert_array_equal(lite.argmax(axis=1), keras.argmax(axis=1))


def test_the_fine_tuning_set_never_shows_the_held_out_digits_and_no_digit_twice_in_one_kind():
    from mnistctl.builtin import build

    plan = build.plan_wild_set(60_000)
    assert len(plan) == sum(build.WILD_SET.values())
    assert not any(start <= index < stop for *_, index in plan for start, stop in build.HELD_OUT)
    synthetic = [index for kind, *_, index in plan if kind != "clean"]
    assert len(set(synthetic)) == len(synthetic)  # each synthetic picture shows a digit of its own
    clean = [index for kind, *_, index in plan if kind == "clean"]
    assert len(set(clean)) == len(clean) == build.WILD_SET["clean"]


def test_the_fine_tuning_set_is_the_same_every_time(tmp_path, monkeypatch):
    from mnistctl.builtin import build

    monkeypatch.setattr(build, "WILD_SET", {"form_crop": 4, "sloppy": 3, "clean": 10})
    count = 60_000
    # Every "digit" is a bar with its index written into two pixels: a clean picture says which it was.
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    images[:, 6:22, 12:16] = 255
    images[:, 0, 0], images[:, 0, 1] = np.arange(count) // 256, np.arange(count) % 256
    labels = np.arange(count) % 10
    assert build.write_wild_set(tmp_path / "first", images, labels) == 17
    build.write_wild_set(tmp_path / "second", images, labels)

    def contents(root):
        return {path.relative_to(root): path.read_bytes() for path in sorted(root.rglob("*.*"))}

    assert len(contents(tmp_path / "first")) == 17 and contents(tmp_path / "first") == contents(tmp_path / "second")
    planned = {n: index for kind, _, n, index in build.plan_wild_set(count) if kind == "clean"}
    for path in sorted((tmp_path / "first").glob("*/clean-*.png")):
        pixels = np.asarray(Image.open(path))
        assert int(pixels[0, 0]) * 256 + int(pixels[0, 1]) == planned[int(path.stem.split("-")[1])]


def test_the_fine_tuning_set_draws_a_quarter_of_its_ones_and_sevens_in_continental_style(tmp_path, monkeypatch):
    from mnistctl.builtin import build

    monkeypatch.setattr(build, "WILD_SET", {"clean": 800})
    count = 60_000
    one = np.zeros((28, 28), dtype=np.uint8)
    one[5:23, 13:16] = 255  # a straight "1"
    seven = as_uint8(draw(SEVEN, 28, width=2.2) * 255)
    labels = np.where(np.arange(count) % 2 == 0, 1, 7)
    images = np.where((labels == 1)[:, None, None], one, seven).astype(np.uint8)
    build.write_wild_set(tmp_path, images, labels)
    for label, digit in ((1, one), (7, seven)):
        pictures = sorted(tmp_path.glob(f"{label}/clean-*.png"))
        styled = sum(np.count_nonzero((np.asarray(Image.open(path)) >= 128) & (digit < 128)) > 4 for path in pictures)
        assert 0.15 * len(pictures) <= styled <= 0.35 * len(pictures), (label, styled, len(pictures))
