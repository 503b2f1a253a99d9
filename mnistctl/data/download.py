"""Fetch the MNIST files from a list of mirrors, verifying every byte before it is kept.

Each file streams into a temp file beside its target; a dropped connection resumes with an HTTP
``Range`` request, transient failures retry with exponential backoff, and the sha256 pinned in
``spec`` decides whether the bytes are moved into place or thrown away (then the next mirror).
A mirror that is merely slow cannot hold the download either: its response must start within the
timeout, it must average ``RetryPolicy.min_rate`` once it has had ``min_rate_after`` seconds, and a
retry only counts as progress when the connection before it moved the file by ``min_progress``.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import socket
import stat
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mnistctl import __version__
from mnistctl.data import spec as dataset_spec
from mnistctl.data.idx import GZIP_MAGIC
from mnistctl.data.manifest import FileRecord, folder_lock, read_manifest, write_manifest
from mnistctl.data.spec import DATASET_NAME, DataFile
from mnistctl.errors import DownloadError, UsageError
from mnistctl.fsutil import fsync_dir, sha256_file, temp_path_for
from mnistctl.paths import dataset_dir, default_mirrors_disabled, env_mirrors, keras_cached_npz

CHUNK_SIZE = 64 * 1024
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 30.0  # the doubling stops here: --retries 40 must not mean sleeping for centuries
# A mirror averaging under 10 KB/s after 30 s is given up for the next one. At that rate MNIST's largest
# file (9.9 MB) takes 17 minutes, far slower than any working mirror on any link that is still usable; a
# drip server (1 byte a second keeps every socket timeout happy) would take 115 days. 30 s lets a slow
# start (TCP slow start, a cold CDN cache) catch up. ``--min-speed`` lowers or lifts it (0: no floor).
DEFAULT_MIN_RATE = 10_000.0  # bytes per second
DEFAULT_MIN_RATE_AFTER = 30.0  # seconds
# A connection that dies after moving the file less than this counts as a failed try, so a server that
# sends a byte per connection uses up --retries instead of being retried forever. 64 KB is one read:
# MNIST's largest file is 152 of them, each of which must still come at the rate above.
MIN_PROGRESS = 64 * 1024
NOTE_INTERVAL = 10.0  # seconds between "retrying" notes while each retry does move the file forward


class DownloadListener(Protocol):
    """What the downloader reports while it works (the CLI draws it; the library never prints)."""

    def file_started(self, spec: DataFile, source: str) -> None: ...

    def advanced(self, spec: DataFile, nbytes: int) -> None: ...

    def restarted(self, spec: DataFile) -> None: ...

    def file_finished(self, spec: DataFile) -> None: ...

    def note(self, message: str) -> None: ...


class _SilentListener:
    def file_started(self, spec: DataFile, source: str) -> None:
        pass

    def advanced(self, spec: DataFile, nbytes: int) -> None:
        pass

    def restarted(self, spec: DataFile) -> None:
        pass

    def file_finished(self, spec: DataFile) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file: its verified record and what this run did for it."""

    record: FileRecord
    status: str  # "downloaded", "present" or "imported"


@dataclass
class DatasetResult:
    """What ``download`` or ``import_dataset`` left in the dataset folder."""

    dataset: str
    folder: Path
    files: list[FileResult] = field(default_factory=list)


class _TransientError(Exception):
    """Worth retrying on the same mirror (timeouts, resets, 5xx)."""


class _MirrorFailed(Exception):
    """This mirror cannot serve this file; move on to the next one."""


class _TooSlow(_MirrorFailed):
    """This mirror serves the file, but below the minimum rate."""


@dataclass(frozen=True)
class RetryPolicy:
    """How patient to be with one mirror."""

    timeout: float = DEFAULT_TIMEOUT  # each silence, and the wait for a response to start
    retries: int = DEFAULT_RETRIES  # tries in a row that fail (or barely move the file) before the next mirror
    backoff: float = DEFAULT_BACKOFF
    min_rate: float = DEFAULT_MIN_RATE  # bytes/s a mirror must average once it has had min_rate_after s; 0: any
    min_rate_after: float = DEFAULT_MIN_RATE_AFTER
    min_progress: int = MIN_PROGRESS  # bytes a dropped connection must add for its retry not to count
    note_interval: float = NOTE_INTERVAL  # at most one note per this many seconds for retries that progress


