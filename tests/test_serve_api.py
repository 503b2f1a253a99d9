"""``mnistctl serve`` over real HTTP: the real entry point in a subprocess (``--port 0``), spoken to with http.client.

Answers equal to ``predict --json``, error rows, every error status, the size limit enforced before a body is read,
the token, CORS, metrics, the OpenAPI document, concurrency, an alias moved while serving, workers, Ctrl-C, and no
TensorFlow anywhere in the server.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistctl.preprocess import to_mnist
from tests.conftest import REPO, run_cli
from tests.photos import two_stroke_seven
from tests.serving import Server, mnistctl_command

EXAMPLES = REPO / "mnistctl" / "builtin" / "examples"
SEVEN = EXAMPLES / "seven-photo.jpg"
SIX = EXAMPLES / "six-pen-on-form.png"
FOUR = EXAMPLES / "four-form-crop.jpg"
TOKEN = "s3cret-token"
PAGE_ORIGIN = "http://page.example"


# -- the server, and how we talk to it ---------------------------------------------------------------------------


def request(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """(status, headers, body) of one request; 4xx and 5xx are answers too, not exceptions."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def form(*files: tuple[str, str | None, bytes], boundary: str = "mnistctl-test-boundary") -> tuple[bytes, str]:
    """A multipart/form-data body of (field, filename or None for a text field, bytes) parts, and its type."""
    parts = []
    for field, filename, data in files:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename is not None else "")
        kind = "Content-Type: application/octet-stream\r\n" if filename is not None else ""
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post_files(
    server: Server, *files: tuple[str, str | None, bytes], query: str = "", headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    body, content_type = form(*files)
    status, _, data = request(
        server, "POST", "/v1/predict" + query, body, {"Content-Type": content_type, **(headers or {})}
    )
    return status, json.loads(data)


def post_pixels(server: Server, document: object, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    body = json.dumps(document).encode()
    status, _, data = request(
        server, "POST", "/v1/predict/pixels", body, {"Content-Type": "application/json", **(headers or {})}
    )
    return status, json.loads(data)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def mnist_one() -> np.ndarray:
    """A white "1"-ish stroke on black, MNIST-style."""
    pixels = np.zeros((28, 28), np.uint8)
    pixels[5:23, 13:16] = 255
    return pixels


def predict_json(*names: str, cwd: Path) -> dict:
    """``mnistctl predict NAMES --json`` run in ``cwd`` (so that its rows name the files as the uploads do)."""
    result = subprocess.run(
        [*mnistctl_command(), "predict", *names, "--json"], capture_output=True, cwd=cwd, timeout=120
    )
    return json.loads(result.stdout)


def error_of(status: int, document: dict) -> str:
    assert set(document) == {"error"}, document
    return document["error"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: an empty home, so the builtin model answers."""
    running = Server(home=tmp_path_factory.mktemp("serve-home")).wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A token, a CORS origin, a 1 s timeout and a 1 MB request limit."""
    running = Server(
        "--cors-origin",
        PAGE_ORIGIN,
        "--timeout",
        "1",
        "--max-request-mb",
        "1",
        home=tmp_path_factory.mktemp("serve-strict-home"),
        env={"MNISTCTL_TOKEN": TOKEN},
    ).wait_ready()
    yield running
    running.stop()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


# -- answers ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", [SEVEN, SIX, FOUR], ids=lambda path: path.name)
def test_an_upload_answers_what_predict_json_answers(server, image):
    result = run_cli("predict", str(image), "--json")
    assert result.returncode == 0, result.stderr.decode()
    expected = json.loads(result.stdout)
    status, answer = post_files(server, ("file", image.name, image.read_bytes()))
    assert status == 200, answer
    assert answer["model"] == expected["model"] == "builtin"
    [row] = answer["results"]
    assert row == {**expected["results"][0], "file": image.name}


def test_a_raw_body_is_one_image_named_dash(server):
    status, _, data = request(server, "POST", "/v1/predict", SEVEN.read_bytes(), {"Content-Type": "image/jpeg"})
    assert status == 200
    [row] = json.loads(data)["results"]
    assert row["file"] == "-" and row["digit"] == 7
    status, _, data = request(
        server, "POST", "/v1/predict", SIX.read_bytes(), {"Content-Type": "application/octet-stream"}
    )
    assert status == 200 and json.loads(data)["results"][0]["digit"] == 6


def test_several_files_under_any_field_names_are_answered_in_order(server):
    status, answer = post_files(
        server,
        ("a", "seven.jpg", SEVEN.read_bytes()),
        ("note", None, b"a text field is not an image"),
        ("images[]", "six.png", SIX.read_bytes()),
        ("images[]", "four.jpg", FOUR.read_bytes()),
    )
    assert status == 200, answer
    assert [(row["file"], row["digit"]) for row in answer["results"]] == [
        ("seven.jpg", 7),
        ("six.png", 6),
        ("four.jpg", 4),
    ]


def test_bad_images_are_error_rows_beside_the_good_ones(server, tmp_path):
    blank = png(np.full((60, 60), 255))
    truncated = SIX.read_bytes()[:200]
    status, answer = post_files(
        server,
        ("f", "notes.txt", b"not an image at all"),
        ("f", "seven.jpg", SEVEN.read_bytes()),
        ("f", "half.png", truncated),
        ("f", "blank.png", blank),
        ("f", "empty.png", b""),
    )
    assert status == 200, answer
    rows = answer["results"]
    assert [row["file"] for row in rows] == ["notes.txt", "seven.jpg", "half.png", "blank.png", "empty.png"]
    assert rows[1]["digit"] == 7
    for row in (rows[0], rows[2], rows[3], rows[4]):
        assert set(row) == {"file", "error"}, row
    assert "no digit" in rows[3]["error"]
    assert "empty" in rows[4]["error"]
    # The same rows as predict --json gives for the same files.
    for name, data in (("notes.txt", b"not an image at all"), ("blank.png", blank)):
        (tmp_path / name).write_bytes(data)
    expected = predict_json("notes.txt", "blank.png", cwd=tmp_path)
    assert [row["error"] for row in expected["results"]] == [rows[0]["error"], rows[3]["error"]]


def test_an_image_over_the_pixel_limit_is_an_error_row(server):
    buffer = io.BytesIO()
    Image.new("1", (7000, 7000)).save(buffer, "PNG")  # 49 megapixels in a few KB: a decompression bomb
    status, answer = post_files(server, ("f", "bomb.png", buffer.getvalue()))
    assert status == 200
    assert "pixel limit" in answer["results"][0]["error"]


def test_query_options_top_k_show_probabilities_and_raw(server):
    status, answer = post_files(
        server, ("f", "seven.jpg", SEVEN.read_bytes()), query="?top_k=5&show=1&probabilities=true"
    )
    assert status == 200
    row = answer["results"][0]
    assert len(row["top_k"]) == 5 and row["top_k"][0] == [7, row["confidence"]]
    seen = np.array(row["input"])
    assert seen.shape == (28, 28) and seen.dtype.kind == "i" and seen.min() >= 0 and seen.max() <= 255
    assert len(row["probabilities"]) == 10 and abs(sum(row["probabilities"]) - 1) < 1e-4
    assert row["probabilities"][7] == row["confidence"]
    # What the model saw, sent back with raw=true, is answered the same.
    status, again = post_files(server, ("f", "seen.png", png(seen)), query="?raw=true&top_k=1")
    assert status == 200 and again["results"][0]["digit"] == 7 and len(again["results"][0]["top_k"]) == 1
    assert "readings" not in row  # one reading: the photo's 7 has no stroke in doubt
    # Without the flags, neither key.
    status, plain = post_files(server, ("f", "seven.jpg", SEVEN.read_bytes()))
    assert "input" not in plain["results"][0] and "probabilities" not in plain["results"][0]


def test_show_sends_both_readings_when_the_answer_weighed_two(server):
    """A 7 whose bar stands apart from its stem: read without the bar and with it, as ``predict --show`` draws."""
    status, answer = post_files(server, ("f", "seven.png", png(two_stroke_seven(5))), query="?show=true")
    assert status == 200
    (row,) = answer["results"]
    assert row["low_confidence"] is True and {digit for digit, _ in row["top_k"][:2]} == {1, 7}
    first, second = np.array(row["readings"])
    assert first.shape == second.shape == (28, 28)
    assert np.array_equal(first, np.array(row["input"]))
    assert (second > first).sum() > 20  # the bar, only in the second reading
    expected = to_mnist(two_stroke_seven(5), readings=True)
    assert np.abs(np.array(row["readings"]) - expected).max() <= 0.5  # whole grey levels of the same readings
    status, plain = post_files(server, ("f", "seven.png", png(two_stroke_seven(5))))
    assert "readings" not in plain["results"][0]


@pytest.mark.parametrize(
    "query",
    ["?top_k=0", "?top_k=11", "?top_k=three", "?raw=maybe", "?topk=3", "?top_k=3&top_k=4", "?model="],
)
def test_bad_query_values_are_400(server, query):
    status, answer = post_files(server, ("f", "seven.jpg", SEVEN.read_bytes()), query=query)
    assert status == 400, answer
    assert error_of(status, answer)


# -- malformed requests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"this is not multipart", "multipart/form-data; boundary=xyz"),
        (
            b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="a.png"\r\n\r\nabc',
            "multipart/form-data; boundary=xyz",
        ),
        (b"--xyz\r\nbroken header line\r\n\r\nabc\r\n--xyz--\r\n", "multipart/form-data; boundary=xyz"),
        (b"--xyz\r\n\r\nabc\r\n--xyz--\r\n", "multipart/form-data"),
        (
            b'--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--xyz--\r\n',
            "multipart/form-data; boundary=xyz",
        ),
        (b"", "image/png"),
    ],
    ids=["garbage", "truncated", "bad-part-header", "no-boundary", "no-image-part", "empty-raw-body"],
)
def test_malformed_requests_are_400(server, body, content_type):
    status, _, data = request(server, "POST", "/v1/predict", body, {"Content-Type": content_type})
    assert status == 400, data
    assert error_of(status, json.loads(data))


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json", "application/x-www-form-urlencoded"])
def test_a_type_that_is_not_an_image_or_a_form_is_415(server, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    status, _, data = request(server, "POST", "/v1/predict", b"abc", headers)
    assert status == 415, data
    assert "multipart/form-data" in error_of(status, json.loads(data))


def test_pixels_must_be_sent_as_json(server):
    status, _, data = request(server, "POST", "/v1/predict/pixels", b"[]", {"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in json.loads(data)["error"]


def test_the_wrong_method_is_405_and_an_unknown_path_404(server):
    status, headers, data = request(server, "GET", "/v1/predict")
    assert status == 405 and "POST" in headers["Allow"] and json.loads(data) == {"error": "method not allowed"}
    status, _, data = request(server, "GET", "/v2/nothing")
    assert status == 404 and json.loads(data) == {"error": "no such endpoint"}


# -- size limits and time limits ------------------------------------------------------------------------------------


def _raw_exchange(port: int, head: bytes, chunks: list[bytes], pause: float = 0.0, timeout: float = 10) -> bytes:
    """Send ``head`` then ``chunks`` on a plain socket (ignoring a server that hangs up), then read what comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break
            time.sleep(pause)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
        return answer


def _length(answer: bytes) -> int:
    found = re.search(rb"content-length: (\d+)", answer, re.IGNORECASE)
    return int(found.group(1)) if found else 0


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_an_oversized_body_is_refused_before_it_is_read(server):
    # 100 MB announced, 1 KB sent: the answer comes at once, and the server hangs up instead of reading the rest.
    head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000000\r\n\r\n"
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + b"\x89PNG" + b"\0" * 1020)
        answer = b""
        while not answer.endswith(b"}"):
            data = sock.recv(65536)
            assert data, answer
            answer += data
        assert time.monotonic() - started < 5
        assert sock.recv(65536) == b""  # closed by the server: the other 99.9 MB will never be read
    assert _status(answer) == 413, answer[:300]
    assert b"connection: close" in answer.lower()
    assert b"10,000,000 bytes" in answer


def test_a_chunked_body_is_cut_off_at_the_limit(strict_server):
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
    )
    chunk = b"%x\r\n" % 65536 + b"\0" * 65536 + b"\r\n"
    answer = _raw_exchange(strict_server.port, head, [chunk] * 64)  # 4 MB against a 1 MB limit
    assert _status(answer) == 413, answer[:300]
    assert b"1,000,000 bytes" in answer


def test_a_request_over_its_time_is_504(strict_server):
    # A client that announces 500 bytes and sends 10: the server gives up after --timeout (1 s), with 504.
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 500\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
    )
    started = time.monotonic()
    answer = _raw_exchange(strict_server.port, head, [b"\x89PNG\r\n\x1a\n\0\0"], timeout=10)
    elapsed = time.monotonic() - started
    assert _status(answer) == 504, answer[:300]
    assert 0.9 < elapsed < 5
    assert b"within 1 s" in answer


# -- models -------------------------------------------------------------------------------------------------------


def test_an_unknown_model_is_404(server):
    for query in ("?model=nosuch", "?model=nosuch:3", "?model=nosuch@best", "?model=builtin:2"):
        status, answer = post_files(server, ("f", "seven.jpg", SEVEN.read_bytes()), query=query)
        assert status == 404, (query, answer)
        assert "nosuch" in error_of(status, answer) or "builtin" in answer["error"]
    status, answer = post_pixels(server, {"pixels": mnist_one().tolist(), "model": "nosuch"})
    assert status == 404, answer


def test_models_and_health(server):
    status, _, data = request(server, "GET", "/v1/models")
    assert status == 200
    listing = json.loads(data)
    assert listing["default"] == "builtin"
    [builtin] = [entry for entry in listing["models"] if entry["model"] == "builtin"]
    assert builtin["arch"] and 0.9 < builtin["test_accuracy"] <= 1
    status, _, data = request(server, "GET", "/healthz")
    assert status == 200 and json.loads(data) == {"status": "ok", "model": "builtin"}


# -- pixels -------------------------------------------------------------------------------------------------------


def test_pixels_nested_or_flat_answer_as_a_raw_upload_does(server):
    pixels = mnist_one()
    status, nested = post_pixels(server, {"pixels": pixels.tolist()})
    assert status == 200, nested
    status, flat = post_pixels(server, {"pixels": pixels.astype(float).ravel().tolist(), "top_k": 5})
    assert status == 200, flat
    assert nested["model"] == "builtin"
    [row] = nested["results"]
    assert set(row) == {"digit", "confidence", "top_k", "low_confidence", "probabilities"}
    assert len(row["probabilities"]) == 10 and abs(sum(row["probabilities"]) - 1) < 1e-4
    assert len(row["top_k"]) == 3 and len(flat["results"][0]["top_k"]) == 5
    assert flat["results"][0]["probabilities"] == row["probabilities"]
    # The same pixels as a PNG with raw=true: the same answer.
    status, uploaded = post_files(server, ("f", "one.png", png(pixels)), query="?raw=true")
    assert status == 200
    upload_row = uploaded["results"][0]
    assert (upload_row["digit"], upload_row["confidence"], upload_row["top_k"]) == (
        row["digit"],
        row["confidence"],
        row["top_k"],
    )


def test_unsure_pixels_get_the_second_look_an_upload_of_them_gets(server):
    """A turned "6" the model reads as "5" at 0.92 at first sight (``test_second_look``): as pixels and as a
    raw PNG upload, the same flagged answer."""
    from tests import wild

    pixels = np.rint(to_mnist(wild.turned_six())).astype(np.uint8)
    status, as_pixels = post_pixels(server, {"pixels": pixels.tolist()})
    assert status == 200, as_pixels
    status, uploaded = post_files(server, ("f", "six.png", png(pixels)), query="?raw=true&probabilities=true")
    assert status == 200, uploaded
    [row], [upload_row] = as_pixels["results"], uploaded["results"]
    assert row["low_confidence"] is True
    assert row["probabilities"] == pytest.approx(upload_row["probabilities"], abs=1e-6)


@pytest.mark.parametrize(
    "body",
    [
        b'{"pixels": ' + json.dumps([[0] * 28] * 27).encode() + b"}",
        b'{"pixels": ' + json.dumps([0] * 783).encode() + b"}",
        b'{"pixels": ' + json.dumps([[0] * 27] * 28).encode() + b"}",
        b'{"pixels": ' + json.dumps([256] + [0] * 783).encode() + b"}",
        b'{"pixels": ' + json.dumps([-1] + [0] * 783).encode() + b"}",
        b'{"pixels": ' + json.dumps(["12"] + [0] * 783).encode() + b"}",
        b'{"pixels": ' + json.dumps([True] + [0] * 783).encode() + b"}",
        b'{"pixels": [NaN' + b", 0" * 783 + b"]}",
        b'{"pixels": [Infinity' + b", 0" * 783 + b"]}",
        b'{"pixels": [1e999' + b", 0" * 783 + b"]}",
        b'{"pixels": ' + json.dumps([0] * 784).encode() + b', "top_k": 0}',
        b'{"pixels": ' + json.dumps([0] * 784).encode() + b', "model": 3}',
        b'{"pixels": "abc"}',
        b'{"pixel": []}',
        b"[1, 2, 3]",
        b"{not json",
    ],
    ids=[
        "27-rows",
        "783-flat",
        "27-columns",
        "256",
        "negative",
        "string",
        "bool",
        "nan",
        "infinity",
        "overflow",
        "top-k-0",
        "model-number",
        "pixels-string",
        "no-pixels",
        "not-an-object",
        "not-json",
    ],
)
def test_bad_pixels_are_400(server, body):
    status, _, data = request(server, "POST", "/v1/predict/pixels", body, {"Content-Type": "application/json"})
    assert status == 400, data
    assert error_of(status, json.loads(data))


# -- concurrency --------------------------------------------------------------------------------------------------


def test_32_concurrent_requests_are_all_answered_correctly(server):
    images = [(SEVEN, 7), (SIX, 6), (FOUR, 4)]
    sequential = {path: post_files(server, ("f", path.name, path.read_bytes()))[1]["results"][0] for path, _ in images}

    def one(index: int) -> tuple[int, dict, Path]:
        path, _ = images[index % len(images)]
        if index % 4 == 3:
            status, answer = post_pixels(server, {"pixels": mnist_one().tolist()})
            return status, answer, path
        status, answer = post_files(server, ("f", path.name, path.read_bytes()))
        return status, answer, path

    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(one, range(32)))
    for index, (status, answer, path) in enumerate(outcomes):
        assert status == 200, answer
        if index % 4 != 3:
            assert answer["results"][0] == sequential[path]


# -- the page and its files -----------------------------------------------------------------------------------------


def test_the_page_and_only_the_static_folder_are_served(server):
    static = REPO / "mnistctl" / "serve" / "static"
    status, headers, data = request(server, "GET", "/")
    if (static / "index.html").is_file():
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert data == (static / "index.html").read_bytes()
    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
    for path in static.iterdir():
        if path.suffix in types:
            status, headers, data = request(server, "GET", f"/static/{path.name}")
            assert status == 200 and headers["Content-Type"].startswith(types[path.suffix]), path.name
            assert data == path.read_bytes()
    for attempt in (
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/../../cli/serve.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/",
        "/static/missing.js",
    ):
        status, _, data = request(server, "GET", attempt)
        assert status == 404, (attempt, data[:200])
        assert b"import" not in data and b"root:" not in data


def test_cors_headers_are_absent_by_default(server):
    status, headers, _ = request(server, "GET", "/v1/models", headers={"Origin": PAGE_ORIGIN})
    assert status == 200
    assert not [name for name in headers if name.lower().startswith("access-control-")]
    status, headers, _ = request(
        server,
        "OPTIONS",
        "/v1/predict",
        headers={"Origin": PAGE_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert not [name for name in headers if name.lower().startswith("access-control-")]


def test_cors_headers_for_the_allowed_origin_only(strict_server):
    status, headers, _ = request(strict_server, "GET", "/v1/models", headers={"Origin": PAGE_ORIGIN, **AUTH})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    status, headers, _ = request(
        strict_server,
        "OPTIONS",
        "/v1/predict",
        headers={
            "Origin": PAGE_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    assert "authorization" in headers["Access-Control-Allow-Headers"].lower()
    status, headers, _ = request(strict_server, "GET", "/v1/models", headers={"Origin": "http://evil.example", **AUTH})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    # A refused token still carries the CORS header, so the page can read the 401.
    status, headers, _ = request(strict_server, "GET", "/v1/models", headers={"Origin": PAGE_ORIGIN})
    assert status == 401 and headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN


# -- the token ------------------------------------------------------------------------------------------------------


def test_the_token_is_required_by_the_api_when_set(strict_server):
    image = ("f", "seven.jpg", SEVEN.read_bytes())
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic abc"}):
        status, answer = post_files(strict_server, image, headers=headers)
        assert status == 401, (headers, answer)
        assert "token" in error_of(status, answer)
    status, headers, _ = request(strict_server, "GET", "/metrics")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert request(strict_server, "POST", "/v1/predict/pixels", b"{}", {"Content-Type": "application/json"})[0] == 401
    status, answer = post_files(strict_server, image, headers=AUTH)
    assert status == 200 and answer["results"][0]["digit"] == 7
    # Health, the page and the API's description need none.
    assert request(strict_server, "GET", "/healthz")[0] == 200
    assert request(strict_server, "GET", "/openapi.json")[0] == 200
    assert request(strict_server, "GET", "/")[0] in (200, 404)  # 404 only until the page exists


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.org"])
def test_a_non_loopback_address_without_a_token_is_a_usage_error(host):
    result = run_cli("serve", "--host", host, "--port", "0", env={"MNISTCTL_TOKEN": ""}, timeout=60)
    assert result.returncode == 2, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "token" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args", [("--cors-origin", "page.example"), ("--token", "two words"), ("--workers", "0"), ("--port", "70000")]
)
def test_bad_flags_are_usage_errors(args):
    result = run_cli("serve", *args, timeout=60)
    assert result.returncode == 2, result.stderr.decode()


def test_an_unknown_model_flag_fails_before_serving():
    result = run_cli("serve", "--model", "nosuch", "--port", "0", timeout=60)
    assert result.returncode == 1
    assert "nosuch" in result.stderr.decode() and "serving" not in result.stderr.decode()


# -- metrics and the OpenAPI document --------------------------------------------------------------------------------


METRIC_LINE = re.compile(r'^[a-z_]+\{([a-z_]+="[^"\\]*(\\.[^"\\]*)*",?)*\} [0-9.e+-]+$')


def scrape(server: Server) -> dict[str, float]:
    status, headers, data = request(server, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in data.decode().splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) mnistctl_[a-z_]+ ", line), line
            continue
        assert METRIC_LINE.match(line), line
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_metrics_count_requests_images_errors_and_latency(server):
    ok = '{endpoint="/v1/predict",model="builtin",status="200"}'
    before = scrape(server)
    post_files(server, ("f", "seven.jpg", SEVEN.read_bytes()), ("f", "bad.txt", b"nope"))
    request(server, "POST", "/v1/predict", b"x", {"Content-Type": "text/plain"})
    after = scrape(server)
    assert after[f"mnistctl_requests_total{ok}"] == before.get(f"mnistctl_requests_total{ok}", 0) + 1
    images = 'mnistctl_images_total{endpoint="/v1/predict",model="builtin"}'
    assert after[images] == before.get(images, 0) + 1
    image_errors = 'mnistctl_errors_total{endpoint="/v1/predict",model="builtin",kind="image"}'
    assert after[image_errors] == before.get(image_errors, 0) + 1
    client = 'mnistctl_errors_total{endpoint="/v1/predict",model="",kind="client"}'
    assert after[client] == before.get(client, 0) + 1
    count = 'mnistctl_request_seconds_count{endpoint="/v1/predict",model="builtin"}'
    inf = 'mnistctl_request_seconds_bucket{endpoint="/v1/predict",model="builtin",le="+Inf"}'
    assert after[count] == after[inf] == before.get(count, 0) + 1
    assert after['mnistctl_request_seconds_sum{endpoint="/v1/predict",model="builtin"}'] > 0
    prefix = 'mnistctl_request_seconds_bucket{endpoint="/v1/predict",model="builtin"'
    buckets = [value for name, value in after.items() if name.startswith(prefix)]
    assert buckets == sorted(buckets)  # cumulative


def test_openapi_describes_every_route(server):
    from mnistctl.serve.app import create_app
    from mnistctl.serve.config import ServeConfig

    status, _, data = request(server, "GET", "/openapi.json")
    assert status == 200
    document = json.loads(data)
    assert document["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    routed = set()
    for route in create_app(ServeConfig()).routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        routed |= {(path, method) for method in route.methods if method != "HEAD"}
    assert described == routed
    # Every $ref points at a schema that exists.
    for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(document)):
        assert ref in document["components"]["schemas"]


# -- an alias moved while serving, workers, Ctrl-C ------------------------------------------------------------------


def _register_copy(name: str) -> None:
    """Register mlp:1's record again as a new version of ``name`` (a second version without training)."""
    from mnistctl.registry import Registry

    registry = Registry()
    first = registry.resolve("mlp:1")
    registry.register(
        name=name,
        arch=first.arch,
        params=first.params,
        metrics=first.metrics,
        layers=first.layers,
        weights_sha256=first.weights_sha256,
        data_fingerprint=first.data_fingerprint,
        environment=first.environment,
        artifacts={kind: registry.artifact(first, kind) for kind in first.artifacts},
    )


def _answered_by(server: Server, expected: str, timeout: float = 5) -> float:
    """Seconds until requests without a model are answered by ``expected``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status, answer = post_pixels(server, {"pixels": mnist_one().tolist()})
        if status == 200 and answer["model"] == expected:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"still not {expected} after {timeout} s: {status} {answer}")


def test_an_alias_moved_while_serving_is_followed(trained_home):
    assert run_cli("models", "alias", "mlp:1", "best").returncode == 0
    served = Server("--model", "mlp@best").wait_ready()
    try:
        assert "serving mlp@best (mlp:1)" in served.stderr
        status, answer = post_files(served, ("f", "one.png", png(mnist_one())))
        assert status == 200 and answer["model"] == "mlp:1"
        _register_copy("mlp")  # mlp:2
        assert run_cli("models", "alias", "mlp:2", "best").returncode == 0
        assert _answered_by(served, "mlp:2") < 2.5
        assert json.loads(request(served, "GET", "/healthz")[2]) == {"status": "ok", "model": "mlp:2"}
        status, answer = post_files(served, ("f", "one.png", png(mnist_one())), query="?model=mlp:1")
        assert status == 200 and answer["model"] == "mlp:1"
        # The version removed: its alias goes with it, and the next requests are 404 (health 503).
        assert run_cli("models", "rm", "mlp:2", "--yes").returncode == 0
        deadline = time.monotonic() + 3
        while (
            status := post_pixels(served, {"pixels": mnist_one().tolist()})[0]
        ) == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 404
        assert request(served, "GET", "/healthz")[0] == 503
    finally:
        assert served.stop() == 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        found.append(queue.pop())
        queue += children.get(found[-1], [])
    return found


def loaded_tensorflow_files(pid: int) -> set[str]:
    """Files of TensorFlow or Keras mapped into the process ``pid``."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {line.split()[-1] for line in maps.splitlines() if re.search(r"/(tensorflow|keras)/", line)}


def test_two_workers_serve_and_stop_cleanly():
    # The settings reach the spawned workers (here: the token, through MNISTCTL_SERVE_CONFIG).
    served = Server("--workers", "2", env={"MNISTCTL_TOKEN": TOKEN}).wait_ready()
    try:
        assert post_files(served, ("f", "six.png", SIX.read_bytes()))[0] == 401
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _: post_files(served, ("f", "six.png", SIX.read_bytes()), headers=AUTH), range(16))
            )
        assert all(status == 200 and answer["results"][0]["digit"] == 6 for status, answer in answers)
        if Path("/proc/self/maps").exists():
            tree = process_tree(served.process.pid)
            assert len(tree) >= 3  # the supervisor and two workers (and multiprocessing's resource tracker)
            for pid in tree:
                assert not loaded_tensorflow_files(pid), pid
    finally:
        code = served.stop()
    assert code == 0, served.stderr
    assert "Traceback" not in served.stderr


def test_ctrl_c_stops_the_server_cleanly():
    served = Server().wait_ready()
    assert served.lines[0].startswith("serving builtin at http://127.0.0.1:")
    assert served.lines[0].rstrip().endswith("/ (Ctrl-C stops)")
    assert post_files(served, ("f", "seven.jpg", SEVEN.read_bytes()))[0] == 200
    assert served.stop(signal.SIGINT) == 0
    assert "Traceback" not in served.stderr and served.stderr.rstrip().endswith("stopped"), served.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", served.port), timeout=2).close()


def test_sigterm_stops_the_server_cleanly_too():
    served = Server().wait_ready()
    assert served.stop(signal.SIGTERM) == 0
    assert "Traceback" not in served.stderr


# -- never TensorFlow, and failures without a stack trace ----------------------------------------------------------

IN_PROCESS = """
import json, socket, sys, threading, time, urllib.request, urllib.error
import uvicorn
from mnistctl.serve.app import create_app, Service
from mnistctl.serve.config import ServeConfig

if sys.argv[1] == "fail":
    def broken(*args):
        raise RuntimeError("boom in /srv/secret/path\\nsecond line")
    Service._predict_images = staticmethod(broken)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
server = uvicorn.Server(uvicorn.Config(create_app(ServeConfig(model="builtin")), log_config=None, lifespan="on"))
thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
thread.start()
url = "http://127.0.0.1:%d" % sock.getsockname()[1]
while not server.started:
    time.sleep(0.01)
data = open(sys.argv[2], "rb").read()
request = urllib.request.Request(url + "/v1/predict", data=data, headers={"Content-Type": "image/jpeg"})
try:
    with urllib.request.urlopen(request) as response:
        print("STATUS", response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print("STATUS", error.code, error.read().decode())
server.should_exit = True
thread.join()
print("TENSORFLOW", sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras")))
"""


def _in_process(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", IN_PROCESS, mode, str(SEVEN)], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_a_running_server_never_imports_tensorflow():
    result = _in_process("ok")
    assert result.returncode == 0, result.stderr
    assert '"digit":7' in result.stdout
    assert "TENSORFLOW []" in result.stdout


def test_serve_help_imports_no_tensorflow():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mnistctl", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0 and "--cors-origin" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert imported and not {name for name in imported if name.split(".")[0] in ("tensorflow", "keras")}
    assert not imported & {"starlette", "uvicorn", "numpy", "PIL"}


def test_an_internal_error_is_a_json_500_and_one_log_line():
    result = _in_process("fail")
    assert result.returncode == 0, result.stderr
    assert 'STATUS 500 {"error":"internal error"}' in result.stdout
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    logged = [line for line in result.stderr.splitlines() if "internal error" in line]
    assert len(logged) == 1 and "RuntimeError" in logged[0] and "second line" not in result.stderr
