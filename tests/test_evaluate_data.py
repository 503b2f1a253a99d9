"""``mnistctl evaluate --data DIR``: a labelled folder of real image files, scored by the builtin model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistctl.cli import main
from mnistctl.data.folder import read_labelled_folder
from mnistctl.prediction import LOW_CONFIDENCE
from tests.conftest import run_cli
from tests.synthetic import make_digits

COUNT = 100


def write_digits(root: Path, count: int = COUNT, *, seed: int = 0, side: int = 56, keep=None) -> list[int]:
    """MNIST-like digits as dark-on-white PNGs in ``root/<label>/``, as a person would scan them."""
    images, labels = make_digits(count, seed)
    written = []
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        if keep is not None and int(label) not in keep:
            continue
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        page = 255 - np.kron(image, np.ones((side // 28, side // 28), np.uint8))
        Image.fromarray(page).save(folder / f"{index:03d}.png")
        written.append(int(label))
    return written


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    write_digits(root)
    # Two pairs of digits filed under each other's labels (every class keeps its size): mistakes to list and
    # draw however well the model reads the rest.
    for first, second in (("0", "8"), ("1", "7")):
        one, other = sorted((root / first).glob("*.png"))[0], sorted((root / second).glob("*.png"))[0]
        one.rename(root / second / f"filed-wrong-{one.name}")
        other.rename(root / first / f"filed-wrong-{other.name}")
    return root


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run the app in this process (fast); exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def cli_json(capsys: pytest.CaptureFixture, *args: str) -> dict:
    code, out, err = cli(capsys, "evaluate", "--model", "builtin", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def test_builtin_scores_a_folder_as_predict_reads_it_without_tensorflow(digit_folder):
    # Through the installed entry point, as a user runs it; the import log proves LiteRT did the work.
    result = run_cli(
        "evaluate", "--data", str(digit_folder), "--model", "builtin", "--json", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "tensorflow" not in result.stderr.decode() and "keras" not in result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["model"] == "builtin" and report["backend"] == "litert"
    assert report["images"] == COUNT and report["skipped"] == []
    # These drawn digits are not handwriting, and four are filed under the wrong label: the builtin model
    # (d114d0c4, and cc83321f before it) reads 0.93 of them right by their folders.
    assert report["accuracy"] >= 0.5
    assert 0 <= report["calibration_error"] <= 1 and report["loss"] > 0
    assert [c["support"] for c in report["per_class"]] == [COUNT // 10] * 10
    assert sum(map(sum, report["confusion"])) == COUNT

    # The same preprocessing as predict: evaluate's score is predict's answers checked against the folders.
    predicted = run_cli("predict", str(digit_folder), "--model", "builtin", "--top-k", "1", "--json")
    rows = json.loads(predicted.stdout)["results"]
    labels = np.array([int(Path(row["file"]).parent.name) for row in rows])
    digits = np.array([row["digit"] for row in rows])
    confidences = np.array([row["confidence"] for row in rows])
    assert report["accuracy"] == pytest.approx(np.mean(digits == labels))
    from mnistctl.calibration import expected_calibration_error

    # Top-label ECE needs only each answer and its confidence: rebuild rows whose maximum is that answer.
    rebuilt = np.full((len(rows), 10), 0.0)
    rebuilt[np.arange(len(rows)), digits] = confidences
    assert report["calibration_error"] == pytest.approx(expected_calibration_error(labels, rebuilt), abs=1e-5)
    worst = report["worst"]
    assert len(worst) == min(16, int(np.sum(digits != labels)))
    assert all(w["digit"] != w["label"] and w["file"].startswith(f"{w['label']}/") for w in worst)
    assert [w["confidence"] for w in worst] == sorted((w["confidence"] for w in worst), reverse=True)
    assert worst[0]["confidence"] == pytest.approx(confidences[digits != labels].max(), abs=1e-6)
    # The flag's record is predict's own low_confidence flags, counted on the right and the wrong answers.
    right, low = digits == labels, np.array([row["low_confidence"] for row in rows])
    assert report["low_confidence"] == {
        "below": LOW_CONFIDENCE,
        "wrong": int(np.sum(~right)),
        "wrong_flagged": int(np.sum(~right & low)),
        "right": int(np.sum(right)),
        "right_flagged": int(np.sum(right & low)),
    }


def test_plain_output_names_the_folder_and_lists_the_worst(capsys, digit_folder):
    code, out, _ = cli(capsys, "evaluate", "--data", str(digit_folder), "--model", "builtin")
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith(f"builtin on {COUNT} images in {digit_folder}: accuracy ")
    assert "calibration error " in first and "(litert, " in first
    flagged = out.splitlines()[1]
    assert flagged.startswith(f"flagged low confidence (below {LOW_CONFIDENCE:.0%}): ") and " wrong answer" in flagged
    assert flagged.endswith(" right ones") or flagged.endswith(" right one")
    assert "skipped" not in out
    assert "precision" in out and "true\\pred" in out and "most confused" in out
    table = out.split("worst mistakes")[1].splitlines()
    assert table[1].split() == ["file", "label", "predicted", "confidence"]
    mistakes = round((1 - float(first.split("accuracy ")[1].split(",")[0])) * COUNT)
    assert mistakes >= 1
    assert len([line for line in table[2:] if line.strip()]) == min(5, mistakes)
    assert "100.0%" not in out  # a wrong answer is never shown as certain


def test_bad_files_are_skipped_listed_and_never_fatal(capsys, tmp_path):
    write_digits(tmp_path, 20)
    good = next((tmp_path / "3").glob("*.png"))
    (tmp_path / "3" / "truncated.png").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    (tmp_path / "4" / "x.png").write_text("hello, I am not a PNG")
    Image.new("L", (56, 56), 255).save(tmp_path / "5" / "blank.png")
    (tmp_path / "5" / "notes.txt").write_text("ignored: not an image suffix")
    (tmp_path / "5" / ".hidden.png").write_text("ignored: hidden")
    report = cli_json(capsys, "--data", str(tmp_path))
    assert report["images"] == 20
    skipped = {entry["file"]: entry["error"] for entry in report["skipped"]}
    assert set(skipped) == {"3/truncated.png", "4/x.png", "5/blank.png"}
    assert all(error and "\n" not in error for error in skipped.values())
    assert "no digit" in skipped["5/blank.png"]

    code, out, err = cli(capsys, "evaluate", "--model", "builtin", "--data", str(tmp_path))
    assert code == 0
    assert "3 files skipped" in out and "\n  4/x.png is not an image" in out  # the name once, not "4/x.png: 4/x.png"
    assert "ignored 1 file without an image suffix (e.g. 5/notes.txt)" in err


def test_only_unreadable_files_is_an_error(capsys, tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "x.png").write_text("not a PNG")
    code, _, err = cli(capsys, "evaluate", "--model", "builtin", "--data", str(tmp_path))
    assert code == 1
    assert err.startswith("Error: none of the 1 images") and "1/x.png" in err and len(err.splitlines()) == 1


def test_a_folder_that_is_not_a_digit_is_one_clear_line(tmp_path):
    write_digits(tmp_path, 10)
    (tmp_path / "cat").mkdir()
    Image.new("L", (28, 28), 0).save(tmp_path / "cat" / "tabby.png")
    result = run_cli("evaluate", "--model", "builtin", "--data", str(tmp_path))
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert '"cat"' in stderr and "0 to 9" in stderr and "rename" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/missing"], "no such folder"),
        (["--data", "{tmp}/empty"], "has no label folders"),
        (["--data", "{tmp}/loose"], "1 images but no label folders"),
        (["--data", "{tmp}/unlabelled"], "no images in the label folders"),
        (["--data", "{tmp}/loose", "--split", "test"], "--data and --split"),
        (["--save-worst", "{tmp}/w.png"], "--save-worst works with --data"),
        (["--raw"], "--raw works with --data"),
        (["--data", "{tmp}/loose", "--save-worst", "{tmp}/w.gif"], "cannot save a figure as .gif"),
        (["--data", "{tmp}/loose", "--save-worst", "{tmp}/empty"], "is a folder"),
        (["--data", "{tmp}/loose", "--save-worst", ""], "--save-worst needs a file name"),
        (["--data", "{tmp}/loose", "--save-confusion", "."], "--save-confusion needs a file name"),
    ],
)
def test_usage_errors_exit_2(capsys, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "loose").mkdir()
    Image.new("L", (28, 28), 0).save(tmp_path / "loose" / "a.png")
    (tmp_path / "unlabelled" / "7").mkdir(parents=True)
    (tmp_path / "unlabelled" / "7" / "readme.txt").write_text("")
    code, out, err = cli(capsys, "evaluate", "--model", "builtin", *(a.format(tmp=tmp_path) for a in args))
    assert code == 2 and out == ""
    assert err.startswith("Error: ") and message in err and len(err.strip().splitlines()) == 1


def test_save_worst_draws_the_images_as_given_and_as_seen(capsys, digit_folder, tmp_path):
    target = tmp_path / "out" / "worst.png"
    report = cli_json(capsys, "--data", str(digit_folder), "--save-worst", str(target), "--worst", "4")
    assert len(report["worst"]) == 4
    with Image.open(target) as image:
        assert image.format == "PNG"
        assert image.size[0] > image.size[1] >= 300  # 2x2 mistakes, two panels each: wider than tall
    assert [p.name for p in target.parent.iterdir()] == ["worst.png"]  # no temp file left behind


def test_no_mistakes_still_writes_a_figure_that_says_so(capsys, tmp_path):
    write_digits(tmp_path / "data", 30, keep={1, 2})
    target = tmp_path / "worst.png"
    code, out, err = cli(
        capsys, "evaluate", "--model", "builtin", "--data", str(tmp_path / "data"), "--save-worst", str(target)
    )
    assert code == 0, err
    assert "accuracy 1.0000" in out and "worst mistakes: none" in out
    assert "no mistakes to draw" in err
    with Image.open(target) as image:
        assert image.format == "PNG"


def test_raw_skips_preprocessing(capsys, tmp_path):
    images, labels = make_digits(20, seed=3)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / str(label) / f"{index}.png")
    report = cli_json(capsys, "--data", str(tmp_path), "--raw")
    assert report["raw"] is True and report["images"] == 20 and report["skipped"] == []


def test_recorded_under_the_folder_not_under_an_mnist_split(monkeypatch, digit_folder):
    from mnistctl.evaluation import evaluate_folder
    from mnistctl.registry import Registry

    recorded = []
    monkeypatch.setattr(Registry, "add_evaluation", lambda self, ref, split, metrics: recorded.append((split, metrics)))
    report = evaluate_folder("builtin", digit_folder)
    [(split, metrics)] = recorded
    assert split == f"folder:{digit_folder.resolve()}"
    assert metrics["accuracy"] == report.result.accuracy and metrics["images"] == COUNT
    assert metrics["calibration_error"] == report.calibration_error and "loss" in metrics


def test_models_show_tells_folder_scores_with_the_second_look_from_those_before_it(capsys, trained_home, digit_folder):
    from mnistctl.registry import Registry

    # A score recorded before folders got the second look, as such a record was stored then.
    old = {"accuracy": 0.5, "loss": 1.0, "calibration_error": 0.1, "images": COUNT, "skipped": 0, "raw": False}
    assert Registry().add_evaluation("mlp:1", "folder:/somewhere/older", old)
    code, _, err = cli(capsys, "evaluate", "--model", "mlp:1", "--data", str(digit_folder))
    assert code == 0, err
    code, out, err = cli(capsys, "models", "show", "mlp:1")
    assert code == 0, err
    text = " ".join(out.split())
    assert "accuracy 0.5000 at" in text and ", before the second look" in text
    assert text.count(", second look below 0.99") == 1


def test_folder_reader_is_sorted_general_and_skips_hidden(tmp_path):
    for name in ("dog/b.jpg", "dog/a.PNG", "cat/sub/c.png", "cat/.d.png", ".git/e.png", "dog/f.txt"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    folder = read_labelled_folder(tmp_path)
    assert folder.classes == ("cat", "dog")
    assert [f.as_posix() for f in folder.files] == ["cat/sub/c.png", "dog/a.PNG", "dog/b.jpg"]
    assert folder.labels == (0, 1, 1)
    assert [f.as_posix() for f in folder.ignored] == ["dog/f.txt"]
