"""A real ``mnistctl serve`` for the tests: the installed entry point in a subprocess, on a free port.

``Server(*args)`` starts ``mnistctl serve --port 0 ARGS`` in its own session (cwd: the repository) and drains its
stderr in a thread for its whole life, so that a chatty server never blocks on a full pipe; the first URL printed
there becomes ``url`` (``http://127.0.0.1:PORT``, no trailing slash). ``wait_ready()`` waits for ``/healthz`` to
answer 200 and returns the server; ``stop()`` sends Ctrl-C (SIGINT, or the signal given), kills the session if it
does not stop in time, and returns the exit code. Used as a context manager it is ready inside the ``with`` and
stopped after it.

Options: ``home`` sets ``MNISTCTL_HOME``, ``token`` sets ``MNISTCTL_TOKEN``, ``env`` overrides any other variable.
``MNISTCTL_MODEL``, ``MNISTCTL_TOKEN`` and ``MNISTCTL_DEBUG`` are never inherited: a module-scoped server starts
before the autouse fixture cleans the environment. ``lines`` holds what it printed on stderr, line by line, and
``stderr`` the same as one string.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from tests.conftest import REPO

NOT_INHERITED = ("MNISTCTL_MODEL", "MNISTCTL_TOKEN", "MNISTCTL_DEBUG")


def mnistctl_command() -> list[str]:
    """The ``mnistctl`` entry point beside this Python, or ``python -m mnistctl`` where there is none."""
    executable = Path(sys.executable).with_name("mnistctl")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "mnistctl"]


class Server:
    """``mnistctl serve --port 0 ARGS`` in a subprocess; see the module's docstring."""

    def __init__(
        self,
        *args: str,
        home: Path | None = None,
        token: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        environment = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
        if home is not None:
            environment["MNISTCTL_HOME"] = str(home)
        if token is not None:
            environment["MNISTCTL_TOKEN"] = token
        environment.update(env or {})
        self.process = subprocess.Popen(
            [*mnistctl_command(), "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=environment,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.url = ""
        self._url_seen = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            found = re.search(r"https?://[^\s/]+", line)
            if found and not self.url:
                self.url = found.group(0)
                self._url_seen.set()
        self._url_seen.set()

    @property
    def stderr(self) -> str:
        """Everything it printed on stderr so far."""
        return "".join(self.lines)

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def _healthy(self) -> bool:
        connection = http.client.HTTPConnection(urlsplit(self.url).hostname or "127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 60) -> Server:
        """Wait for the URL on stderr, then for ``/healthz`` to answer 200; fail with its stderr otherwise."""
        deadline = time.monotonic() + timeout
        assert self._url_seen.wait(timeout) and self.url, f"mnistctl serve printed no URL:\n{self.stderr}"
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"mnistctl serve exited {self.process.returncode}:\n{self.stderr}"
            try:
                if self._healthy():
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.url}/healthz not ready in {timeout} s:\n{self.stderr}")

    def stop(self, sig: int = signal.SIGINT) -> int:
        """Stop it as Ctrl-C does (or with ``sig``), killing its session after 20 s; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode

    def __enter__(self) -> Server:
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
