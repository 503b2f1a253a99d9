"""Mirrors that are slow on purpose: dripping bytes, closing after each byte, dripping headers.

Every one of them keeps each socket timeout happy; each must still be given up for the next mirror.
The limits are RetryPolicy fields, so these tests use fractions of a second where the CLI uses 30 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mnistctl.cli import main
from mnistctl.data.download import RetryPolicy, download
from mnistctl.errors import DownloadError
from mnistctl.fsutil import sha256_file
from tests.mirror_server import Fault

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"


class Notes:
    """A listener that keeps the notes (what the CLI prints as dim lines)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def file_started(self, spec: object, source: str) -> None:
        pass

    def advanced(self, spec: object, nbytes: int) -> None:
        pass

    def restarted(self, spec: object) -> None:
        pass

    def file_finished(self, spec: object) -> None:
        pass

    def note(self, message: str) -> None:
        self.notes.append(message)

    def retrying(self) -> list[str]:
        return [note for note in self.notes if "retrying" in note]


def source_of(result, name: str) -> str:
    return next(item.record.source for item in result.files if item.record.name == name)


def assert_verified(home: Path) -> None:
    from mnistctl.data import spec as dataset_spec

    folder = home / "datasets" / "mnist"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    for spec in dataset_spec.MNIST_FILES:
        assert sha256_file(folder / spec.name) == spec.sha256


def test_dripping_mirror_is_given_up_for_the_next_one(mirror, second_mirror, isolated_home):
    # 1 byte every 20 ms (50 B/s) never trips a 1 s timeout; before, the 138 KB file took 46 minutes.
    mirror.faults[TRAIN_IMAGES] = Fault("drip", size=1, every=0.02)
    policy = RetryPolicy(timeout=1.0, retries=2, backoff=0.01, min_rate=1000, min_rate_after=0.5)
    listener = Notes()
    result = download([mirror.url, second_mirror.url], policy=policy, listener=listener)
    assert source_of(result, TRAIN_IMAGES).startswith(second_mirror.url)
    assert len(mirror.requests_for(TRAIN_IMAGES)) == 1  # too slow is not retried: the mirror has had its chance
    failed = [note for note in listener.notes if "failed" in note]
    assert len(failed) == 1 and "too slow: " in failed[0] and "B/s after 0.5 s" in failed[0]
    assert_verified(isolated_home)


