"""The draw-a-digit page of ``mnistctl serve`` in a real browser: headless Chromium draws a 7 with the mouse,
uploads a photo, clears, asks for a token, fits a phone; the page's MNIST-style preprocessing matches the library's.

Needs Playwright (the dev extra) and a Chromium: Debian's ``chromium`` (``.ci/run`` installs it where it may),
or the one named by ``MNISTCTL_CHROMIUM``. Without them the tests skip, saying which is missing. Screenshots
are saved to ``$MNISTCTL_ARTIFACTS`` (default ``tests/artifacts/``, not committed) and their paths printed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tests.serving import Server

SEVEN_PHOTO = REPO / "mnistctl" / "builtin" / "examples" / "seven-photo.jpg"
# Chromium's background services reach for Google's hosts; on a closed network that is only noise and delay.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# A "7" as the mouse draws it, in fractions of the board: the top bar, then the long diagonal stroke.
SEVEN_STROKES = [[(0.28, 0.22), (0.72, 0.22), (0.64, 0.40), (0.55, 0.60), (0.47, 0.80)]]
ANSWERED = "document.body.dataset.state === 'idle' && document.getElementById('result').dataset.digit !== ''"


def chromium_executable() -> str | None:
    candidates = [os.environ.get("MNISTCTL_CHROMIUM", "")]
    candidates += [shutil.which(name) or "" for name in ("chromium", "chromium-browser", "google-chrome")]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("MNISTCTL_ARTIFACTS") or REPO / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_screenshot(page, name: str, *, full_page: bool = True) -> Path:
    path = artifacts_dir() / name
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (it is in the dev extra: pip install -e '.[dev]')"
    )
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium found: install Debian's chromium (apt-get install chromium) or set MNISTCTL_CHROMIUM")
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=30_000)
        except sync_api.Error as exc:
            pytest.skip(f"Chromium at {executable} could not be started: {str(exc).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture
def server_url(isolated_home: Path) -> Iterator[str]:
    with Server("--model", "builtin") as server:
        yield server.url


@pytest.fixture
def page(browser, server_url: str):
    # Reduced motion: the bars do not animate, so a screenshot shows them at their final length.
    context = browser.new_context(viewport={"width": 1100, "height": 820}, reduced_motion="reduce")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(server_url + "/")
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Press, move along each stroke, release: real mouse events on the board."""
    box = page.locator("#pad").bounding_box()

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    for stroke in strokes:
        page.mouse.move(*at(*stroke[0]))
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*at(*point), steps=8)
        page.mouse.up()


def seen_pixels(page, canvas: str = "seen") -> np.ndarray:
    """The 28x28 preview as the page drew it (grey levels); ``canvas``: its id ("seen-other": the second reading)."""
    values = page.evaluate(
        "(id) => Array.from(document.getElementById(id).getContext('2d').getImageData(0, 0, 28, 28).data)", canvas
    )
    return np.asarray(values, dtype=np.uint8).reshape(28, 28, 4)[:, :, 0]


def bar_values(page) -> list[str]:
    return page.locator("#bars .bar .bar-value").all_inner_texts()


def test_drawing_a_seven_shows_seven_with_bars_and_the_image_the_model_saw(page) -> None:
    draw(page, SEVEN_STROKES)
    page.wait_for_function(ANSWERED, timeout=15_000)

    assert page.inner_text("#answer").strip() == "7"
    assert "confident" in page.inner_text("#confidence")
    assert page.locator("#bars .bar").count() == 10
    assert page.locator("#bars .bar.top").get_attribute("data-digit") == "7"
    assert all(value.endswith("%") for value in bar_values(page))
    assert "7" in page.text_content("#live")  # the aria-live region announces the answer
    seen = seen_pixels(page)
    assert seen.max() == 255 and (seen > 0).sum() > 20  # the preview is drawn: a digit, white on black
    assert page.get_attribute("#seen", "data-drawn") == "true"
    save_screenshot(page, "serve-page.png")

    page.click("#clear")
    page.wait_for_function("document.getElementById('result').dataset.digit === ''")
    assert page.inner_text("#answer").strip() == "?"
    assert seen_pixels(page).max() == 0
    assert page.evaluate("() => window.mnistctl.mnistPixels(document.getElementById('pad'))") is None

    # Escape clears too, from the keyboard.
    draw(page, SEVEN_STROKES)
    page.wait_for_function(ANSWERED, timeout=15_000)
    page.keyboard.press("Escape")
    page.wait_for_function("document.getElementById('result').dataset.digit === ''")
    assert all(value == "–" for value in bar_values(page))


def test_uploading_a_photo_shows_its_answer_and_input(page) -> None:
    page.set_input_files("#file", str(SEVEN_PHOTO))
    page.wait_for_function(ANSWERED, timeout=15_000)

    assert page.inner_text("#answer").strip() == "7"
    assert "seven-photo.jpg" in page.inner_text("#source")
    assert page.locator("#bars .bar.top").get_attribute("data-digit") == "7"
    assert page.is_visible("#photo")
    assert seen_pixels(page).max() > 200  # the server's "input": what the model saw in the photo
    save_screenshot(page, "serve-page-photo.png")


