"""Running the app under uvicorn: bind the socket ourselves (so port 0 can say which port it got), then serve it
from this process or from N spawned worker processes sharing it.

SIGINT (Ctrl-C) and SIGTERM stop the server gracefully: no new connections, requests in flight get up to the
request timeout to finish, then ``run`` returns normally.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from mnistctl.errors import MnistctlError
from mnistctl.paths import ENV_SERVE_CONFIG, debug_enabled
from mnistctl.serve.config import ServeConfig

APP_FACTORY = "mnistctl.serve.app:app_from_env"
BACKLOG = 2048
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ServeError(MnistctlError):
    """The server could not start: the address is taken or cannot be bound."""


def logging_config() -> dict[str, Any]:
    """One format for uvicorn's messages and ours, on stderr; uvicorn's access log off (it costs throughput)."""
    level = "DEBUG" if debug_enabled() else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s [%(process)d] %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "mnistctl": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port); ``ServeError`` when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ServeError(f"cannot bind {host}: {exc.strerror or exc}", hint="check --host") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        hint = "choose another --port, or --port 0 for any free one" if port else "check --host"
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint=hint) from None
    sock.set_inheritable(True)  # handed to the worker processes
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run(config: ServeConfig, sock: socket.socket, workers: int = 1) -> None:
    """Serve ``config``'s app on ``sock`` until SIGINT or SIGTERM; ``workers`` processes when more than one."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    # Read by app_from_env, here and in every spawned worker (they inherit the environment).
    os.environ[ENV_SERVE_CONFIG] = config.to_env()
    settings = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        workers=workers,
        lifespan="on",
        log_config=logging_config(),
        access_log=False,
        server_header=False,
        # In-flight requests are bounded by the request timeout: let them finish, no longer.
        timeout_graceful_shutdown=max(1, round(config.timeout_s + 1)),
        # A worker loading its model answers health checks from another thread; give it room on a busy machine.
        timeout_worker_healthcheck=30,
    )
    if workers > 1:
        Multiprocess(settings, sockets=[sock]).run()
        return
    server = uvicorn.Server(settings)
    stopped_by: list[int] = []
    # uvicorn re-raises the signal that stopped it once it has shut down; these handlers only note it, so the stop
    # is a normal return (exit 0), not a KeyboardInterrupt or a death by SIGTERM.
    previous = {sig: signal.signal(sig, lambda signum, _: stopped_by.append(signum)) for sig in STOP_SIGNALS}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started and not stopped_by:
        raise ServeError("the server did not start; see the messages above")


def serve(config: ServeConfig, host: str, port: int, workers: int, on_listening: Callable[[str], None]) -> None:
    """Bind, tell ``on_listening`` the URL, then serve until stopped."""
    sock = bind(host, port)
    try:
        on_listening(url_of(sock))
        run(config, sock, workers)
    finally:
        sock.close()
