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

from mnistctl.errors import UsageError

TMP_SUFFIX = ".tmp"
_HASH_CHUNK = 1 << 20
_TEMP_TOKEN_HEX = 12
_TEMP_NAME = re.compile(rf".+\.[0-9a-f]{{{_TEMP_TOKEN_HEX}}}{re.escape(TMP_SUFFIX)}")
# A temp file untouched this long belongs to a process that died: writers of ours finish (or at
# least touch their file) within seconds, so a live writer's temp is never this old.
STALE_TEMP_AGE = 3600.0
# Most file systems allow 255 bytes per name; a temp name adds ".<12 hex>.tmp" to the target's.
_NAME_MAX = 255


class OutputPathError(UsageError):
    """An output path that cannot be written as asked: no file name, a folder, a device, a file as a folder."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file_name(target: Path) -> None:
    """Refuse a path with no file name in it (``""``, ``.``, ``..``, ``/``): there is nothing to create."""
    if target.name in ("", ".", ".."):
        raise OutputPathError(f"no file name in {str(target)!r}", hint="give a file name")


def check_output_file(target: Path) -> None:
    """Refuse a ``target`` that ``atomic_writer`` could not replace with a file, naming it as the caller gave it.

    A folder, a pipe or a device is never replaced (``os.replace`` would swap ``/dev/null`` for a regular file); a
    symbolic link is replaced itself, as any atomic writer does, unless it points at a folder. Checked again by
    ``atomic_writer``; call it earlier to refuse before any work.
    """
    check_file_name(target)
    if target.is_dir():
        raise OutputPathError(f"{target} is a folder", hint="give a file name")
    try:
        info = target.lstat()
    except FileNotFoundError:
        info = None
    except NotADirectoryError:  # a parent is a file
        info = None
    if info is not None and not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        raise OutputPathError(f"{target} is not a regular file", hint="give the name of a file to write")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(
                    f"{parent} is a file, not a folder", hint=f"choose another place for {target.name}"
                )
            break


def temp_path_for(target: Path) -> Path:
    """A unique temp name beside ``target`` (same folder, so ``os.replace`` is atomic)."""
    check_file_name(target)
    token = f".{secrets.token_hex(_TEMP_TOKEN_HEX // 2)}{TMP_SUFFIX}"
    name = target.name
    # A target name near the limit is valid, its temp name would not be: shorten the part before the token.
    while len(os.fsencode(name + token)) > _NAME_MAX and len(name) > 1:
        name = name[:-1]
    return target.with_name(name + token)


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
    """Yield a binary file; on success it replaces ``target`` atomically, on error it vanishes.

    A target that cannot be a file raises ``OutputPathError`` before anything is written, and an ``OSError`` on the
    temp file (no space, no permission) names ``target``, never the temp name the user did not choose.
    """
    check_output_file(target)
    tmp = temp_path_for(target)
    try:
        with _naming(target, tmp):
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = open(tmp, "wb")  # noqa: SIM115 (closed below, before the rename)
        with handle:
            yield handle
            with _naming(target, tmp):
                handle.flush()
                os.fsync(handle.fileno())
        with _naming(target, tmp):
            check_output_file(target)  # a folder made meanwhile would turn os.replace's error into a temp name
            os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def _naming(target: Path, tmp: Path) -> Iterator[None]:
    """Re-raise an ``OSError`` about ``tmp`` as the same error about ``target``."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or str(tmp) not in (exc.filename, exc.filename2):
            raise
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_writer(target) as handle:
        handle.write(data)
