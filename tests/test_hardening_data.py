"""Hostile and unlucky inputs to the data layer: bombs, huge headers, full disks, busy locks, stale temps.

Memory-hungry cases run the real CLI in a subprocess and read its peak RSS from ``os.wait4``, so a
regression shows up as a number instead of an out-of-memory machine; disk cases mount a real tiny
tmpfs (or a read-only bind) in a private mount namespace with ``unshare`` and are skipped without it.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from mnistctl.cli import main
from mnistctl.data import spec as dataset_spec
from mnistctl.data.download import RetryPolicy, download
from mnistctl.data.idx import to_idx
from mnistctl.data.importer import import_dataset
from mnistctl.data.loader import load
from mnistctl.data.manifest import FileRecord, write_manifest
from mnistctl.errors import InvalidDataError, UsageError
from mnistctl.fsutil import sha256_file
from tests.conftest import REPO, measured
from tests.mirror_server import Fault, MirrorServer
from tests.synthetic import make_dataset, write_idx_mirror, write_npz

FAST = RetryPolicy(timeout=1.0, retries=1, backoff=0.01)
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
MB = 1 << 20
# What a CLI process that decodes a few hundred tiny digits may use; every bomb below expands far beyond it.
MEMORY_CEILING = 200 * MB

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses os.wait4 and POSIX file modes")


def dataset_folder(home: Path) -> Path:
    return home / "datasets" / "mnist"


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp")) if folder.exists() else []


def cli_command() -> list[str]:
    executable = Path(sys.executable).with_name("mnistctl")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "mnistctl"]


def run_measured(command: list[str], *, env: dict | None = None, timeout: float = 60, preexec_fn=None):
    """Run ``command``; return (exit code, stderr text, peak RSS in bytes of that command)."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "maxrss"
        process = subprocess.Popen(
            measured(report, command),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **(env or {})},
            cwd=REPO,
            preexec_fn=preexec_fn,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"{command} ran past {timeout}s")
        err.seek(0)
        # ru_maxrss is in KiB on Linux, bytes on macOS.
        kib = int(report.read_text()) if report.exists() else 0
        peak = kib if sys.platform == "darwin" else kib * 1024
        return code, err.read().decode(), peak


def error_line(stderr: str) -> str:
    """The one ``Error:`` line, which must end stderr (progress notes may come before it)."""
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: ") and stderr.count("Error:") == 1, stderr
    assert "Traceback" not in stderr
    return lines[-1]


# -- confinement: real full disks and read-only folders without root on the host -------------


@cache
def _works(*command: str) -> bool:
    """Whether ``command`` (with DIR standing for a scratch folder) succeeds here."""
    probe_dir = tempfile.mkdtemp()
    try:
        argv = [probe_dir if part == "DIR" else part for part in command]
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


# Runs the command on the tmpfs, then reports any temp file it left there (the mount dies with the namespace).
_TMPFS = (
    'mount -t tmpfs -o size={size}k tmpfs "$0" || exit 99; "$@"; rc=$?; '
    'find "$0" -name "*.tmp" | sed "s/^/left behind: /" >&2; exit $rc'
)
_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def in_tiny_tmpfs(folder: Path, size_kb: int) -> list[str]:
    """A prefix that runs a command with a ``size_kb`` tmpfs mounted on ``folder`` (a private mount)."""
    if not shutil.which("unshare") or not _works("unshare", "-rm", "sh", "-c", _TMPFS.format(size=8), "DIR", "true"):
        pytest.skip("needs unshare with user and mount namespaces to mount a small tmpfs")
    return ["unshare", "-rm", "sh", "-c", _TMPFS.format(size=size_kb), str(folder)]


def read_only(folder: Path) -> list[str]:
    """A prefix that runs a command with ``folder`` bind-mounted read-only (a private mount)."""
    if not shutil.which("unshare") or not _works("unshare", "-rm", "sh", "-c", _READ_ONLY, "DIR", "true"):
        pytest.skip("needs unshare with user and mount namespaces to mount a folder read-only")
    return ["unshare", "-rm", "sh", "-c", _READ_ONLY, str(folder)]


