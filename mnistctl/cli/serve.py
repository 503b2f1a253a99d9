"""``mnistctl serve``: the HTTP prediction API and the draw-a-digit page.

Starlette on uvicorn; models run on LiteRT, so neither this command nor its server imports TensorFlow.
"""

import re
import sys
from typing import Annotated

import typer

from mnistctl.cli.evaluate import ModelOption
from mnistctl.errors import MnistctlError, UsageError
from mnistctl.paths import ENV_TOKEN

# Printable ASCII without spaces: what an HTTP header carries unchanged.
TOKEN_PATTERN = re.compile(r"^[\x21-\x7e]+$")
ORIGIN_PATTERN = re.compile(r"^https?://[^/\s?#]+$")
MAX_REQUEST_MB = 1024.0


def _checked_token(token: str | None) -> str | None:
    if token is None or not token.strip():
        return None  # unset, or a blank MNISTCTL_TOKEN: no token
    if not TOKEN_PATTERN.fullmatch(token):
        raise UsageError(
            "--token must be printable ASCII without spaces", hint="e.g. mnistctl serve --token $(openssl rand -hex 16)"
        )
    return token


def _checked_origins(origins: list[str] | None) -> tuple[str, ...]:
    for origin in origins or ():
        if origin != "*" and not ORIGIN_PATTERN.fullmatch(origin):
            raise UsageError(
                f"--cors-origin {origin!r} is not an origin",
                hint="write scheme://host[:port] with no path, e.g. https://example.org, or * for any",
            )
    return tuple(dict.fromkeys(origins or ()))


def serve(
    model: ModelOption = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="ADDRESS",
            help="Address to listen on. Anything but loopback (127.0.0.1, ::1, localhost) needs a --token.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", "-p", metavar="PORT", min=0, max=65535, help="TCP port; 0 picks a free one (printed)."),
    ] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-w", min=1, max=64, help="Worker processes sharing the port (each loads the model)."
        ),
    ] = 1,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            envvar=ENV_TOKEN,
            show_envvar=True,
            help="Require 'Authorization: Bearer TOKEN' on the API and /metrics. Prefer the variable: a flag shows"
            " in ps.",
        ),
    ] = None,
    max_request_mb: Annotated[
        float,
        typer.Option("--max-request-mb", metavar="MB", min=0.001, max=MAX_REQUEST_MB, help="Largest request body."),
    ] = 10.0,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=0.1, max=3600.0, help="Answer 504 after this long."),
    ] = 10.0,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            metavar="ORIGIN",
            help="Let pages from ORIGIN (https://host[:port], or *) call the API; repeatable. Default: none.",
        ),
    ] = None,
) -> None:
    """Serve predictions over HTTP, with a page to draw digits on.

    POST /v1/predict takes images (multipart files or a raw body) and answers the rows of
    "predict --json"; POST /v1/predict/pixels takes 28x28 pixels as JSON. GET / is the page; also
    /v1/models, /healthz, /metrics and /openapi.json. Aliases are re-resolved every second.
    Ctrl-C stops the server (exit 0).
    """
    from mnistctl.serve.config import ServeConfig, is_loopback

    token = _checked_token(token)
    if token is None and not is_loopback(host):
        raise UsageError(
            f"--host {host} makes the server reachable from other machines: it needs a token",
            hint=f"pass --token or set {ENV_TOKEN} (e.g. $(openssl rand -hex 16)), or keep --host 127.0.0.1",
        )
    config = ServeConfig(
        model=model,
        token=token,
        max_request_bytes=int(max_request_mb * 1_000_000),
        timeout_s=timeout,
        cors_origins=_checked_origins(cors_origin),
    )
    shown = _model_shown(model)

    def listening(url: str) -> None:
        print(f"serving {shown} at {url} (Ctrl-C stops)", file=sys.stderr, flush=True)

    from mnistctl.serve.runner import serve as run_server

    run_server(config, host, port, workers, listening)
    print("stopped", file=sys.stderr)


def _model_shown(ref: str | None) -> str:
    """The default model as the start-up line names it (``mlp@best (mlp:2)``); an error when it cannot serve."""
    from mnistctl.inference import litert_available
    from mnistctl.registry import Registry

    if not litert_available():
        raise MnistctlError(
            "mnistctl serve runs models with LiteRT (ai-edge-litert), which is not installed here",
            hint="install ai-edge-litert (it has wheels for Linux x86-64/aarch64 and macOS arm64)",
        )
    version = Registry().resolve(ref)
    version.check_usable()
    if "model.tflite" not in version.artifacts:
        raise MnistctlError(f"{version.ref} has no model.tflite, which the server runs", hint="choose another --model")
    return version.ref if ref in (None, version.ref) else f"{ref} ({version.ref})"
