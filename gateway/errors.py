"""Mapping of engine errors to HTTP statuses and JSON bodies, and the small checks every handler shares.

House rule: bad input gets a 4xx with {"error": reason, "detail": what to do} for that one request.
Details may quote the input, but never more than `ECHO_LIMIT` characters of it (`clip`), and no
detail is longer than `DETAIL_LIMIT`.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import Scope

from engine.errors import (
    BoardNotFound,
    BoardTooLarge,
    InkstreamError,
    InvalidBoardId,
    InvalidUpdate,
    MissingDependencies,
    StorageUnavailable,
    UpdateTooLarge,
    VersionNotFound,
)
from engine.events import author_name

ECHO_LIMIT = 100
DETAIL_LIMIT = 1000

_STATUS: dict[type[InkstreamError], int] = {
    InvalidBoardId: 400,
    MissingDependencies: 409,
    InvalidUpdate: 400,
    UpdateTooLarge: 413,
    BoardTooLarge: 413,
    BoardNotFound: 404,
    VersionNotFound: 404,
    StorageUnavailable: 503,
}


def clip(text: object, limit: int = ECHO_LIMIT) -> str:
    """`text` (input quoted back in an error) cut to `limit` characters, with '…' when cut."""
    value = str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def error_body(reason: str, detail: str) -> dict[str, str]:
    """The JSON error body; the detail is cut to DETAIL_LIMIT characters."""
    return {"error": reason, "detail": clip(detail, DETAIL_LIMIT)}


def error_response(exc: InkstreamError) -> JSONResponse:
    """A JSON error body {"error": reason, "detail": message} with the matching status."""
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
    return JSONResponse(error_body(exc.reason, str(exc)), status_code=status)


def bad_request(detail: str, reason: str = "bad_request", status: int = 400) -> JSONResponse:
    """A JSON 4xx for request problems that are not engine errors."""
    return JSONResponse(error_body(reason, detail), status_code=status)


def media_type(request: HTTPConnection) -> str:
    """The request's media type without parameters, lower-cased (media types are case-insensitive,
    RFC 9110 8.3.1): `Application/Octet-Stream; charset=binary` -> `application/octet-stream`."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def author(request: HTTPConnection) -> str | None:
    """The author a request names (`X-Inkstream-User` header, else `?user=`), as provenance keeps it.

    Header values arrive as bytes that Starlette decodes as Latin-1; clients send names in UTF-8
    (`Zoë`), so a header that is valid UTF-8 is read as UTF-8.
    """
    header = request.headers.get("x-inkstream-user")
    if header:
        try:
            header = header.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
    return author_name(header or request.query_params.get("user"))


def raw_segments(scope: Scope) -> list[str]:
    """The request path's segments, each percent-decoded on its own.

    Servers decode the path before routing, so `/api/boards/a%2Fb` reaches the router as
    `/api/boards/a/b`: the raw path (`raw_path`, when the server gives it) keeps an encoded '/'
    inside its segment, where it belongs.
    """
    raw = scope.get("raw_path")
    if raw is None:
        return str(scope.get("path", "")).split("/")
    path = bytes(raw).split(b"?", 1)[0]
    return [unquote_to_bytes(segment).decode("utf-8", "replace") for segment in path.split(b"/")]
