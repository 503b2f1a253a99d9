"""``mnistctl evaluate`` and ``mnistctl inspect`` on a small trained model, through the entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mnistctl.prediction import LOW_CONFIDENCE
from mnistctl.registry import Registry
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def cli_json(*args: str) -> dict:
    result = run_cli(*args, "--json", timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout)


def assert_png(path, *, min_size: int = 100) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_size


def test_evaluate_matches_what_train_reported_and_is_recorded(trained_home):
    trained = Registry().resolve("mlp")
    report = cli_json("evaluate", "--model", "mlp")
    assert report["model"] == "mlp:1" and report["split"] == "test" and report["backend"] == "litert"
    assert report["accuracy"] == pytest.approx(trained.metrics["test_accuracy"], abs=1e-6)
    assert report["loss"] == pytest.approx(trained.metrics["test_loss"], abs=1e-4)
    assert [c["digit"] for c in report["per_class"]] == list(range(10))
    assert sum(map(sum, report["confusion"])) == sum(c["support"] for c in report["per_class"]) == 100
    flagged = report["low_confidence"]
    assert flagged["below"] == LOW_CONFIDENCE and flagged["right"] + flagged["wrong"] == 100
    assert flagged["right"] == round(report["accuracy"] * 100)
    assert 0 <= flagged["wrong_flagged"] <= flagged["wrong"] and 0 <= flagged["right_flagged"] <= flagged["right"]
    shown = cli_json("models", "show", "mlp:1")
    assert shown["evaluations"][-1]["accuracy"] == report["accuracy"]


def test_evaluate_plain_output_and_confusion_heatmap(trained_home, tmp_path):
    target = tmp_path / "cm.png"
    result = run_cli("evaluate", "--save-confusion", str(target))
    text = result.stdout.decode()
    assert result.returncode == 0
    assert text.startswith("mlp:1 on 100 test images: accuracy ")
    assert text.splitlines()[1].startswith(f"flagged low confidence (below {LOW_CONFIDENCE:.0%}): ")
    assert "precision" in text and "true\\pred" in text and "most confused" in text
    assert_png(target)


def test_litert_and_keras_give_the_same_digits(trained_home):
    from mnistctl.data.loader import load
    from mnistctl.inference import Predictor

    registry = Registry()
    version = registry.resolve()
    images, _ = load("test")
    lite = Predictor(registry, version, backend="litert").predict(images)
    keras = Predictor(registry, version, backend="keras").predict(images)
    np.testing.assert_array_equal(lite.argmax(axis=1), keras.argmax(axis=1))
    np.testing.assert_allclose(lite, keras, atol=1e-4)


def test_evaluate_with_an_unknown_model_says_what_exists(trained_home):
    result = run_cli("evaluate", "--model", "cnn")
    assert result.returncode == 1
    assert "known names: mlp" in result.stderr.decode()


def test_inspect_wrong_and_right_grids(trained_home, tmp_path):
    wrong = cli_json("inspect", "--wrong", "9", "--save", str(tmp_path / "wrong.png"))
    assert all(d["predicted"] != d["label"] for d in wrong["digits"])
    right = cli_json("inspect", "--right", "9", "--save", str(tmp_path / "grid.png"))
    assert len(right["digits"]) == 9 and all(d["predicted"] == d["label"] for d in right["digits"])
    assert [d["index"] for d in right["digits"]] == sorted(d["index"] for d in right["digits"])
    assert_png(tmp_path / "grid.png")
    seeded = cli_json("inspect", "--right", "5", "--seed", "3")
    assert seeded == cli_json("inspect", "--right", "5", "--seed", "3")


def test_inspect_random_samples_confusion_history_summary(trained_home, tmp_path):
    assert len(cli_json("inspect", "--random", "6")["digits"]) == 6
    samples = cli_json("inspect", "--samples", "4", "--save", str(tmp_path / "samples.png"))
    assert len(samples["digits"]) == 4
    assert_png(tmp_path / "samples.png")
    run_cli("inspect", "--confusion", "--save", str(tmp_path / "cm.png"))
    assert_png(tmp_path / "cm.png")
    history = cli_json("inspect", "--history", "--save", str(tmp_path / "curves.png"))
    assert len(history["history"]["loss"]) == 3
    assert_png(tmp_path / "curves.png")
    summary = run_cli("inspect", "--summary").stdout.decode()
    assert "Dense" in summary and "669,706" in summary


def test_inspect_draws_digits_in_the_terminal(trained_home):
    result = run_cli("inspect", "--right", "2")
    text = result.stdout.decode()
    assert result.returncode == 0 and text.count("Predicted") == 2
    assert "@" in text  # the ASCII ramp's darkest glyph: ink was drawn


def test_inspect_needs_exactly_one_mode(trained_home):
    assert run_cli("inspect").returncode == 2
    assert run_cli("inspect", "--wrong", "3", "--right", "3").returncode == 2
    assert run_cli("inspect", "--summary", "--save", "x.png").returncode == 2


def test_a_bad_figure_path_fails_first_and_records_nothing(trained_home, tmp_path):
    from tests.test_evaluate_data import write_digits

    write_digits(tmp_path / "digits", 30)
    (tmp_path / "outdir").mkdir()
    for args in (
        ("--save-confusion", str(tmp_path / "cm.xyz")),
        ("--save-confusion", ""),
        ("--save-confusion", str(tmp_path / "outdir")),
        ("--data", str(tmp_path / "digits"), "--save-worst", str(tmp_path / "outdir")),
        ("--data", str(tmp_path / "digits"), "--save-confusion", ""),
    ):
        result = run_cli("evaluate", "--model", "mlp", *args)
        stderr = result.stderr.decode()
        assert result.returncode == 2 and stderr.startswith("Error: ") and len(stderr.splitlines()) == 1, stderr
    assert cli_json("models", "show", "mlp:1")["evaluations"] == []
    assert list((tmp_path / "outdir").iterdir()) == []


def test_evaluate_records_once_the_figures_are_written(trained_home, tmp_path):
    from tests.test_evaluate_data import write_digits

    write_digits(tmp_path / "digits", 30)
    report = cli_json(
        "evaluate", "--model", "mlp", "--data", str(tmp_path / "digits"), "--save-worst", str(tmp_path / "w.png")
    )
    assert_png(tmp_path / "w.png")
    [evaluation] = cli_json("models", "show", "mlp:1")["evaluations"]
    assert evaluation["accuracy"] == report["accuracy"] and evaluation["split"].startswith("folder:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--samples", "3", "--seed", "-1"), "--seed"),
        (("--random", "3", "--seed", "-1"), "--seed"),
        (("--wrong", "3", "--seed", str(2**32)), "--seed"),
        (("--summary", "--seed", "3"), "--seed only applies to --wrong/--right/--random/--samples"),
        (("--confusion", "--seed", "3"), "--seed only applies to --wrong/--right/--random/--samples"),
        (("--history", "--seed", "0"), "--seed only applies to --wrong/--right/--random/--samples"),
    ],
)
def test_inspect_seed_is_bounded_and_only_for_the_grids(trained_home, args, message):
    result = run_cli("inspect", *args)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.startswith("Error: ") and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert result.stdout == b""


def test_inspect_seed_bounds_are_usable(trained_home):
    assert len(cli_json("inspect", "--samples", "3", "--seed", "0")["digits"]) == 3
    assert len(cli_json("inspect", "--random", "3", "--seed", str(2**32 - 1))["digits"]) == 3