def test_a_photo_read_two_ways_shows_both_readings_until_the_next_photo(page, tmp_path: Path) -> None:
    """A 7 whose bar stands apart from its stem is read without the bar and with it: both 28x28s are drawn,
    side by side; drawing on the board, or a photo read one way, hides the second again."""
    from PIL import Image

    from tests.photos import two_stroke_seven

    seven = tmp_path / "two-stroke-seven.png"
    Image.fromarray(two_stroke_seven(5).astype(np.uint8)).save(seven)
    page.set_input_files("#file", str(seven))
    page.wait_for_function(ANSWERED, timeout=15_000)
    assert page.is_visible("#low")
    assert page.is_visible("#seen-other")
    assert page.inner_text("#seen-caption").startswith("Two readings")
    first = seen_pixels(page)
    second = seen_pixels(page, "seen-other")
    assert (second.astype(int) - first > 100).sum() > 20  # the bar, only in the second reading
    one, other = page.locator("#seen").bounding_box(), page.locator("#seen-other").bounding_box()
    assert other["x"] >= one["x"] + one["width"] and abs(other["y"] - one["y"]) < 1  # side by side
    save_screenshot(page, "serve-page-two-readings.png")

    # Drawing on the board starts afresh: one 28x28 again, captioned as the drawing's.
    draw(page, SEVEN_STROKES)
    assert not page.is_visible("#seen-other")
    assert page.inner_text("#seen-caption") == "The 28×28 image the model saw"

    page.set_input_files("#file", str(SEVEN_PHOTO))
    page.wait_for_function(ANSWERED + " && !document.getElementById('seen-other').checkVisibility()", timeout=15_000)
    assert page.inner_text("#answer").strip() == "7"
    assert not page.is_visible("#seen-other")
    assert not page.inner_text("#seen-caption").startswith("Two readings")


def test_live_predictions_while_drawing_never_pile_up(page) -> None:
    """Answers come while the pen moves, throttled, with one request in flight at a time."""
    page.add_init_script(
        """(() => {
            const fetchOriginal = window.fetch;
            window.pixelRequests = { sent: 0, open: 0, most: 0 };
            window.fetch = async (url, options) => {
                if (!String(url).includes('/v1/predict/pixels')) return fetchOriginal(url, options);
                const count = window.pixelRequests;
                count.sent++; count.open++; count.most = Math.max(count.most, count.open);
                try { return await fetchOriginal(url, options); } finally { count.open--; }
            };
        })()"""
    )
    page.reload()
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    moves = 0
    for step in range(60):  # a slow stroke: ~1.2 s of pen movement
        fraction = step / 59
        page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + (0.2 + 0.6 * fraction) * box["height"])
        moves += 1
        page.wait_for_timeout(20)
    answered_while_drawing = page.evaluate("() => document.getElementById('result').dataset.digit !== ''")
    page.mouse.up()
    page.wait_for_function(ANSWERED, timeout=15_000)

    count = page.evaluate("() => window.pixelRequests")
    assert answered_while_drawing  # live: an answer before the pen is lifted
    assert count["most"] == 1
    assert 2 <= count["sent"] < moves / 2
    assert page.inner_text("#answer").strip() == "1"


def test_a_model_picked_on_the_page_is_the_one_asked(page) -> None:
    """With several models in the registry the page offers them; the one picked goes with each request."""
    listing = {
        "default": "builtin",
        "models": [
            {"model": "builtin", "arch": "fastcnn", "test_accuracy": 0.99, "aliases": []},
            {"model": "builtin:1", "arch": "fastcnn", "test_accuracy": 0.99, "aliases": ["same"]},
        ],
    }
    page.route("**/v1/models", lambda route: route.fulfill(json=listing))
    page.reload()
    page.wait_for_selector("#model-select", state="visible", timeout=10_000)
    assert page.input_value("#model-select") == "builtin"
    page.select_option("#model-select", "builtin:1")
    with page.expect_request("**/v1/predict/pixels") as request:
        draw(page, SEVEN_STROKES)
    assert request.value.post_data_json["model"] == "builtin:1"
    page.wait_for_function(ANSWERED, timeout=15_000)
    assert page.inner_text("#answer").strip() == "7"


def test_a_server_with_a_token_asks_for_it_and_the_page_sends_it(browser, isolated_home: Path) -> None:
    server = Server("--model", "builtin", token="s3cret-token")
    context = browser.new_context(viewport={"width": 1100, "height": 820}, reduced_motion="reduce")
    try:
        page = context.new_page()
        page.goto(server.wait_ready().url + "/")
        draw(page, SEVEN_STROKES)
        page.wait_for_selector("#message:not([hidden])", timeout=15_000)
        assert "access token" in page.inner_text("#message")
        assert page.evaluate("() => document.getElementById('token-box').open")

        page.fill("#token", "s3cret-token")
        page.press("#token", "Enter")
        page.wait_for_function(ANSWERED, timeout=15_000)
        assert page.inner_text("#answer").strip() == "7"
        assert page.is_hidden("#message")
        assert page.evaluate("() => sessionStorage.getItem('mnistctl.token')") == "s3cret-token"
    finally:
        context.close()
        server.stop()