def normalise_mirror(mirror: str) -> str:
    """Accept URLs and bare folder paths; always end with '/' so file names join onto it."""
    if not mirror.strip():
        # An empty --mirror (or an empty entry) would otherwise mean "the current folder".
        raise UsageError("empty mirror", hint="give a URL (https://..., file://...) or a folder path")
    if "://" not in mirror:
        mirror = Path(mirror).expanduser().resolve().as_uri()
    try:
        parts = urllib.parse.urlsplit(mirror)
        parts.port  # noqa: B018 -- parsing the port is what refuses "http://host:x/"
    except ValueError as exc:
        raise UsageError(f"invalid mirror URL {mirror!r} ({exc})", hint="check --mirror and MNISTCTL_MIRROR") from None
    if parts.scheme not in ("http", "https", "file"):
        raise UsageError(
            f"unsupported mirror URL {mirror!r}", hint="use http://, https:// or file:// (or a folder path)"
        )
    return mirror if mirror.endswith("/") else mirror + "/"


def mirror_list(
    user_mirrors: Sequence[str] = (), *, include_defaults: bool = True, dataset: str = DATASET_NAME
) -> list[str]:
    """User mirrors (flags, then ``$MNISTCTL_MIRROR``) first, then the data set's built-in ones, no repeats."""
    builtin = dataset_spec.get_dataset(dataset).mirrors
    defaults = builtin if include_defaults and not default_mirrors_disabled() else ()
    ordered: list[str] = []
    for mirror in [*user_mirrors, *env_mirrors(), *defaults]:
        normalised = normalise_mirror(mirror)
        if normalised not in ordered:
            ordered.append(normalised)
    return ordered


def download(
    mirrors: Sequence[str] = (),
    *,
    force: bool = False,
    folder: Path | None = None,
    listener: DownloadListener | None = None,
    policy: RetryPolicy = RetryPolicy(),
    include_default_mirrors: bool = True,
    files: Sequence[DataFile] | None = None,
    dataset: str = DATASET_NAME,
) -> DatasetResult:
    """Make sure the verified ``files`` (the data set's four files) are in ``folder``; fetch only what is missing."""
    files = dataset_spec.get_dataset(dataset).files if files is None else files
    folder = folder or dataset_dir(dataset)
    listener = listener or _SilentListener()
    sources = mirror_list(mirrors, include_defaults=include_default_mirrors, dataset=dataset)
    if not sources:
        raise DownloadError("no mirror to try", hint="pass --mirror URL (or set MNISTCTL_MIRROR)")
    result = DatasetResult(dataset, folder)
    with folder_lock(folder, on_wait=listener.note):
        records = read_manifest(folder)
        for spec in files:
            present = None if force else _verified_copy(folder, spec, records.get(spec.name))
            if present is not None:
                result.files.append(FileResult(present, "present"))
                records[spec.name] = present
                continue
            record = _fetch(spec, sources, folder, listener, policy)
            records[spec.name] = record
            write_manifest(folder, dataset, records)
            result.files.append(FileResult(record, "downloaded"))
        write_manifest(folder, dataset, records)
    return result


def _verified_copy(folder: Path, spec: DataFile, known: FileRecord | None) -> FileRecord | None:
    """The record for a file already in place whose bytes check out, else None."""
    path = folder / spec.name
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size != spec.size and (known is None or size != known.bytes):
        return None  # no need to hash a file of the wrong size (it may be huge)
    digest = sha256_file(path)
    if known is not None and digest == known.sha256:
        return known
    if digest == spec.sha256:
        # Put in place by hand (or by an older manifest): the pinned checksum vouches for it.
        return FileRecord(spec.name, digest, path.stat().st_size, str(path), True)
    return None


