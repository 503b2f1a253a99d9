"""Request size limits, checked before and while a body streams in, so an oversized request is never read whole.

A declared ``Content-Length`` over the limit is refused at once; a body without one (chunked) is counted as it
arrives and refused at the first byte over. Either way the answer is 413 and the connection is closed.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from mnistctl.serve.errors import ApiError


def too_large(limit: int, what: str = "a request") -> ApiError:
    where = " (see mnistctl serve --max-request-mb)" if what == "a request" else ""
    return ApiError(
        413,
        f"{what} may be at most {limit:,} bytes{where}",
        # The rest of the body may still be on its way: closing the connection stops it (and its reading).
        headers={"Connection": "close"},
    )


def declared_length(request: Request) -> int | None:
    """The body size the client announced, or None (chunked); a malformed Content-Length is a 400."""
    value = request.headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        raise ApiError(400, "malformed Content-Length header")
    return int(value)


async def read_body(request: Request, limit: int, what: str = "a request") -> bytes:
    """The whole body, at most ``limit`` bytes: 413 as soon as it is known to be larger."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise too_large(limit, what)
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise too_large(limit, what)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the client closed the connection before the body ended") from None
    return b"".join(chunks)
