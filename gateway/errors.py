"""Mapping of engine errors to HTTP statuses and JSON bodies."""

from __future__ import annotations

from starlette.responses import JSONResponse

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


def error_response(exc: InkstreamError) -> JSONResponse:
    """A JSON error body {"error": reason, "detail": message} with the matching status."""
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
    return JSONResponse({"error": exc.reason, "detail": str(exc)}, status_code=status)


def bad_request(detail: str, reason: str = "bad_request", status: int = 400) -> JSONResponse:
    """A JSON 4xx for request problems that are not engine errors."""
    return JSONResponse({"error": reason, "detail": detail}, status_code=status)
