"""The dataset folder's manifest: which files are verified, their checksums and where they came from.

``manifest.json`` is rewritten atomically after each verified file lands, so it never names a
file that was not checked. A lock file (``filelock``: flock on POSIX, msvcrt on Windows)
serialises concurrent downloads into one folder.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from mnistctl.errors import MnistctlError, UsageError
from mnistctl.fsutil import atomic_write_bytes, remove_stale_temps
from mnistctl.paths import ENV_LOCK_TIMEOUT

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
# Long enough for another process to fetch MNIST over a slow link; MNISTCTL_LOCK_TIMEOUT overrides it.
DEFAULT_LOCK_TIMEOUT = 600.0


class DatasetBusyError(MnistctlError):
    """Another mnistctl held the dataset folder's lock for longer than we were willing to wait."""


@dataclass(frozen=True)
class FileRecord:
    """One verified file in the dataset folder."""

    name: str
    sha256: str  # of the bytes on disk
    bytes: int
    source: str  # URL or path it came from
    official: bool  # content identical to the official MNIST file


def read_manifest(folder: Path) -> dict[str, FileRecord]:
    """Records by file name; an absent or unreadable manifest means nothing is verified."""
    try:
        payload = json.loads((folder / MANIFEST_NAME).read_text())
        return {entry["name"]: FileRecord(**entry) for entry in payload["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_manifest(folder: Path, dataset: str, records: dict[str, FileRecord]) -> None:
    """Atomically replace the manifest with ``records``."""
    payload = {"dataset": dataset, "files": [asdict(records[name]) for name in sorted(records)]}
    atomic_write_bytes(folder / MANIFEST_NAME, (json.dumps(payload, indent=2) + "\n").encode())


def lock_timeout() -> float:
    """Seconds to wait for a dataset folder's lock: ``$MNISTCTL_LOCK_TIMEOUT`` or the default."""
    raw = os.environ.get(ENV_LOCK_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise UsageError(
            f"{ENV_LOCK_TIMEOUT}={raw!r} is not a number of seconds", hint="set it to e.g. 600, or unset it"
        )
    return value


@contextlib.contextmanager
def folder_lock(folder: Path, *, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the dataset folder (a second download waits, then finds files present).

    Waits up to ``lock_timeout()`` seconds (telling ``on_wait`` once that it is waiting), then raises
    ``DatasetBusyError``. Once held, temp files left in the folder by killed processes are removed:
    every writer of the folder holds this lock, so none of them can be live.
    """
    folder.mkdir(parents=True, exist_ok=True)
    timeout = lock_timeout()
    lock = FileLock(folder / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait(f"another mnistctl is downloading into {folder}; waiting up to {timeout:g}s for it")
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise DatasetBusyError(
                f"another mnistctl is downloading into {folder} (waited {timeout:g}s)",
                hint=f"wait for it to finish and run this again, or set {ENV_LOCK_TIMEOUT}=SECONDS to wait longer",
            ) from None
    try:
        remove_stale_temps(folder, older_than=None)
        yield
    finally:
        lock.release()
