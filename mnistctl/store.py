"""Content-addressed artifact store: bytes live at ``blobs/sha256/ab/cdef…``, named by their sha256.

A blob is written to a temp file, fsynced and renamed into place, so a reader either finds the
whole blob or none. Writing the same bytes twice is a no-op. Deleting is planned first (a frozen
``GcPlan`` saying what would be freed) and executed second.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mnistctl.errors import MnistctlError
from mnistctl.fsutil import STALE_TEMP_AGE, atomic_write_bytes, sha256_file, stale_temps


class CorruptArtifactError(MnistctlError):
    """A blob is missing or its bytes no longer match its name."""


@dataclass(frozen=True)
class GcPlan:
    """Blobs no version references, with the bytes deleting them frees."""

    paths: tuple[Path, ...]
    bytes: int


class ArtifactStore:
    """Blobs under ``root/blobs/sha256``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "blobs" / "sha256"

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        # An existing blob is trusted only after it hashes right: a damaged one is rewritten.
        if not (target.is_file() and sha256_file(target) == digest):
            atomic_write_bytes(target, data)
        return digest

    def has(self, digest: str, size: int | None = None) -> bool:
        target = self.path_for(digest)
        return target.is_file() and (size is None or target.stat().st_size == size)

    def read(self, digest: str, *, verify: bool = True) -> bytes:
        """The blob's bytes; with ``verify`` they are re-hashed against the name."""
        return self.verified(self.path_for(digest), digest) if verify else self.path_for(digest).read_bytes()

    @staticmethod
    def verified(path: Path, digest: str) -> bytes:
        """The bytes of ``path``, which must hash to ``digest``."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptArtifactError(
                f"artifact {digest[:12]} is missing from the store",
                hint='remove the version with "mnistctl models rm" and train it again',
            ) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptArtifactError(
                f"artifact {digest[:12]} is corrupt (its bytes changed on disk)",
                hint='remove the version with "mnistctl models rm" and train it again',
            )
        return data

    def iter_digests(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and len(folder.name) == 2:
                for blob in sorted(folder.iterdir()):
                    if blob.is_file() and not blob.name.endswith(".tmp"):
                        yield folder.name + blob.name

    def stale_temps(self, older_than: float = STALE_TEMP_AGE) -> list[Path]:
        """Temp files of blob writes that died (killed mid-write), older than ``older_than`` seconds.

        Only old ones: a registration writing a blob right now has a fresh temp file of its own.
        """
        if not self.root.is_dir():
            return []
        folders = (folder for folder in sorted(self.root.iterdir()) if folder.is_dir() and len(folder.name) == 2)
        return [path for folder in folders for path in stale_temps(folder, older_than=older_than)]

    def plan_gc(self, referenced: Iterable[str]) -> GcPlan:
        """Unreferenced blobs, and temp files of blob writes that died long ago."""
        keep = set(referenced)
        paths = tuple(self.path_for(digest) for digest in self.iter_digests() if digest not in keep)
        paths += tuple(self.stale_temps())
        return GcPlan(paths, sum(_size(path) for path in paths))

    def execute_gc(self, plan: GcPlan) -> None:
        for path in plan.paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):
                os.rmdir(path.parent)  # only succeeds when the fan-out folder is now empty


def _size(path: Path) -> int:
    """Bytes of ``path``; 0 when something else removed it meanwhile."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
