"""Environment variables and download options with odd values: one clear line, the right exit code.

Found by a hostile sweep after issue 11's listed items; each test failed before its fix.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "mnistctl" / "builtin" / "examples" / "seven-photo.jpg"


def _error(result, code: int) -> str:
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("Error:")]
    return line


@pytest.mark.parametrize(
    "args",
    [
        ("--timeout", "inf"),  # was: unexpected OverflowError (timestamp out of range)
        ("--timeout", "1e300"),
        ("--timeout", "nan"),
        ("--retries", "100000"),  # the backoff doubled without end: centuries of sleep
        ("--mirror", ""),  # was: the current folder, as file:///cwd/
    ],
)
def test_download_options_out_of_range_are_usage_errors(args):
    _error(run_cli("download", "--no-default-mirrors", *args), 2)


@pytest.mark.parametrize("mirror", ["http://[::1", "ftp://example.org/mnist/", "http://host:port/"])
def test_a_malformed_mirror_variable_is_a_usage_error(mirror):
    # "http://[::1" was: unexpected ValueError: Invalid IPv6 URL.
    assert "mirror" in _error(run_cli("download", env={"MNISTCTL_MIRROR": mirror}), 2)


def test_retry_delay_doubles_up_to_a_cap():
    from mnistctl.data.download import MAX_BACKOFF, retry_delay

    assert [retry_delay(0.5, n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert retry_delay(0.5, 40) == MAX_BACKOFF and retry_delay(0.5, 5000) == MAX_BACKOFF


def test_home_that_is_a_file_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for args in (("models", "list"), ("models", "default", "builtin"), ("download", "--no-default-mirrors")):
        line = _error(run_cli(*args, env={"MNISTCTL_HOME": str(blocker)}), 1)
        assert "MNISTCTL_HOME" in line and "not a folder" in line


def test_home_that_is_a_dangling_symlink_is_named(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    line = _error(run_cli("models", "default", "builtin", env={"MNISTCTL_HOME": str(link)}), 1)
    assert "symlink to a missing folder" in line
    assert not (tmp_path / "gone").exists()


def test_blank_home_means_unset(tmp_path):
    # Was: a folder named " " created in the current directory.
    result = run_cli("models", "list", env={"MNISTCTL_HOME": " ", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr.decode()
    assert not (REPO / " ").exists()


@pytest.mark.parametrize("value, says", [("mlp:abc", "invalid version"), ("nosuch", "no model")])
def test_errors_from_the_model_variable_name_it(trained_home, value, says):
    result = run_cli("predict", str(EXAMPLE), env={"MNISTCTL_MODEL": value})
    line = _error(result, 2 if "invalid" in says else 1)
    assert line.startswith(f"Error: MNISTCTL_MODEL={value}: ") and says in line


def test_a_dataset_file_damaged_after_verification_says_how_to_repair(trained_home):
    path = trained_home / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)  # same size, broken deflate stream and CRC
    path.write_bytes(bytes(data))
    with pytest.raises((OSError, EOFError, gzip.BadGzipFile)):
        gzip.decompress(bytes(data))
    line = _error(run_cli("evaluate", "--model", "mlp:1"), 1)
    assert 'run "mnistctl download"' in line