def _fetch(
    spec: DataFile, sources: list[str], folder: Path, listener: DownloadListener, policy: RetryPolicy
) -> FileRecord:
    failures: list[str] = []
    too_slow = False
    target = folder / spec.name
    for mirror in sources:
        url = urllib.parse.urljoin(mirror, spec.name)
        tmp = temp_path_for(target)
        try:
            listener.file_started(spec, url)
            _transfer(url, tmp, spec, listener, policy)
            digest = sha256_file(tmp)
            if digest != spec.sha256:
                raise _MirrorFailed(f"checksum mismatch (got sha256 {digest[:12]}…)")
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            fsync_dir(folder)
            listener.file_finished(spec)
            return FileRecord(spec.name, digest, spec.size, url, True)
        except _MirrorFailed as exc:
            too_slow = too_slow or isinstance(exc, _TooSlow)
            failures.append(f"{mirror} ({exc})")
            listener.note(f"{spec.name}: {mirror} failed: {exc}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    hint = _offline_hint()
    if too_slow:
        hint += "; on a link this slow, lower --min-speed (0 waits for any mirror)"
    raise DownloadError(f"could not fetch {spec.name} from any mirror: " + "; ".join(failures), hint=hint)


def _offline_hint() -> str:
    cached = keras_cached_npz()
    if cached is not None:
        return f'found {cached}: import it with "mnistctl download --from {cached}"'
    return 'add a mirror with --mirror URL (or MNISTCTL_MIRROR), or import a copy with "mnistctl download --from PATH"'


def _transfer(url: str, tmp: Path, spec: DataFile, listener: DownloadListener, policy: RetryPolicy) -> None:
    """Fill ``tmp`` with the whole file, resuming after transient failures."""
    if url.startswith("file:"):
        _copy_local(url, tmp, spec, listener)
        return
    pace = _Pace(policy)
    failures_in_a_row = 0
    last_note, unnoted = -math.inf, 0
    while True:
        have = tmp.stat().st_size if tmp.exists() else 0
        try:
            _http_stream(url, tmp, have, spec, listener, policy, pace)
            return
        except _TransientError as exc:
            gained = (tmp.stat().st_size if tmp.exists() else 0) - have
            # A connection that moved the file forward by a good part is not failing; one that sent a few
            # bytes (or restarted the file) is, or a server closing after every byte would be retried forever.
            failures_in_a_row = 0 if gained >= policy.min_progress else failures_in_a_row + 1
            if failures_in_a_row > policy.retries:
                raise _MirrorFailed(f"{exc}, gave up after {policy.retries} retries") from None
            delay = retry_delay(policy.backoff, failures_in_a_row)
            now = time.monotonic()
            if failures_in_a_row or now - last_note >= policy.note_interval:
                unseen = f" ({unnoted} more retries since the last note)" if unnoted else ""
                listener.note(f"{spec.name}: {exc}; retrying in {delay:.1f}s{unseen}")
                last_note, unnoted = now, 0
            else:
                unnoted += 1  # a connection that drops after every good part: say so now and then, not each time
            time.sleep(delay)


def retry_delay(backoff: float, failures_in_a_row: int) -> float:
    """Seconds before the next try: ``backoff`` doubled per failure in a row, at most ``MAX_BACKOFF``."""
    return min(backoff * 2 ** min(max(failures_in_a_row - 1, 0), 32), MAX_BACKOFF)


def _copy_local(url: str, tmp: Path, spec: DataFile, listener: DownloadListener) -> None:
    """Copy a ``file://`` mirror's file; its faults fail the mirror, ours (a full disk) stop the download."""
    path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # /dev/zero or a FIFO would never end (or never start): refuse before reading a byte.
            raise _MirrorFailed("not a regular file")
        if info.st_size != spec.size:
            raise _MirrorFailed(f"is {info.st_size} bytes, expected {spec.size}")
        source = open(path, "rb")  # noqa: SIM115 -- closed below; its errors are the mirror's fault
    except FileNotFoundError:
        raise _MirrorFailed("not found") from None
    except OSError as exc:
        raise _MirrorFailed(exc.strerror or str(exc)) from None
    with source, _Sink(tmp, "wb") as sink:
        while sink.written <= spec.size:  # one byte past the size is enough to know it grew
            try:
                chunk = source.read(min(CHUNK_SIZE, spec.size + 1 - sink.written))
            except OSError as exc:
                raise _MirrorFailed(exc.strerror or str(exc)) from None
            if not chunk:
                break
            sink.write(chunk)
            listener.advanced(spec, len(chunk))
    if sink.written != spec.size:
        raise _MirrorFailed(f"changed size while being copied (expected {spec.size} bytes)")


class _Pace:
    """How fast one mirror delivers one file, over all its connections.

    Its clock runs while a connection that got a response is open (from the request to the last
    byte): our backoff sleeps and the tries that got no answer at all (those ``timeout`` and
    ``retries`` already bound) do not count against the mirror.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self._min_rate = policy.min_rate
        self._after = policy.min_rate_after
        self._spent = 0.0
        self._since: float | None = None
        self.received = 0

    def running_since(self, start: float) -> None:
        self._since = start

    def pause(self) -> None:
        if self._since is not None:
            self._spent += time.monotonic() - self._since
            self._since = None

    def advanced(self, nbytes: int) -> None:
        """Count ``nbytes`` more; raise ``_TooSlow`` when the mirror has had its time and is below the floor."""
        self.received += nbytes
        elapsed = self._spent + (time.monotonic() - self._since if self._since is not None else 0.0)
        if self._min_rate > 0 and elapsed >= self._after and self.received < self._min_rate * elapsed:
            raise _TooSlow(f"too slow: {_rate(self.received / elapsed)} after {_seconds(elapsed)}")


def _rate(bytes_per_second: float) -> str:
    for unit, scale in (("MB/s", 1e6), ("KB/s", 1e3)):
        if bytes_per_second >= scale:
            return f"{bytes_per_second / scale:.1f} {unit}"
    return f"{bytes_per_second:.0f} B/s"


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


class _Watchdog:
    """Cuts a connection whose response has not started ``seconds`` after it was made.

    A socket timeout bounds each silence, not the whole wait: a server dripping its status line and
    headers a byte at a time would hold us for days (a redirect's new connection gets a new clock).
    """

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._stopped = False
        self._fired = False

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._seconds, self._fire, args=(sock,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, sock: socket.socket) -> None:
        with self._lock:
            if self._stopped:
                return
            self._fired = True
        with contextlib.suppress(OSError):
            # The plain socket's method, also for TLS: the read in progress then sees an end of file.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def stop(self) -> bool:
        """Never fire from now on; True if it already did."""
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
            return self._fired


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """urllib's default opener (proxies, redirects, TLS), showing each connection it makes to ``watchdog``."""

    class Watched:
        def do_open(self, http_class: type[http.client.HTTPConnection], req: Any, **kwargs: Any) -> Any:
            class Connection(http_class):  # type: ignore[valid-type,misc]
                def connect(self) -> None:
                    super().connect()
                    watchdog.watch(self.sock)

            return super().do_open(Connection, req, **kwargs)  # type: ignore[misc]

    handlers: list[Any] = [type("HTTPHandler", (Watched, urllib.request.HTTPHandler), {})]
    if hasattr(urllib.request, "HTTPSHandler"):  # Python built without ssl has none
        handlers.append(type("HTTPSHandler", (Watched, urllib.request.HTTPSHandler), {}))
    return urllib.request.build_opener(*handlers)


class _Sink:
    """The temp file a download writes. Its errors (a full disk, a read-only or unwritable folder)
    are ours, not the mirror's: they carry the file's path and stop the download at once."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path = path
        self.written = 0
        self._file = self._guard(open, path, mode)

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self._guard(self._file.close)  # a buffered write may only fail here, on flush

    def write(self, chunk: bytes) -> None:
        self._guard(self._file.write, chunk)
        self.written += len(chunk)

    def _guard(self, action: Callable[..., Any], *args: Any) -> Any:
        try:
            return action(*args)
        except OSError as exc:
            # Same errno (a PermissionError stays one), plus the path the one-line message names.
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None


def _http_stream(
    url: str, tmp: Path, have: int, spec: DataFile, listener: DownloadListener, policy: RetryPolicy, pace: _Pace
) -> None:
    headers = {"User-Agent": f"mnistctl/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    no_response = f"no response within {policy.timeout:g}s"
    watchdog = _Watchdog(policy.timeout)
    started = time.monotonic()
    try:
        try:
            response = _opener(watchdog).open(request, timeout=policy.timeout)
        finally:
            cut = watchdog.stop()
    except urllib.error.HTTPError as exc:
        exc.close()
        reason = _http_reason(exc)
        if exc.code == 416 and have:
            tmp.unlink()
            listener.restarted(spec)
            raise _TransientError("server refused to resume") from None
        if exc.code in (408, 429) or exc.code >= 500:
            raise _TransientError(f"HTTP {exc.code} {reason}") from None
        raise _MirrorFailed(f"HTTP {exc.code} {reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise _TransientError("timed out") from None
        if isinstance(reason, ConnectionResetError | ConnectionAbortedError):
            raise _TransientError(f"connection reset ({reason})") from None
        raise _MirrorFailed(str(getattr(reason, "strerror", None) or reason)) from None
    except (TimeoutError, http.client.HTTPException, ConnectionError) as exc:
        raise _TransientError(no_response if cut or isinstance(exc, TimeoutError) else _describe(exc)) from None
    except OSError:
        if cut:
            raise _TransientError(no_response) from None
        raise
    if cut:  # the response came as the watchdog cut it: what follows its headers is gone
        response.close()
        raise _TransientError(no_response)

    pace.running_since(started)
    try:
        _read_body(response, tmp, have, spec, listener, pace)
    finally:
        pace.pause()


def _http_reason(exc: urllib.error.HTTPError) -> str:
    """The reason of an HTTP error, in a few words on one line."""
    if 300 <= exc.code < 400 and "infinite loop" in str(exc.reason):
        return "redirect loop"  # urllib's reason is three lines naming the last redirect's reason
    lines = str(exc.reason).splitlines()
    return lines[0].strip() if lines else ""


def _read_body(
    response: http.client.HTTPResponse, tmp: Path, have: int, spec: DataFile, listener: DownloadListener, pace: _Pace
) -> None:
    with response:
        mode = "ab"
        if have and response.status != 206:
            # The server ignored our Range header and sent the whole file: start over.
            mode, have = "wb", 0
            listener.restarted(spec)
        elif have and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            raise _MirrorFailed(f"bad Content-Range {response.headers.get('Content-Range')!r}")
        _check_length(response, have, spec)
        written = have
        try:
            with _Sink(tmp, mode) as sink:
                # Never read past the pinned size: a server streaming junk forever costs nothing.
                while written < spec.size:
                    # read1: what has arrived, at once; read() would wait for all 64 KB of a drip.
                    chunk = response.read1(min(CHUNK_SIZE, spec.size - written))
                    if not chunk:
                        break
                    magic = GZIP_MAGIC[written:]
                    if magic and chunk[: len(magic)] != magic[: len(chunk)]:
                        kind = response.headers.get("Content-Type", "unknown type")
                        raise _MirrorFailed(f"serves {kind}, not gzip")
                    sink.write(chunk)
                    written += len(chunk)
                    listener.advanced(spec, len(chunk))
                    pace.advanced(len(chunk))
        except TimeoutError:
            raise _TransientError(f"timed out at {written} of {spec.size} bytes") from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise _TransientError(f"connection dropped at {written} of {spec.size} bytes ({_describe(exc)})") from None
    if written < spec.size:
        raise _TransientError(f"connection closed at {written} of {spec.size} bytes")


def _check_length(response: http.client.HTTPResponse, have: int, spec: DataFile) -> None:
    """Fail the mirror when its Content-Length says the file is not the one we want."""
    length = response.headers.get("Content-Length")
    if length is None:
        return
    if not length.strip().isdigit():
        raise _MirrorFailed(f"sends a bad Content-Length {length[:40]!r}")
    if have + int(length) != spec.size:
        kind = response.headers.get("Content-Type", "unknown type")
        raise _MirrorFailed(f"serves {have + int(length)} bytes of {kind}, expected {spec.size}")


def _describe(exc: BaseException) -> str:
    return type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