def test_the_page_fits_a_phone(browser, server_url: str) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    phone = context.new_page()
    try:
        phone.goto(server_url + "/")
        assert phone.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        assert phone.evaluate("() => getComputedStyle(document.getElementById('pad')).touchAction") == "none"
        assert phone.is_visible("#shoot")  # a touch screen is offered the camera
        assert phone.get_attribute("#camera", "capture") == "environment"
        draw(phone, SEVEN_STROKES)
        phone.wait_for_function(ANSWERED, timeout=15_000)
        assert phone.inner_text("#answer").strip() == "7"
        assert phone.locator("#answer").bounding_box()["y"] < 844  # the answer is on the first screen
        save_screenshot(phone, "serve-page-phone.png", full_page=False)
    finally:
        context.close()


def test_page_preprocessing_matches_the_library(page) -> None:
    """The page's crop, fit into 20x20 and centring by mass give what mnistctl.preprocess.normalize gives."""
    from mnistctl.preprocess.normalize import DIGIT_BOX, placed

    rng = np.random.default_rng(7)
    ink = np.zeros((200, 160), dtype=np.float32)
    ink[30:170, 40:70] = 1.0  # a thick upright bar, off centre
    ink[30:60, 40:140] = 1.0  # and a top bar: a lopsided "7"-like mass
    ink[100:110, 90:95] = rng.uniform(0.2, 1.0, (10, 5))
    pixels = page.evaluate(
        "([ink, width, height]) => window.mnistctl.mnistFromInk(ink, width, height)",
        [ink.ravel().tolist(), ink.shape[1], ink.shape[0]],
    )
    got = np.asarray(pixels, dtype=np.float32)
    assert got.shape == (28, 28)
    assert got.min() >= 0 and got.max() == 255 and np.array_equal(got, np.round(got))

    rows, cols = np.nonzero(ink > 8 / 255)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = DIGIT_BOX / max(crop.shape)
    expected = placed(crop, scale, (0, crop.shape[0], 0, crop.shape[1]), "test")
    assert np.abs(got - expected).max() <= 1.0

    # MNIST's rules, independently: the digit fits a 20x20 box, its centre of mass is at pixel (14, 14).
    inked_rows, inked_cols = np.nonzero(got)
    assert max(np.ptp(inked_rows), np.ptp(inked_cols)) + 1 <= DIGIT_BOX + 2
    mass = got / got.sum()
    assert abs((mass.sum(axis=1) * np.arange(28)).sum() - 14) < 0.5
    assert abs((mass.sum(axis=0) * np.arange(28)).sum() - 14) < 0.5
    assert page.evaluate("() => window.mnistctl.mnistFromInk(new Float32Array(100), 10, 10)") is None


@pytest.mark.slow
def test_a_fashion_model_answers_with_a_class_name(browser, tmp_path: Path, isolated_home: Path) -> None:
    """A model trained on Fashion-MNIST (generated files of its format) answers "Sneaker", not "7"."""
    from mnistctl.data.spec import DATASETS
    from tests.conftest import run_cli
    from tests.synthetic import make_dataset, write_idx_mirror

    names = DATASETS["fashion-mnist"].classes
    write_idx_mirror(tmp_path / "fashion", make_dataset(train=300, test=100, seed=11))
    assert run_cli("download", "--dataset", "fashion-mnist", "--from", str(tmp_path / "fashion")).returncode == 0
    trained = run_cli("train", "--dataset", "fashion-mnist", "--arch", "mlp", "--epochs", "1", "--seed", "1")
    assert trained.returncode == 0, trained.stderr.decode()[-2000:]
    with Server("--model", "mlp:1") as server:
        context = browser.new_context(viewport={"width": 1100, "height": 820}, reduced_motion="reduce")
        page = context.new_page()
        page.goto(server.url + "/")
        page.set_input_files("#file", str(SEVEN_PHOTO))
        page.wait_for_function(ANSWERED, timeout=15_000)
        shown = page.inner_text("#answer").strip()
        top = int(page.locator("#bars .bar.top").get_attribute("data-digit"))
        assert shown == names[top]
        assert "named" in (page.get_attribute("#answer", "class") or "")
        assert page.locator("#bars .bar .bar-label").all_inner_texts() == list(names)  # from /v1/models
        assert page.inner_text("#bars-title") == "Probability of each class"
        assert shown in page.text_content("#live")
        for name in (shown, max(names, key=len)):  # this answer, and the longest name ("T-shirt/top")
            page.evaluate("(name) => { document.getElementById('answer').textContent = name; }", name)
            width = page.evaluate("() => document.querySelector('.verdict').scrollWidth")
            box = page.evaluate("() => document.querySelector('.verdict').clientWidth")
            assert width <= box, name  # the name fits beside the confidence, nothing spills
        page.evaluate("(name) => { document.getElementById('answer').textContent = name; }", shown)
        save_screenshot(page, "serve-page-fashion.png")
        context.close()
