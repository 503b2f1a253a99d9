"""The ASGI app: the prediction API, the page and its files, health, metrics and the OpenAPI document.

``create_app(config)`` builds it; ``app_from_env()`` is the factory uvicorn's worker processes call. Every request
passes ``Guard`` (token, per-request timeout, metrics, JSON for any failure); CPU work (decoding, preprocessing,
inference) runs in a small thread pool, off the event loop.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import numpy as np
from python_multipart.multipart import parse_options_header
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnistctl.errors import MnistctlError
from mnistctl.jsonsafe import strict_dumps
from mnistctl.paths import debug_enabled
from mnistctl.prediction import NO_ANSWER, answer, predict_readings, predict_rows, public
from mnistctl.serve.config import ServeConfig
from mnistctl.serve.errors import ApiError, model_error
from mnistctl.serve.limits import read_body
from mnistctl.serve.metrics import CONTENT_TYPE as METRICS_TYPE
from mnistctl.serve.metrics import Metrics
from mnistctl.serve.models import ModelCache, ServedModel
from mnistctl.serve.multipart import boundary_of, image_parts

log = logging.getLogger("mnistctl.serve")
T = TypeVar("T")

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Decoding and preprocessing hold the GIL and one predictor answers one batch at a time, so more threads per worker
# only add contention and memory: measured on 2 cores (tests/bench/RESULTS.md), 28x28 PNGs went 537 -> 733 -> 895
# requests/s with 4, 2 and 1 threads, and a worker's peak under phone photos 237 -> 181 -> 142 MB. Scale with
# --workers instead.
THREADS = 1
PIXELS_MAX_BYTES = 256_000  # 784 numbers need ~4 KB of JSON, ~25 KB pretty-printed with long decimals
TOP_K_MAX = 10
SIDE = 28
PUBLIC_PATHS = frozenset({"/", "/healthz", "/openapi.json"})
ENDPOINTS = frozenset({"/", "/healthz", "/openapi.json", "/metrics", "/v1/models", "/v1/predict", "/v1/predict/pixels"})
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".woff2": "font/woff2",
}
_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def json_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = strict_dumps(document, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


def static_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """URL name -> (file, content type) for every regular file below ``folder``, listed once at start-up: a request
    only ever picks an entry of this table, so no path it spells can reach anything else (``..``, links)."""
    table: dict[str, tuple[Path, str]] = {}
    if not folder.is_dir():
        return table
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_symlink() or not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        table[relative.as_posix()] = (path, CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"))
    return table


# -- request parsing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictOptions:
    model: str | None = None
    top_k: int = 3
    raw: bool = False
    show: bool = False
    probabilities: bool = False


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ApiError(400, f"{name} must be true or false, not {value!r}")


def _top_k(value: object) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if type(value) is not int or not 1 <= value <= TOP_K_MAX:
        raise ApiError(400, f"top_k must be a whole number from 1 to {TOP_K_MAX}, not {value!r}")
    return value


def predict_options(query: QueryParams) -> PredictOptions:
    """The query of ``POST /v1/predict``; unknown or repeated parameters are a 400 (a typo must not go unseen)."""
    values: dict[str, str] = {}
    for key, value in query.multi_items():
        if key not in PredictOptions.__dataclass_fields__:
            known = ", ".join(PredictOptions.__dataclass_fields__)
            raise ApiError(400, f"unknown query parameter {key!r} (known: {known})")
        if key in values:
            raise ApiError(400, f"query parameter {key!r} given twice")
        values[key] = value
    return PredictOptions(
        model=values.get("model"),
        top_k=_top_k(values["top_k"]) if "top_k" in values else 3,
        **{name: _flag(name, values[name]) for name in ("raw", "show", "probabilities") if name in values},
    )


def body_kind(content_type: str | None) -> bytes | None:
    """The multipart boundary for a form, None for one raw image; 415 for any other type."""
    kind = parse_options_header(content_type or "")[0]
    if kind == b"multipart/form-data":
        return boundary_of(content_type or "")
    if kind.startswith(b"image/") or kind == b"application/octet-stream":
        return None
    shown = kind.decode("latin-1") or "none"
    raise ApiError(
        415,
        f"unsupported Content-Type ({shown}): send multipart/form-data, or one image as image/* or"
        " application/octet-stream",
    )


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _pixel_values(pixels: object) -> list[float]:
    """784 numbers from a 28x28 nested list or a flat list of 784; 400 for any other shape or value."""
    if isinstance(pixels, list) and len(pixels) == SIDE * SIDE:
        values = pixels
    elif (
        isinstance(pixels, list) and len(pixels) == SIDE and all(isinstance(r, list) and len(r) == SIDE for r in pixels)
    ):
        values = [value for row in pixels for value in row]
    else:
        shape = f"a list of {len(pixels)}" if isinstance(pixels, list) else type(pixels).__name__
        raise ApiError(400, f"pixels must be 28 lists of 28 numbers, or a list of 784 numbers (got {shape})")
    for value in values:
        # bool is an int to Python, but true is not a grey level; NaN and infinities never reach here (see below).
        if type(value) not in (int, float) or not 0 <= value <= 255:
            raise ApiError(400, f"pixels must be numbers from 0 to 255 (got {json.dumps(value)[:40]})")
    return values


def pixels_request(body: bytes) -> tuple[np.ndarray, str | None, int]:
    """(a 1x28x28 batch, the model ref or None, top_k) from the JSON body of ``POST /v1/predict/pixels``."""
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"the body is not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(document, dict):
        raise ApiError(400, 'the body must be a JSON object: {"pixels": [...], "model"?: REF, "top_k"?: K}')
    if "pixels" not in document:
        raise ApiError(400, 'the body has no "pixels"')
    model = document.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "model must be a string: NAME, NAME:VERSION or NAME@ALIAS")
    top_k = _top_k(document["top_k"]) if "top_k" in document else 3
    values = _pixel_values(document["pixels"])
    # _pixel_values let through only numbers from 0 to 255: nothing here can be NaN or too large.
    return np.asarray(values, dtype=np.float32).reshape(1, SIDE, SIDE), model, top_k


def _input_levels(image: np.ndarray) -> list[list[int]]:
    """The 28x28 input the model saw, as whole grey levels 0..255."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8).tolist()


