"""``mnistctl predict`` through the installed entry point: files, folders, globs, stdin, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistctl.data.loader import load
from mnistctl.inference import Predictor
from mnistctl.prediction import LOW_CONFIDENCE, answer, is_low, predict_readings, readings_picture, weigh_readings
from mnistctl.registry import Registry
from mnistctl.second_look import looked_again
from tests.conftest import REPO, run_cli
from tests.photos import huge_png

pytestmark = pytest.mark.slow


def predict_json(*args: str, input: bytes | None = None) -> tuple[int, dict]:
    result = run_cli("predict", *args, "--json", input=input, timeout=120)
    return result.returncode, json.loads(result.stdout)


def save_digit(path, image: np.ndarray) -> None:
    Image.fromarray(image.astype(np.uint8)).save(path)


def as_photo(image: np.ndarray, *, scale: int = 12, offset: tuple[int, int] = (200, 90)) -> Image.Image:
    """An MNIST-style digit as a photo would show it: dark ink, light uneven paper, large, off-centre."""
    ink = Image.fromarray(image).resize((28 * scale, 28 * scale), Image.BILINEAR)
    canvas = np.full((28 * scale + 300, 28 * scale + 400), 0.0, np.float32)
    y, x = offset
    canvas[y : y + 28 * scale, x : x + 28 * scale] = np.asarray(ink, np.float32)
    gradient = np.linspace(200, 245, canvas.shape[1], dtype=np.float32)[None, :]
    noise = np.random.default_rng(0).normal(0, 4, canvas.shape)
    photo = gradient - canvas / 255 * 170 + noise
    return Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).convert("RGB")


@pytest.fixture
def test_digits(trained_home):
    images, labels = load("test")
    return images[:12], labels[:12]


def test_predict_files_json_matches_the_model(trained_home, test_digits, tmp_path):
    images, _ = test_digits
    for index in range(3):
        save_digit(tmp_path / f"d{index}.png", images[index])
    code, report = predict_json(*(str(tmp_path / f"d{i}.png") for i in range(3)), "--raw", "--top-k", "2")
    assert code == 0 and report["model"] == "mlp:1"
    registry = Registry()
    predictor = Predictor(registry, registry.resolve())
    # The model's answers, with the second look predict gives the unsure ones (this small model is unsure).
    expected = looked_again(images[:3].astype(np.float32), predictor.predict(images[:3]), predictor.predict)
    assert [r["digit"] for r in report["results"]] == expected.argmax(axis=1).tolist()
    assert [r["confidence"] for r in report["results"]] == pytest.approx(expected.max(axis=1).tolist(), abs=1e-6)
    for result in report["results"]:
        assert set(result) == {"file", "digit", "confidence", "top_k", "low_confidence"}
        assert len(result["top_k"]) == 2 and result["top_k"][0] == [result["digit"], result["confidence"]]


def test_photos_of_digits_keep_the_models_answers(trained_home, test_digits, tmp_path):
    images, _ = test_digits
    for index, image in enumerate(images):
        as_photo(image).save(tmp_path / f"photo{index:02d}.jpg", quality=90)
    code, report = predict_json(str(tmp_path))
    assert code == 0
    # The reference: the same pipeline on the clean digit (our generated digits are not MNIST-centred).
    from mnistctl.preprocess import to_mnist

    registry = Registry()
    clean = np.stack([to_mnist(image.astype(np.float32)) for image in images])
    predictor = Predictor(registry, registry.resolve())
    on_originals = looked_again(clean, predictor.predict(clean), predictor.predict).argmax(axis=1)
    on_photos = np.array([r["digit"] for r in report["results"]])
    assert (on_photos == on_originals).mean() >= 0.9


def test_folders_globs_and_stdin(trained_home, test_digits, tmp_path):
    images, _ = test_digits
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    save_digit(tmp_path / "nested" / "a.png", images[0])
    save_digit(tmp_path / "nested" / "deeper" / "b.bmp", images[1])
    (tmp_path / "nested" / "notes.txt").write_text("not an image")
    code, report = predict_json(
        str(tmp_path / "nested"),
        str(tmp_path / "nested" / "*.png"),
        "-",
        "--raw",
        input=(tmp_path / "nested" / "a.png").read_bytes(),
    )
    assert code == 0
    files = [r["file"] for r in report["results"]]
    assert files == [
        str(tmp_path / "nested" / "a.png"),
        str(tmp_path / "nested" / "deeper" / "b.bmp"),
        str(tmp_path / "nested" / "a.png"),
        "-",
    ]


def test_bad_inputs_become_error_rows_and_exit_1(trained_home, test_digits, tmp_path):
    images, _ = test_digits
    good = tmp_path / "good.png"
    save_digit(good, images[0])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    (tmp_path / "text.png").write_text("hello, I am not a PNG")
    Image.new("L", (64, 64), 255).save(tmp_path / "white.png")
    (tmp_path / "no-images").mkdir()
    (tmp_path / "huge.png").write_bytes(huge_png(30000, 30000))
    names = ["good.png", "empty.png", "truncated.png", "text.png", "white.png", "huge.png", "missing.png", "no-images"]
    result = run_cli("predict", *(str(tmp_path / n) for n in names), "--json", timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr.decode()
    rows = json.loads(result.stdout)["results"]
    assert "digit" in rows[0]
    errors = [row["error"] for row in rows[1:]]
    assert len(errors) == 7 and all(error and "\n" not in error for error in errors)
    assert "no such file" in errors[5] and "no images" in errors[6]
    assert "pixel" in errors[4]  # the decompression bomb is refused by size


def test_plain_output_and_show(trained_home, test_digits, tmp_path):
    images, _ = test_digits
    save_digit(tmp_path / "d.png", images[0])
    result = run_cli("predict", str(tmp_path / "d.png"), "--raw", "--show")
    text = result.stdout.decode()
    assert result.returncode == 0
    assert "@" in text  # the 28x28 input drawn in ASCII
    assert f"{tmp_path / 'd.png'}\t" in text


def test_unknown_model_is_one_line(trained_home, tmp_path):
    result = run_cli("predict", "x.png", "--model", "nope")
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        "Error: no model 'nope' in the registry; known names: mlp, builtin; see \"mnistctl models list\""
    ]


def test_predict_does_not_import_tensorflow(trained_home, test_digits, tmp_path):
    images, _ = test_digits
    save_digit(tmp_path / "d.png", images[0])
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mnistctl", "predict", str(tmp_path / "d.png")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tensorflow" not in result.stderr and "keras" not in result.stderr


WILD = REPO / "tests" / "fixtures" / "wild"


def test_an_answer_below_90_percent_is_flagged_low_confidence():
    # Calibrated confidences mean what they say: at 0.85 the model expects to be wrong about 1 time in 7, which
    # is not an answer to act on unchecked; at 0.95, 1 time in 20.
    def probabilities(confidence: float) -> np.ndarray:
        spread = np.full(10, (1 - confidence) / 9)
        spread[7] = confidence
        return spread

    assert answer(probabilities(0.85), 3)["low_confidence"] is True
    assert answer(probabilities(0.89), 3)["low_confidence"] is True
    assert answer(probabilities(0.9), 3)["low_confidence"] is False
    assert answer(probabilities(0.95), 3)["low_confidence"] is False


def test_confidences_are_flagged_and_min_confidence_gives_unsure_rows():
    sure, unsure = WILD / "form_crop-3.jpg", WILD / "form_crop-6.jpg"
    code, plain = predict_json("--model", "builtin", str(sure), str(unsure))
    assert code == 0
    confidences = {Path(r["file"]).name: r["confidence"] for r in plain["results"]}
    threshold = (confidences["form_crop-3.jpg"] + confidences["form_crop-6.jpg"]) / 2
    assert confidences["form_crop-6.jpg"] < threshold < confidences["form_crop-3.jpg"]
    for row in plain["results"]:
        assert row["low_confidence"] is (row["confidence"] < LOW_CONFIDENCE)

    code, gated = predict_json("--model", "builtin", "--min-confidence", f"{threshold:.4f}", str(sure), str(unsure))
    assert code == 0  # unsure is an answer, not an error
    first, second = gated["results"]
    assert first["digit"] == 3 and "unsure" not in first
    assert second["digit"] is None and second["unsure"] is True and second["best_guess"] == 6
    plain_text = run_cli("predict", "--model", "builtin", "--min-confidence", f"{threshold:.4f}", str(unsure))
    assert plain_text.returncode == 0 and b"\tunsure\t" in plain_text.stdout


def test_an_image_of_only_clutter_is_an_error_row_not_a_guess():
    clutter, digit = WILD / "negative-only_lines.jpg", WILD / "form_crop-4.jpg"
    code, result = predict_json("--model", "builtin", str(clutter), str(digit))
    assert code == 1
    lines, digit = result["results"]
    assert "no digit found" in lines["error"] and "digit" not in lines
    assert digit["digit"] == 4


def test_min_confidence_must_be_a_probability():
    result = run_cli("predict", "--model", "builtin", "--min-confidence", "1.5", str(WILD / "form_crop-4.jpg"))
    assert result.returncode == 2 and b"Traceback" not in result.stderr


def _sure(digit: int, confidence: float) -> np.ndarray:
    probabilities = np.full(10, (1 - confidence) / 9, np.float32)
    probabilities[digit] = confidence
    return probabilities


def test_a_second_reading_counts_only_when_it_is_sure_of_another_digit():
    first = _sure(1, 0.99)
    assert weigh_readings(first, _sure(1, 0.97)) is first  # the same digit: no surer, no less sure
    assert weigh_readings(first, _sure(7, 0.6)) is first  # an unsure other reading: a stroke that does not belong
    assert weigh_readings(first, np.full(10, np.nan, np.float32)) is first  # no answer: no say
    both = weigh_readings(first, _sure(7, 0.95))
    np.testing.assert_allclose(both, (first + _sure(7, 0.95)) / 2)
    assert is_low(float(both.max()))  # two sure readings that disagree: flagged, whichever wins


@pytest.mark.parametrize(("first_digit", "other_digit"), [(7, 1), (1, 7)])
def test_two_sure_readings_that_tie_go_to_the_first_readings_digit(first_digit, other_digit):
    """Both readings sure (0.99998 against 0.99999): the mean ties but for a hair, and the first reading's digit
    wins it, whichever is the lower digit and whichever reading was a hair surer."""
    first, other = _sure(first_digit, 0.99998), _sure(other_digit, 0.99999)
    both = weigh_readings(first, other)
    assert both.argmax() == first_digit and is_low(float(both.max()))
    np.testing.assert_allclose(sorted(both), sorted((first + other) / 2))


def test_predict_readings_weighs_each_images_own_readings():
    # A "model" whose answer is written in the picture's first pixel, surer than the second look's threshold
    # (a turned picture loses that pixel).
    def predict(batch):
        return np.stack([_sure(int(image[0, 0]), 0.999) for image in batch])

    def picture(digit):
        image = np.zeros((28, 28), np.float32)
        image[0, 0] = digit
        return image

    readings = [np.stack([picture(3)]), np.stack([picture(1), picture(7)]), np.stack([picture(5), picture(5)])]
    images, probabilities, both = predict_readings(readings, predict)
    assert [int(image[0, 0]) for image in images] == [3, 1, 5]
    assert both.tolist() == [False, True, False]  # only the 1 and 7 were weighed together
    assert probabilities[0].argmax() == 3 and probabilities[0].max() >= 0.99
    assert probabilities[1].max() < 0.9 and set(np.argsort(probabilities[1])[-2:]) == {1, 7}
    assert probabilities[2].argmax() == 5 and probabilities[2].max() >= 0.99


def test_no_images_no_readings():
    images, probabilities, both = predict_readings([], lambda batch: pytest.fail("no images: the model is not run"))
    assert images.shape == (0, 28, 28) and probabilities.shape == (0, 10) and both.shape == (0,)


def test_two_readings_are_shown_side_by_side_or_one_above_the_other_parted_by_a_grey_bar():
    first, second = np.zeros((28, 28), np.float32), np.full((28, 28), 255, np.float32)
    shown = readings_picture(np.stack([first, second]))
    assert shown.shape == (28, 58)
    assert (shown[:, :28] == 0).all() and (shown[:, 28:30] == 96).all() and (shown[:, 30:] == 255).all()
    stacked = readings_picture(np.stack([first, second]), across=False)
    assert stacked.shape == (58, 28) and (stacked[28:30] == 96).all() and (stacked[30:] == 255).all()
    assert readings_picture(first[None]).shape == (28, 28)


def test_raw_images_have_one_reading(tmp_path):
    from mnistctl.preprocess import preprocess

    path = tmp_path / "digit.png"
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(path)
    readings = preprocess(path, path.name, raw=True, readings=True)
    assert readings.shape == (1, 28, 28)
    assert np.array_equal(readings[0], preprocess(path, path.name, raw=True))