def as_unprivileged() -> list[str]:
    """A prefix under which file modes apply (root ignores them): nothing, or a user namespace."""
    if os.geteuid() != 0:
        return []
    prefix = ["unshare", "-U", "--map-user=65534", "--map-group=65534"]
    if not shutil.which("unshare") or not _works(*prefix, "test", "-d", "DIR"):
        pytest.skip("running as root and cannot drop privileges with unshare")
    return prefix


@pytest.fixture
def full_size_mirror_dir(tmp_path: Path) -> Path:
    """A mirror folder whose train images have the official size and gzip magic (a CLI subprocess
    checks sizes against the real pinned specs), but not the official bytes."""
    folder = tmp_path / "full-size-mirror"
    folder.mkdir()
    size = next(spec.size for spec in dataset_spec.MNIST_FILES if spec.name == TRAIN_IMAGES)
    with open(folder / TRAIN_IMAGES, "wb") as handle:
        handle.write(b"\x1f\x8b")
        handle.truncate(size)
    return folder


# -- item 5: gzip bombs ----------------------------------------------------------------------


def write_gzip_bomb(path: Path, header: bytes, expanded: int) -> Path:
    """A gzip file: ``header`` then zeros, ``expanded`` bytes in all, written in constant memory.

    Gzip allows several members back to back; every member after the first is the same compressed
    8 MiB of zeros, so a bomb of any size costs one small compression.
    """
    chunk = 8 * MB
    zeros = gzip.compress(bytes(chunk), compresslevel=1, mtime=0)
    with open(path, "wb") as out:
        out.write(gzip.compress(header + bytes(chunk - len(header)), compresslevel=1, mtime=0))
        for _ in range(expanded // chunk - 1):
            out.write(zeros)
    return path


def test_gzip_bomb_in_idx_folder_is_refused_at_the_first_byte_too_many(tmp_path, tiny_dataset, isolated_home):
    folder = tmp_path / "idx"
    write_idx_mirror(folder, tiny_dataset)
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 300, 28, 28)
    write_gzip_bomb(folder / TRAIN_IMAGES, header, 512 * MB)  # header: 300 images; body: 512 MB
    code, stderr, peak = run_measured([*cli_command(), "download", "--from", str(folder)])
    assert code == 1
    assert "longer than its header" in error_line(stderr)
    assert peak < MEMORY_CEILING, f"peak RSS {peak // MB} MB: the bomb was decompressed"
    assert not dataset_folder(isolated_home).exists() or not list(dataset_folder(isolated_home).glob("*.gz"))


def test_loading_a_bomb_placed_in_the_dataset_folder_stops_early(data_home):
    import tracemalloc

    folder = dataset_folder(data_home)
    header = to_idx(np.zeros((100, 28, 28), np.uint8))[:16]
    target = write_gzip_bomb(folder / "t10k-images-idx3-ubyte.gz", header, 64 * MB)
    records = json_records(folder)
    records[target.name] = FileRecord(target.name, sha256_file(target), target.stat().st_size, "test", False)
    write_manifest(folder, "mnist", records)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidDataError, match="longer than its header"):
            load("test")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MB, f"allocated {peak // MB} MB decoding a 78 KB image file"


def json_records(folder: Path) -> dict[str, FileRecord]:
    payload = json.loads((folder / "manifest.json").read_text())
    return {entry["name"]: FileRecord(**entry) for entry in payload["files"]}


# -- item 6: npz bombs, pickles, and who may replace the official data --------------------------