# -- the service: state and endpoints -------------------------------------------------------------------------


class Service:
    """What the endpoints share: settings, models, metrics, the thread pool and the table of static files."""

    def __init__(self, config: ServeConfig, static_dir: Path = STATIC_DIR) -> None:
        from mnistctl.serve.openapi import document

        self.config = config
        self.models = ModelCache(config.model)
        self.metrics = Metrics()
        self.static = static_files(static_dir)
        self.openapi = json.dumps(document()).encode()
        self.limiter: anyio.CapacityLimiter | None = None

    async def in_thread(self, function: Callable[..., T], *args: Any) -> T:
        # abandon_on_cancel: when the request's time is up it is answered (504) without waiting for the thread.
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter, abandon_on_cancel=True)

    async def model_for(self, request: Request, ref: str | None) -> ServedModel:
        """The loaded model ``ref`` names (None: the server's default); 400/404/503 when there is none."""
        try:
            model = self.models.cached(ref) or await self.in_thread(self.models.get, ref)
        except MnistctlError as exc:
            raise model_error(exc) from None
        request.scope["mnistctl.model"] = model.ref
        return model

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.limiter = anyio.CapacityLimiter(THREADS)
        try:  # the default model is loaded before the first request (and /healthz says so)
            await self.in_thread(self.models.get, None)
        except MnistctlError as exc:
            log.error("the default model cannot be loaded: %s", exc)
        yield

    # -- endpoints --

    async def page(self, request: Request) -> Response:
        return self._file("index.html")

    async def static_file(self, request: Request) -> Response:
        return self._file(request.path_params["name"])

    def _file(self, name: str) -> Response:
        entry = self.static.get(name)
        if entry is None:
            return error_response(404, "no such file")
        path, content_type = entry
        return FileResponse(path, media_type=content_type, headers={"Cache-Control": "no-cache"})

    async def predict(self, request: Request) -> Response:
        options = predict_options(request.query_params)
        boundary = body_kind(request.headers.get("content-type"))
        body = await read_body(request, self.config.max_request_bytes)
        if boundary is None and not body:
            raise ApiError(400, "no image in the request body")
        model = await self.model_for(request, options.model)
        document, answered, failed = await self.in_thread(self._predict_images, model, body, boundary, options)
        request.scope["mnistctl.images"] = (answered, failed)
        return Response(document, media_type="application/json")

    @staticmethod
    def _predict_images(
        model: ServedModel, body: bytes, boundary: bytes | None, options: PredictOptions
    ) -> tuple[bytes, int, int]:
        """The response document of ``/v1/predict`` (as ``predict --json``'s), images answered, error rows."""
        images = image_parts(body, boundary) if boundary is not None else [("-", body)]
        if not images:
            raise ApiError(400, "no image in the request: send each image as a file part of the form")
        rows = predict_rows(
            [(name, data, None) for name, data in images],
            model.predict,
            raw=options.raw,
            top_k=options.top_k,
            parallel=False,
            classes=model.version.class_names,
        )
        results = []
        for row in rows:
            result = public(row)
            if options.show and "_image" in row:
                result["input"] = _input_levels(row["_image"])
                if len(row["_readings"]) > 1:  # the answer weighed two readings (prediction.weigh_readings)
                    result["readings"] = [_input_levels(reading) for reading in row["_readings"]]
            if options.probabilities and "_probabilities" in row:
                result["probabilities"] = row["_probabilities"]  # strict_dumps makes the array a list
            results.append(result)
        document = strict_dumps({"model": model.ref, "results": results}, separators=(",", ":"))
        failed = sum("error" in row for row in rows)
        return document.encode(), len(rows) - failed, failed

    async def predict_pixels(self, request: Request) -> Response:
        kind = parse_options_header(request.headers.get("content-type") or "")[0]
        if kind != b"application/json" and not kind.endswith(b"+json"):
            raise ApiError(415, "send the pixels as JSON (Content-Type: application/json)")
        body = await read_body(request, min(PIXELS_MAX_BYTES, self.config.max_request_bytes), "a pixels request")
        batch, ref, top_k = pixels_request(body)
        model = await self.model_for(request, ref)
        # One reading, read as an upload of the same pixels is (with the second look when unsure).
        probabilities = (await self.in_thread(predict_readings, [batch], model.predict))[1][0]
        found = answer(probabilities, top_k, model.version.class_names)
        row = {"error": NO_ANSWER} if found is None else {**found, "probabilities": probabilities}
        request.scope["mnistctl.images"] = (0, 1) if found is None else (1, 0)
        return json_response({"model": model.ref, "results": [row]})

    async def list_models(self, request: Request) -> Response:
        try:
            versions = await self.in_thread(self.models.versions)
        except MnistctlError as exc:
            raise model_error(exc) from None
        try:
            default = (await self.in_thread(self.models.resolve, None)).ref
        except MnistctlError:
            default = None
        models = [
            {
                "model": version.ref,
                "arch": version.arch,
                "dataset": version.dataset,
                "classes": version.class_names,
                "test_accuracy": _number(version.metrics.get("test_accuracy")),
                "aliases": list(version.aliases),
            }
            for version in versions
        ]
        return json_response({"default": default, "models": models})

    async def healthz(self, request: Request) -> Response:
        try:
            model = await self.model_for(request, None)
        except ApiError as exc:
            return json_response({"status": "unavailable", "error": exc.message}, 503)
        return json_response({"status": "ok", "model": model.ref})

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=METRICS_TYPE)

    async def openapi_document(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/json")


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None  # type: ignore[arg-type]


# -- the guard every request passes -----------------------------------------------------------------------------


def endpoint_label(path: str) -> str:
    """The metrics label of a path: its route, "/static" for the page's files, "other" for the rest (the label's
    values stay few whatever paths clients try)."""
    if path in ENDPOINTS:
        return path
    return "/static" if path.startswith("/static/") else "other"


class Guard:
    """Checks the token, bounds the request's time (504), counts it in the metrics, and turns any unexpected
    exception into ``{"error": "internal error"}`` (500) plus one line in the log: never a stack trace."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service
        token = service.config.token
        self.token = token.encode() if token else None

    def _authorized(self, scope: Scope) -> bool:
        path = scope["path"]
        if self.token is None or path in PUBLIC_PATHS or path.startswith("/static/"):
            return True
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self.token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-content-type-options", b"nosniff")]
            await send(message)

        async def answer_with(response: Response) -> None:
            if not status:  # nothing sent yet
                await response(scope, receive, send_with_headers)

        try:
            if not self._authorized(scope):
                await answer_with(
                    error_response(
                        401,
                        "missing or wrong token: send the header Authorization: Bearer TOKEN",
                        {"WWW-Authenticate": 'Bearer realm="mnistctl"'},
                    )
                )
                return
            with anyio.fail_after(self.service.config.timeout_s):
                await self.app(scope, receive, send_with_headers)
        except TimeoutError:
            await answer_with(error_response(504, f"no answer within {self.service.config.timeout_s:g} s"))
        except Exception as exc:
            if debug_enabled():
                log.exception("internal error answering %s %s", scope["method"], scope["path"])
            else:
                log.error(
                    "internal error answering %s %s: %s: %s (MNISTCTL_DEBUG=1 logs the traceback)",
                    scope["method"],
                    scope["path"],
                    type(exc).__name__,
                    str(exc).splitlines()[0][:200] if str(exc) else "",
                )
            await answer_with(error_response(500, "internal error"))
        finally:
            answered, failed = scope.get("mnistctl.images", (0, 0))
            self.service.metrics.observe(
                endpoint_label(scope["path"]),
                scope.get("mnistctl.model", ""),
                status or 500,
                time.perf_counter() - started,
                answered,
                failed,
            )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "no such endpoint", 405: "method not allowed"}.get(exc.status_code, exc.detail)
    return error_response(exc.status_code, message, dict(exc.headers or {}))


def create_app(config: ServeConfig, static_dir: Path = STATIC_DIR) -> Starlette:
    """The app for ``config``. The default model is loaded at start-up (the ASGI lifespan)."""
    service = Service(config, static_dir)
    routes = [
        Route("/", service.page, methods=["GET"]),
        Route("/static/{name:path}", service.static_file, methods=["GET"]),
        Route("/v1/predict", service.predict, methods=["POST"]),
        Route("/v1/predict/pixels", service.predict_pixels, methods=["POST"]),
        Route("/v1/models", service.list_models, methods=["GET"]),
        Route("/healthz", service.healthz, methods=["GET"]),
        Route("/metrics", service.prometheus, methods=["GET"]),
        Route("/openapi.json", service.openapi_document, methods=["GET"]),
    ]
    middleware = []
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    middleware.append(Middleware(Guard, service=service))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
        lifespan=service.lifespan,
    )
    app.state.service = service
    return app


def app_from_env() -> Starlette:
    """The factory uvicorn's worker processes call: the settings come from ``MNISTCTL_SERVE_CONFIG``."""
    return create_app(ServeConfig.from_env())
