"""Downloading through real HTTP mirrors on 127.0.0.1 that fail in every way we have seen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnistctl.cli import main
from mnistctl.data import spec as dataset_spec
from mnistctl.data.download import RetryPolicy, download
from mnistctl.data.loader import load
from mnistctl.errors import DownloadError
from tests.conftest import run_cli
from tests.mirror_server import Fault, MirrorServer

FAST = RetryPolicy(timeout=1.0, retries=2, backoff=0.01)
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


def dataset_folder(home: Path) -> Path:
    return home / "datasets" / "mnist"


def assert_clean_and_verified(home: Path) -> None:
    folder = dataset_folder(home)
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    for spec in dataset_spec.MNIST_FILES:
        from mnistctl.fsutil import sha256_file

        assert sha256_file(folder / spec.name) == spec.sha256


def assert_nothing_kept(home: Path) -> None:
    folder = dataset_folder(home)
    kept = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert [name for name in kept if name.endswith(".gz") or name.endswith(".tmp")] == []


def test_download_from_local_http_mirror_verifies_and_places_files(mirror, isolated_home, tiny_dataset):
    result = download([mirror.url], policy=FAST)
    assert [item.status for item in result.files] == ["downloaded"] * 4
    assert_clean_and_verified(isolated_home)
    images, labels = load("train")
    np.testing.assert_array_equal(images, tiny_dataset["x_train"])
    np.testing.assert_array_equal(labels, tiny_dataset["y_train"])


def test_second_download_fetches_nothing(mirror):
    download([mirror.url], policy=FAST)
    before = len(mirror.requests)
    result = download([mirror.url], policy=FAST)
    assert [item.status for item in result.files] == ["present"] * 4
    assert len(mirror.requests) == before


def test_force_fetches_again(mirror):
    download([mirror.url], policy=FAST)
    before = len(mirror.requests)
    download([mirror.url], policy=FAST, force=True)
    assert len(mirror.requests) == before + 4


def test_download_moves_on_after_404_on_first_mirror(mirror, second_mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("404")
    result = download([mirror.url, second_mirror.url], policy=FAST)
    sources = {item.record.name: item.record.source for item in result.files}
    assert sources[TRAIN_IMAGES].startswith(second_mirror.url)
    assert mirror.requests_for(TRAIN_IMAGES) == [None]  # a 404 is not retried
    assert_clean_and_verified(isolated_home)


def test_download_retries_after_server_errors(mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("500", times=2)
    download([mirror.url], policy=FAST)
    assert len(mirror.requests_for(TRAIN_IMAGES)) == 3
    assert_clean_and_verified(isolated_home)


def test_download_resumes_after_dropped_connection(mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("drop", times=1)
    size = (mirror.root / TRAIN_IMAGES).stat().st_size
    download([mirror.url], policy=FAST)
    ranges = mirror.requests_for(TRAIN_IMAGES)
    assert ranges[0] is None
    assert ranges[1] == f"bytes={size // 2}-"  # resumed where the drop happened, not restarted
    assert_clean_and_verified(isolated_home)


def test_checksum_mismatch_tries_next_mirror_and_keeps_nothing_bad(mirror, second_mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("corrupt")
    result = download([mirror.url, second_mirror.url], policy=FAST)
    record = next(item.record for item in result.files if item.record.name == TRAIN_IMAGES)
    assert record.source.startswith(second_mirror.url)
    assert_clean_and_verified(isolated_home)


def test_html_page_instead_of_gzip_is_rejected(mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("html")
    with pytest.raises(DownloadError, match="text/html"):
        download([mirror.url], policy=FAST)
    assert_nothing_kept_for(isolated_home, TRAIN_IMAGES)


def assert_nothing_kept_for(home: Path, name: str) -> None:
    folder = dataset_folder(home)
    assert not (folder / name).exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_hanging_server_times_out_then_next_mirror_serves(mirror, second_mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("hang")
    policy = RetryPolicy(timeout=0.3, retries=1, backoff=0.01)
    result = download([mirror.url, second_mirror.url], policy=policy)
    record = next(item.record for item in result.files if item.record.name == TRAIN_IMAGES)
    assert record.source.startswith(second_mirror.url)
    assert len(mirror.requests_for(TRAIN_IMAGES)) == 2  # first try + one retry
    assert_clean_and_verified(isolated_home)


def test_server_ignoring_range_restarts_the_file(mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("drop", times=1)
    download([mirror.url], policy=FAST, force=True)  # warm-up: drop then resume works
    mirror.faults[TRAIN_IMAGES] = Fault("drop", times=1)
    mirror.faults["t10k-images-idx3-ubyte.gz"] = Fault("ignore-range")
    download([mirror.url], policy=FAST, force=True)
    assert_clean_and_verified(isolated_home)


def test_every_mirror_failing_names_each_one_and_suggests_fixes(mirror, second_mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("404")
    second_mirror.faults[TRAIN_IMAGES] = Fault("corrupt")
    with pytest.raises(DownloadError) as failure:
        download([mirror.url, second_mirror.url], policy=FAST)
    message = str(failure.value)
    assert f"{mirror.url} (HTTP 404" in message
    assert f"{second_mirror.url} (checksum mismatch" in message
    assert "--mirror" in message and "--from" in message
    assert_nothing_kept_for(isolated_home, TRAIN_IMAGES)


def test_keras_cache_is_suggested_when_every_mirror_fails(mirror, tmp_path, tiny_npz):
    cache = tmp_path / "keras" / "datasets"
    cache.mkdir(parents=True)
    tiny_npz.rename(cache / "mnist.npz")
    mirror.faults[TRAIN_IMAGES] = Fault("404")
    with pytest.raises(DownloadError, match=r"mnistctl download --from .*mnist\.npz"):
        download([mirror.url], policy=FAST)


def test_folder_and_file_url_mirrors_work(tiny_mirror_dir, isolated_home):
    download([str(tiny_mirror_dir)], policy=FAST)
    assert_clean_and_verified(isolated_home)
    download([tiny_mirror_dir.as_uri()], policy=FAST, force=True)
    assert_clean_and_verified(isolated_home)


def test_env_mirror_is_used(mirror, monkeypatch, isolated_home):
    monkeypatch.setenv("MNISTCTL_MIRROR", mirror.url)
    download(policy=FAST)
    assert_clean_and_verified(isolated_home)


def test_cli_download_json_reports_files(mirror, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--mirror", mirror.url, "--json"])
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "mnist"
    assert [entry["name"] for entry in report["files"]] == [spec.name for spec in dataset_spec.MNIST_FILES]
    assert {entry["sha256"] for entry in report["files"]} == {spec.sha256 for spec in dataset_spec.MNIST_FILES}
    assert set(report["files"][0]) >= {"name", "sha256", "bytes", "source"}


def test_cli_download_failure_is_one_line_with_exit_1(tmp_path):
    server = MirrorServer(tmp_path).start()  # an empty folder: every file is a 404
    try:
        result = run_cli("download", "--mirror", server.url, "--retries", "0")
    finally:
        server.stop()
    stderr = result.stderr.decode()
    assert result.returncode == 1
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("Error: could not fetch") and stderr.count("Error:") == 1
    assert "Traceback" not in stderr
    assert "--from" in stderr


def test_cli_download_without_any_mirror_is_an_error(tmp_path):
    result = run_cli("download")  # the tests disable the public mirrors
    assert result.returncode == 1
    assert "no mirror to try" in result.stderr.decode()


def test_ctrl_c_during_download_exits_130_and_leaves_no_temp_files(mirror, isolated_home):
    import signal
    import subprocess
    import sys
    import time

    mirror.faults[TRAIN_IMAGES] = Fault("hang")
    process = subprocess.Popen(
        [sys.executable, "-m", "mnistctl", "download", "--mirror", mirror.url, "--timeout", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # A background job inherits SIGINT as ignored, and Python then keeps ignoring it: restore it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    while not mirror.requests_for(TRAIN_IMAGES) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert b"Traceback" not in stderr
    folder = dataset_folder(isolated_home)
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
    assert not (folder / TRAIN_IMAGES).exists()


def test_redirect_loop_is_named_in_a_few_words_on_one_line(mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("redirect-loop")
    with pytest.raises(DownloadError) as failure:
        download([mirror.url], policy=FAST)
    message = str(failure.value)
    assert f"{mirror.url} (HTTP 302 redirect loop)" in message
    assert "\n" not in message and "infinite loop" not in message
    assert_nothing_kept_for(isolated_home, TRAIN_IMAGES)


def test_cli_redirect_loop_error_has_no_escaped_newlines(mirror, capsys):
    mirror.faults[TRAIN_IMAGES] = Fault("redirect-loop")
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--mirror", mirror.url])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 1
    error = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "redirect loop" in error[0]
    assert "\\n" not in stderr and "30x error message" not in stderr


def test_importing_the_dataset_folder_into_itself_keeps_where_its_files_came_from(mirror, isolated_home, capsys):
    from mnistctl.data.manifest import read_manifest

    download([mirror.url], policy=FAST)
    folder = dataset_folder(isolated_home)
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--from", str(folder), "--json"])
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    sources = [mirror.url + spec.name for spec in dataset_spec.MNIST_FILES]
    assert [entry["source"] for entry in report["files"]] == sources
    assert sorted(record.source for record in read_manifest(folder).values()) == sorted(sources)
    assert_clean_and_verified(isolated_home)
