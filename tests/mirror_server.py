"""A real HTTP mirror on 127.0.0.1 that serves files from a folder and injects faults on request.

Faults are set per file name: "404", "500" (for the first N requests), "drop" (close half way
through a full-file response), "corrupt" (flip a byte, same length), "html" (a web page instead
of gzip), "hang" (never answer), "ignore-range" (answer 200 with the whole file to a Range request),
"stall" (send half the file, then hang), "endless" (no Content-Length: the file, then junk until the
client hangs up), "bad-length" (a Content-Length that is not a number), "drip" (honour Range, then
send ``Fault.size`` bytes every ``Fault.every`` seconds), "trickle" (honour Range, send ``Fault.size``
bytes, close), "slow-headers" (drip ``Fault.size`` bytes of a header line, one every ``Fault.every``
seconds, then answer normally) and "redirect-loop" (302 to the same URL).
Every request is logged with its Range header so tests can assert how the client behaved.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Fault:
    kind: str
    times: int = 1_000_000  # how many requests it affects; afterwards the file is served normally
    size: int = 1  # bytes per drip ("drip", "trickle", "slow-headers")
    every: float = 0.05  # seconds between drips ("drip", "slow-headers")


@dataclass
class MirrorServer:
    root: Path
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    bytes_sent: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server_ref._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def start(self) -> MirrorServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_for(self, name: str) -> list[str | None]:
        return [rng for path, rng in self.requests if path == name]

    def _fault_for(self, name: str) -> Fault | None:
        with self._lock:
            fault = self.faults.get(name)
            if fault is None or fault.times <= 0:
                return None
            fault.times -= 1
            return fault

    def _send(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        handler.wfile.write(data)
        with self._lock:
            self.bytes_sent += len(data)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        name = handler.path.lstrip("/")
        range_header = handler.headers.get("Range")
        with self._lock:
            self.requests.append((name, range_header))
        path = self.root / name
        settings = self._fault_for(name)
        fault = settings.kind if settings is not None else None
        if fault == "hang":
            self._stop.wait(30)
            return
        if fault == "404" or not path.is_file():
            self._reply(handler, 404, b"not found", "text/plain")
            return
        if fault == "500":
            self._reply(handler, 500, b"internal error", "text/plain")
            return
        if fault == "redirect-loop":
            handler.send_response(302)
            handler.send_header("Location", handler.path)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if fault == "html":
            self._reply(handler, 200, b"<html><body>Please log in</body></html>" * 5, "text/html")
            return
        data = path.read_bytes()
        if fault == "slow-headers" and settings is not None:
            if not self._drip(handler, b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * settings.size, 1, settings.every):
                return
            handler.send_header("Connection", "close")  # the rest is a normal answer
            with contextlib.suppress(OSError):
                handler.wfile.write(b"\r\n")
                self._send_body_headers(handler, data, 0)
                self._send(handler, data)
            return
        if fault in ("endless", "bad-length"):
            self._send_unbounded(handler, data, "many" if fault == "bad-length" else None)
            return
        if fault == "corrupt":
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        start = 0
        if range_header and fault != "ignore-range":
            start = int(range_header.removeprefix("bytes=").split("-")[0])
        body = data[start:]
        handler.send_response(206 if start else 200)
        self._send_body_headers(handler, data, start)
        if fault == "drip" and settings is not None:
            self._drip(handler, body, settings.size, settings.every)
            handler.close_connection = True
            return
        if fault == "trickle" and settings is not None:
            self._send(handler, body[: settings.size])
            handler.close_connection = True
            return
        if fault in ("drop", "stall"):
            self._send(handler, body[: len(body) // 2])
            handler.wfile.flush()
            if fault == "stall":
                self._stop.wait(30)
            handler.close_connection = True
            return
        self._send(handler, body)

    def _send_body_headers(self, handler: BaseHTTPRequestHandler, data: bytes, start: int) -> None:
        handler.send_header("Content-Type", "application/gzip")
        handler.send_header("Content-Length", str(len(data) - start))
        handler.send_header("Accept-Ranges", "bytes")
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()

    def _drip(self, handler: BaseHTTPRequestHandler, data: bytes, size: int, every: float) -> bool:
        """Send ``data`` ``size`` bytes at a time, ``every`` seconds apart; False if the client hung up."""
        try:
            for offset in range(0, len(data), size):
                if offset and self._stop.wait(every):
                    return False
                self._send(handler, data[offset : offset + size])
                handler.wfile.flush()
        except OSError:
            return False  # the client gave up on us: exactly what a slow mirror deserves
        return True

    def _send_unbounded(self, handler: BaseHTTPRequestHandler, data: bytes, length: str | None) -> None:
        """The file with no honest Content-Length, then junk until the client hangs up (at most 64 MB)."""
        handler.send_response(200)
        handler.send_header("Content-Type", "application/gzip")
        if length is not None:
            handler.send_header("Content-Length", length)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        junk = b"\0" * 65536
        try:
            self._send(handler, data)
            for _ in range(1024):
                self._send(handler, junk)
        except OSError:
            pass  # the client stopped reading: exactly what it should do

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        self._send(handler, body)
