"""The images in a multipart/form-data body: every file part, whatever its field name, in order.

Parsed in memory with python-multipart's streaming parser (the body is already bounded by the request limit), so
no part is ever spooled to a temporary file. Text fields are ignored; a malformed body is a 400.
"""

from __future__ import annotations

import logging

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from mnistctl.serve.errors import ApiError

MAX_IMAGES = 256  # one request's images are predicted as one batch
MAX_PARTS = 1024
MAX_HEADERS_PER_PART = 16
MAX_HEADER_BYTES = 8192
_IMAGE_TYPES = (b"image/", b"application/octet-stream")

# The parser logs each malformed body it meets, quoting the client's bytes; the client gets the reason as a 400.
logging.getLogger("python_multipart").setLevel(logging.CRITICAL)


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart/form-data Content-Type (400 when it is missing or too long)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary", b"")
    if not boundary or len(boundary) > 70:  # RFC 2046: 1 to 70 characters
        raise ApiError(400, "malformed multipart/form-data Content-Type: no valid boundary")
    return boundary


class _Part:
    __slots__ = ("chunks", "headers", "name")

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.chunks: list[bytes] = []
        self.name = b""


def image_parts(body: bytes, boundary: bytes) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each image part of ``body``: a part with a file name, or typed image/* or
    application/octet-stream. The name is the part's filename, else its field name, else "-". An empty file input
    (no file name, no bytes) is skipped. 400 for a malformed body; 413 for more than ``MAX_IMAGES`` images."""
    parts: list[_Part] = []
    ended = False
    field: list[bytes] = []
    value: list[bytes] = []

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise ApiError(413, f"a request may hold at most {MAX_PARTS} multipart parts")
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.append(data[start:end])

    def on_header_end() -> None:
        parts[-1].headers[b"".join(field).strip().lower()] = b"".join(value).strip()
        field.clear()
        value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].chunks.append(data[start:end])

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_end": on_end,
        },
        max_header_count=MAX_HEADERS_PER_PART,
        max_header_size=MAX_HEADER_BYTES,
    )
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise ApiError(400, f"malformed multipart body ({exc})") from None
    if not ended:
        raise ApiError(400, "malformed multipart body (it ends before its closing boundary)")
    images = [image for image in map(_image, parts) if image is not None]
    if len(images) > MAX_IMAGES:
        raise ApiError(413, f"a request may hold at most {MAX_IMAGES} images; send the others in another request")
    return images


def _image(part: _Part) -> tuple[str, bytes] | None:
    _, options = parse_options_header(part.headers.get(b"content-disposition", b"").decode("latin-1"))
    content_type, _ = parse_options_header(part.headers.get(b"content-type", b"").decode("latin-1"))
    data = b"".join(part.chunks)
    filename = options.get(b"filename")
    if filename is None and not content_type.startswith(_IMAGE_TYPES):
        return None  # a text field
    if filename == b"" and not data:
        return None  # a file input left empty: browsers send it with no name and no bytes
    # Browsers send a file name's UTF-8 bytes as they are; it is only ever shown, never used as a path.
    name = (filename or options.get(b"name") or b"-").decode("utf-8", errors="replace")
    return name, data
