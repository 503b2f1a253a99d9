"""Atomic file writes: write ``NAME.<random>.tmp``, fsync, ``os.replace``.

A killed process leaves at worst a ``.tmp`` file that nobody trusts, never a half-written target.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"
_HASH_CHUNK = 1 << 20
_TEMP_TOKEN_HEX = 12
_TEMP_NAME = re.compile(rf".+\.[0-9a-f]{{{_TEMP_TOKEN_HEX}}}{re.escape(TMP_SUFFIX)}")
# A temp file untouched this long belongs to a process that died: writers of ours finish (or at
# least touch their file) within seconds, so a live writer's temp is never this old.
STALE_TEMP_AGE = 3600.0


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def temp_path_for(target: Path) -> Path:
    """A unique temp name beside ``target`` (same folder, so ``os.replace`` is atomic)."""
    return target.with_name(f"{target.name}.{secrets.token_hex(_TEMP_TOKEN_HEX // 2)}{TMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """True for names ``temp_path_for`` makes (``NAME.<12 hex>.tmp``)."""
    return _TEMP_NAME.fullmatch(name) is not None


def stale_temps(folder: Path, *, older_than: float | None = STALE_TEMP_AGE) -> list[Path]:
    """Temp files directly in ``folder`` left by killed writers.

    With ``older_than=None`` every temp file counts: only for a caller that holds the lock every
    writer of ``folder`` takes, so no live writer can exist.
    """
    if not folder.is_dir():
        return []
    cutoff = None if older_than is None else time.time() - older_than
    found = []
    for path in folder.iterdir():
        if not is_temp_name(path.name):
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue  # its writer just finished or cleaned up
        if stat.S_ISREG(info.st_mode) and (cutoff is None or info.st_mtime < cutoff):
            found.append(path)
    return sorted(found)


def remove_stale_temps(folder: Path, *, older_than: float | None = STALE_TEMP_AGE) -> list[Path]:
    """Delete ``stale_temps(folder)``; best effort (an unwritable folder fails later, more clearly)."""
    removed = []
    for path in stale_temps(folder, older_than=older_than):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def fsync_dir(folder: Path) -> None:
    """Flush a folder entry so a rename survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(target: Path) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces ``target`` atomically, on error it vanishes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_writer(target) as handle:
        handle.write(data)