def write_blank_npz(path: Path, images: int) -> Path:
    """An npz of ``images`` blank 28x28 images (+ labels), streamed into the zip in constant memory."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        _write_npy(archive, "x_train", np.dtype(np.uint8), (images, 28, 28))
        _write_npy(archive, "y_train", np.dtype(np.uint8), (images,))
        np.lib.format.write_array(archive.open("x_test.npy", "w"), np.zeros((10, 28, 28), np.uint8))
        np.lib.format.write_array(archive.open("y_test.npy", "w"), np.zeros(10, np.uint8))
    return path


def _write_npy(archive: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    total = int(np.prod(shape)) * dtype.itemsize
    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(member, header)
        zeros = bytes(8 * MB)
        for start in range(0, total, len(zeros)):
            member.write(zeros[: min(len(zeros), total - start)])


def test_npz_of_millions_of_blank_images_is_refused_from_its_headers(tmp_path, isolated_home):
    npz = write_blank_npz(tmp_path / "blank.npz", 700_000)  # 549 MB of pixels, about 2.5 MB on disk
    code, stderr, peak = run_measured([*cli_command(), "download", "--from", str(npz)])
    assert code == 1
    line = error_line(stderr)
    assert "700,000" in line and "300,000" in line
    assert peak < MEMORY_CEILING, f"peak RSS {peak // MB} MB: the arrays were loaded before checking"
    assert not list(dataset_folder(isolated_home).glob("*.gz")) if dataset_folder(isolated_home).exists() else True


def test_npz_with_a_pickled_object_array_is_refused(tmp_path, tiny_dataset):
    arrays = dict(tiny_dataset)
    arrays["y_train"] = np.array([int(label) for label in tiny_dataset["y_train"]], dtype=object)
    np.savez(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(InvalidDataError, match=r"y_train holds Python objects"):
        import_dataset(tmp_path / "pickled.npz")


def test_npz_with_float_labels_is_refused_before_loading(tmp_path, tiny_dataset):
    arrays = dict(tiny_dataset, y_test=tiny_dataset["y_test"].astype(np.float64))
    with pytest.raises(InvalidDataError, match="expected integer labels"):
        import_dataset(write_npz(tmp_path / "floats.npz", arrays))


@pytest.fixture
def official_home(mirror, isolated_home) -> Path:
    """The home with the (test-pinned) official files downloaded and verified."""
    download([mirror.url], policy=FAST)
    return isolated_home


def other_digits_npz(tmp_path: Path) -> Path:
    return write_npz(tmp_path / "mine.npz", make_dataset(train=50, test=20, seed=7))


def test_unofficial_import_does_not_replace_official_data_without_force(official_home, tmp_path):
    folder = dataset_folder(official_home)
    before = {spec.name: sha256_file(folder / spec.name) for spec in dataset_spec.MNIST_FILES}
    with pytest.raises(UsageError, match="--force"):
        import_dataset(other_digits_npz(tmp_path))
    assert {name: sha256_file(folder / name) for name in before} == before
    assert all(record.official for record in json_records(folder).values())


def test_force_replaces_official_data_with_an_unofficial_copy(official_home, tmp_path):
    result = import_dataset(other_digits_npz(tmp_path), force=True)
    assert not any(item.record.official for item in result.files)
    images, _ = load("test")
    assert images.shape == (20, 28, 28)


def test_reimporting_the_official_content_needs_no_force(official_home, tiny_npz):
    result = import_dataset(tiny_npz)  # the same digits the mirror serves, re-encoded: still official
    assert all(item.record.official for item in result.files)


def test_cli_from_with_force_is_no_longer_a_usage_error(official_home, tmp_path, capsys):
    npz = other_digits_npz(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main(["download", "--from", str(npz)])
    assert refused.value.code == 2
    assert "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit) as forced:
        main(["download", "--from", str(npz), "--force", "--json"])
    assert forced.value.code == 0
    assert {entry["official"] for entry in json.loads(capsys.readouterr().out)["files"]} == {False}


# -- item 12: stale temp files ------------------------------------------------------------------


def test_temp_file_of_a_killed_download_is_removed_by_the_next_run(full_size_mirror_dir, mirror, isolated_home):
    stalling = MirrorServer(full_size_mirror_dir, faults={TRAIN_IMAGES: Fault("stall")}).start()
    folder = dataset_folder(isolated_home)
    process = subprocess.Popen(
        [*cli_command(), "download", "--mirror", stalling.url, "--timeout", "20"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not temp_files(folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert temp_files(folder), "the download never started writing"
    finally:
        process.send_signal(signal.SIGKILL)  # as a power cut or the OOM killer would
        process.wait(timeout=20)
        stalling.stop()
    assert temp_files(folder)  # what a killed process leaves behind
    download([mirror.url], policy=FAST)
    assert temp_files(folder) == []


def test_models_gc_removes_stale_store_temps_but_not_a_live_writers(isolated_home):
    from mnistctl.registry import Registry

    fan_out = isolated_home / "blobs" / "sha256" / "ab"
    fan_out.mkdir(parents=True)
    stale = fan_out / ("cd" * 31 + ".0123456789ab.tmp")
    live = fan_out / ("ef" * 31 + ".ba9876543210.tmp")
    stale.write_bytes(b"x" * 1000)
    live.write_bytes(b"y" * 10)
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    plan = Registry().gc(dry_run=True)
    assert stale in plan.paths and live not in plan.paths and plan.bytes >= 1000
    assert stale.exists()
    Registry().gc()
    assert not stale.exists() and live.exists()


# -- item 13: a portable lock with a timeout --------------------------------------------------


def test_data_modules_import_where_fcntl_does_not_exist():
    code = "import sys; sys.modules['fcntl'] = None; import mnistctl.data.download, mnistctl.data.importer"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr.decode()[-800:]


def test_download_while_another_holds_the_lock_fails_clearly(mirror, isolated_home):
    folder = dataset_folder(isolated_home)
    folder.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire();"
            " print('held', flush=True); time.sleep(60)",
            str(folder / ".lock"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        started = time.monotonic()
        code, stderr, _ = run_measured(
            [*cli_command(), "download", "--mirror", mirror.url], env={"MNISTCTL_LOCK_TIMEOUT": "0.5"}, timeout=30
        )
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    line = error_line(stderr)
    assert f"another mnistctl is downloading into {folder}" in line and "MNISTCTL_LOCK_TIMEOUT" in line
    assert "waiting up to 0.5s" in stderr  # said before waiting, not only after giving up
    assert time.monotonic() - started < 15
    assert mirror.requests == []


def test_lock_timeout_that_is_not_a_number_is_a_usage_error(monkeypatch, tiny_npz):
    monkeypatch.setenv("MNISTCTL_LOCK_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="MNISTCTL_LOCK_TIMEOUT='soon' is not a number of seconds"):
        import_dataset(tiny_npz)


# -- item 11: full disks and unwritable folders are not a mirror's fault -------------------------


@pytest.mark.parametrize("kind", ["http", "folder"])
def test_full_disk_stops_and_says_so_instead_of_trying_the_next_mirror(kind, full_size_mirror_dir, isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    backup = full_size_mirror_dir.parent / "backup-mirror"
    shutil.copytree(full_size_mirror_dir, backup)
    server = MirrorServer(full_size_mirror_dir).start()
    try:
        first = server.url if kind == "http" else str(full_size_mirror_dir)
        prefix = in_tiny_tmpfs(isolated_home, 64)
        code, stderr, _ = run_measured(
            [*prefix, *cli_command(), "download", "--mirror", first, "--mirror", str(backup)]
        )
    finally:
        server.stop()
    assert code == 1
    line = error_line(stderr)
    assert line.startswith("Error: no space left on device") and "free some space" in line
    assert "--mirror" not in line and str(backup) not in line
    if kind == "http":
        assert len(server.requests_for(TRAIN_IMAGES)) == 1  # not retried either


def test_full_disk_during_import_says_so_and_leaves_no_temp_files(tiny_npz, isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    command = [*in_tiny_tmpfs(isolated_home, 64), *cli_command(), "download", "--from", str(tiny_npz)]
    code, stderr, _ = run_measured(command)
    assert code == 1
    assert error_line(stderr).startswith("Error: no space left on device")  # and nothing "left behind"


def test_read_only_home_is_one_clear_line(tiny_mirror_dir, isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    code, stderr, _ = run_measured(
        [*read_only(isolated_home), *cli_command(), "download", "--mirror", str(tiny_mirror_dir)]
    )
    assert code == 1
    line = error_line(stderr)
    assert "read-only" in line.lower() and "MNISTCTL_HOME" in line


def test_unwritable_dataset_folder_is_not_a_mirror_failure(full_size_mirror_dir, isolated_home):
    folder = dataset_folder(isolated_home)
    folder.mkdir(parents=True)
    (folder / ".lock").touch()
    prefix = as_unprivileged()
    folder.chmod(0o555)
    try:
        code, stderr, _ = run_measured([*prefix, *cli_command(), "download", "--mirror", str(full_size_mirror_dir)])
    finally:
        folder.chmod(0o755)
    assert code == 1
    line = error_line(stderr)
    assert line.startswith("Error: permission denied") and str(folder) in line
    assert "could not fetch" not in line


# -- siblings: bodies longer than promised, files that are not files, labels out of range ---------


def test_folder_mirror_with_a_file_of_the_wrong_size_is_refused_without_copying_it(tiny_mirror_dir, isolated_home):
    path = tiny_mirror_dir / TRAIN_IMAGES
    size = path.stat().st_size
    with open(path, "ab") as handle:
        handle.write(bytes(MB))
    with pytest.raises(Exception, match=rf"{size + MB} bytes, expected {size}"):
        download([str(tiny_mirror_dir)], policy=FAST)
    assert temp_files(dataset_folder(isolated_home)) == []


def test_folder_mirror_entry_that_is_not_a_regular_file_is_refused(tiny_mirror_dir, tmp_path):
    (tiny_mirror_dir / TRAIN_IMAGES).unlink()
    (tiny_mirror_dir / TRAIN_IMAGES).symlink_to("/dev/zero")

    def cap_file_size() -> None:
        import resource

        # Without the fix the copy of /dev/zero never ends: stop it at 16 MB instead of filling the disk.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * MB, 16 * MB))

    code, stderr, _ = run_measured(
        [*cli_command(), "download", "--mirror", str(tiny_mirror_dir)], preexec_fn=cap_file_size, timeout=30
    )
    assert code == 1
    assert "not a regular file" in error_line(stderr)


def test_server_streaming_past_the_expected_size_is_cut_off(mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("endless")
    download([mirror.url], policy=FAST)  # the first spec.size bytes are the right ones
    assert sha256_file(dataset_folder(isolated_home) / TRAIN_IMAGES) == dataset_spec.MNIST_FILES[0].sha256
    assert temp_files(dataset_folder(isolated_home)) == []


def test_content_length_that_is_not_a_number_is_a_mirror_failure(mirror, second_mirror, isolated_home):
    mirror.faults[TRAIN_IMAGES] = Fault("bad-length")
    result = download([mirror.url, second_mirror.url], policy=FAST)
    record = next(item.record for item in result.files if item.record.name == TRAIN_IMAGES)
    assert record.source.startswith(second_mirror.url)


def test_idx_folder_with_a_label_above_9_is_refused(tmp_path, tiny_dataset, isolated_home):
    arrays = dict(tiny_dataset, y_test=tiny_dataset["y_test"].copy())
    arrays["y_test"][3] = 10
    folder = tmp_path / "idx"
    write_idx_mirror(folder, arrays)
    with pytest.raises(InvalidDataError, match=r"labels must be 0\.\.9"):
        import_dataset(folder)
    assert not dataset_folder(isolated_home).exists() or not list(dataset_folder(isolated_home).glob("*.gz"))


def test_idx_header_claiming_more_images_than_allowed_is_refused_before_reading(tmp_path):
    from mnistctl.data.idx import read_idx_file

    path = tmp_path / "huge-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + (10_000_000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    path.write_bytes(gzip.compress(header + bytes(1000)))
    with pytest.raises(InvalidDataError, match=r"10,000,000 .*at most 300,000"):
        read_idx_file(path)