def test_only_mirror_too_slow_says_so_and_names_min_speed(mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("drip", size=1, every=0.02)
    policy = RetryPolicy(timeout=1.0, retries=2, backoff=0.01, min_rate=1000, min_rate_after=0.3)
    with pytest.raises(DownloadError) as failure:
        download([mirror.url], policy=policy)
    message = str(failure.value)
    assert f"{mirror.url} (too slow: " in message
    assert "--min-speed" in message and "--from" in message
    folder = isolated_home / "datasets" / "mnist"
    assert not (folder / TRAIN_IMAGES).exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_mirror_above_the_floor_is_kept_past_the_grace_period(mirror, second_mirror, isolated_home):
    # ~400 KB/s for ~0.35 s: past the 0.1 s grace, well above a 50 KB/s floor.
    mirror.faults[TRAIN_IMAGES] = Fault("drip", size=8192, every=0.02)
    policy = RetryPolicy(timeout=1.0, retries=2, backoff=0.01, min_rate=50_000, min_rate_after=0.1)
    result = download([mirror.url, second_mirror.url], policy=policy)
    assert source_of(result, TRAIN_IMAGES).startswith(mirror.url)
    assert_verified(isolated_home)


def test_min_rate_zero_waits_for_a_slow_mirror(mirror, second_mirror, isolated_home):
    mirror.faults[TEST_IMAGES] = Fault("drip", size=4096, every=0.02)  # ~200 KB/s
    policy = RetryPolicy(timeout=1.0, retries=2, backoff=0.01, min_rate=0, min_rate_after=0.0)
    result = download([mirror.url, second_mirror.url], policy=policy)
    assert source_of(result, TEST_IMAGES).startswith(mirror.url)


def test_time_without_an_answer_and_backoff_sleeps_do_not_count_against_the_rate(mirror, isolated_home):
    # A hang (0.3 s, no response) and two 500s with 0.2 + 0.4 s of backoff, then a fast answer: had that
    # time counted, the first 64 KB would come at under 220 KB/s, below the 300 KB/s floor.
    mirror.faults[TRAIN_IMAGES] = Fault("hang", times=1)
    mirror.faults[TEST_IMAGES] = Fault("500", times=2)
    policy = RetryPolicy(timeout=0.3, retries=2, backoff=0.2, min_rate=300_000, min_rate_after=0.1)
    result = download([mirror.url], policy=policy)
    assert [item.status for item in result.files] == ["downloaded"] * 4
    assert len(mirror.requests_for(TRAIN_IMAGES)) == 2
    assert_verified(isolated_home)


def test_server_closing_after_every_byte_uses_up_the_retries(mirror, second_mirror, isolated_home):
    # It honours Range and sends one byte per connection. Before, any progress reset the count: one
    # connection and one "retrying" line per byte, forever (here: until the fault wore off after 40).
    mirror.faults[TRAIN_IMAGES] = Fault("trickle", size=1, times=40)
    listener = Notes()
    policy = RetryPolicy(timeout=1.0, retries=2, backoff=0.01)
    result = download([mirror.url, second_mirror.url], policy=policy, listener=listener)
    assert source_of(result, TRAIN_IMAGES).startswith(second_mirror.url)
    ranges = mirror.requests_for(TRAIN_IMAGES)
    assert ranges == [None, "bytes=1-", "bytes=2-"]  # the first try and two retries, each resuming
    assert len(listener.retrying()) == 2
    assert any("gave up after 2 retries" in note for note in listener.notes)
    assert_verified(isolated_home)


def test_connections_that_each_deliver_a_good_part_still_finish(mirror, isolated_home):
    # 70 KB per connection (>= 64 KB) is progress: even with --retries 0 the file completes on resume.
    mirror.faults[TRAIN_IMAGES] = Fault("trickle", size=70_000)
    result = download([mirror.url], policy=RetryPolicy(timeout=1.0, retries=0, backoff=0.01))
    assert source_of(result, TRAIN_IMAGES).startswith(mirror.url)
    assert mirror.requests_for(TRAIN_IMAGES) == [None, "bytes=70000-"]
    assert_verified(isolated_home)


def test_retry_notes_for_connections_that_progress_are_throttled(mirror, isolated_home):
    # 2,000 bytes per connection counts as progress here (min_progress 1,000): ~70 connections, which
    # used to print ~70 "retrying" lines. Now one, then at most one every note_interval.
    mirror.faults[TRAIN_IMAGES] = Fault("trickle", size=2000)
    listener = Notes()
    policy = RetryPolicy(timeout=1.0, retries=1, backoff=0.001, min_progress=1000, note_interval=60)
    download([mirror.url], policy=policy, listener=listener)
    assert len(mirror.requests_for(TRAIN_IMAGES)) == 70
    assert len(listener.retrying()) == 1
    assert_verified(isolated_home)


def test_skipped_retry_notes_are_counted_in_the_next_one(mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("trickle", size=2000)
    listener = Notes()
    policy = RetryPolicy(timeout=1.0, retries=1, backoff=0.02, min_progress=1000, note_interval=0.1)
    download([mirror.url], policy=policy, listener=listener)
    notes = listener.retrying()
    assert 2 <= len(notes) < 60
    assert any("more retries since the last note)" in note for note in notes[1:])


def test_server_dripping_its_headers_is_cut_after_the_timeout(mirror, second_mirror, isolated_home):
    # The status line and a header line, one byte every 20 ms for ~2.5 s, then a normal answer: each
    # byte resets the socket timeout, so before, the first mirror held the download until it was done.
    mirror.faults[TRAIN_IMAGES] = Fault("slow-headers", size=100, every=0.02)
    policy = RetryPolicy(timeout=0.4, retries=1, backoff=0.01)
    listener = Notes()
    result = download([mirror.url, second_mirror.url], policy=policy, listener=listener)
    assert source_of(result, TRAIN_IMAGES).startswith(second_mirror.url)
    assert len(mirror.requests_for(TRAIN_IMAGES)) == 2
    assert any("no response within 0.4s" in note for note in listener.notes)
    assert_verified(isolated_home)


@pytest.mark.parametrize("value", ["-1", "nan", "fast"])
def test_cli_min_speed_must_be_a_non_negative_number(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--mirror", "http://127.0.0.1:9/", "--min-speed", value])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2, stderr
    assert "--min-speed" in stderr and "No such option" not in stderr and "Traceback" not in stderr


def test_cli_min_speed_zero_is_accepted(mirror, capsys):
    mirror.faults[TEST_IMAGES] = Fault("drip", size=8192, every=0.01)
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--mirror", mirror.url, "--min-speed", "0", "--json"])
    assert exit_info.value.code == 0, capsys.readouterr().err


def test_cli_one_byte_per_connection_mirror_fails_in_one_line(mirror, capsys):
    mirror.faults[TRAIN_IMAGES] = Fault("trickle", size=1, times=40)
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--mirror", mirror.url, "--retries", "1", "--timeout", "2"])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 1, stderr
    assert len(mirror.requests_for(TRAIN_IMAGES)) == 2
    assert stderr.count("retrying") == 1
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("Error: could not fetch") and stderr.count("Error:") == 1
    assert "gave up after 1 retries" in last_line and "Traceback" not in stderr
