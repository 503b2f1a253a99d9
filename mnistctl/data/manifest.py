"""The dataset folder's manifest: which files are verified, their checksums and where they came from.

``manifest.json`` is rewritten atomically after each verified file lands, so it never names a
file that was not checked. A lock file serialises concurrent downloads into one folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from mnistctl.fsutil import atomic_write_bytes

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"


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


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the dataset folder (a second download waits, then finds files present)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
