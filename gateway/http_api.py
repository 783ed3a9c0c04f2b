"""The HTTP API: health, readiness, metrics, and the boards API (JSON unless noted)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.board_id import validate_board_id
from engine.errors import BoardNotFound, InkstreamError, UpdateTooLarge
from engine.model import board_json, summarize
from engine.routing import preferred
from gateway import history_api
from gateway.errors import author, bad_request, clip, error_response, media_type
from gateway.system import System

OCTET = "application/octet-stream"


def _system(request: Request) -> System:
    return request.app.state.system  # type: ignore[no-any-return]


def iso(ts: float) -> str:
    """Seconds since the epoch as an ISO-8601 UTC string."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: 200 when the event log accepts writes, else 503."""
    if await _system(request).event_log.writable():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable", "detail": "event log is not writable"}, status_code=503)


async def metrics(request: Request) -> Response:
    """Prometheus exposition."""
    system = _system(request)
    system.metrics.boards_loaded.set(system.service.loaded)
    return Response(system.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def list_boards(request: Request) -> Response:
    """Every board: id, title, version, updated time, shape count."""
    system = _system(request)
    boards: list[dict[str, Any]] = []
    for head, summary in await system.board_list():
        live = system.service.loaded_board(head.board)
        # The shape count is what the board's rendering lists (engine.model.is_shape), from the
        # projected summary when it is as new as the board in memory (no need to read every shape).
        if summary is not None and (live is None or summary.version >= live.version):
            title, shapes = summary.title, summary.shapes
        elif live is not None:
            title, shapes = summarize(live.doc)
        else:
            title, shapes = "", 0
        boards.append(
            {"id": head.board, "title": title, "version": head.version, "updated": iso(head.updated), "shapes": shapes}
        )
    boards.sort(key=lambda b: b["updated"], reverse=True)
    return JSONResponse(boards)


async def _existing_board(system: System, board_id: str) -> Any:
    validate_board_id(board_id)
    live = system.service.loaded_board(board_id)
    if (live is None or live.version == 0) and await system.event_log.head(board_id) == 0:
        raise BoardNotFound(f"board {board_id} does not exist")
    return await system.service.open(board_id)


async def get_board(request: Request) -> Response:
    """The board as JSON per the board model (as it was at ?version=V / ?at=ISO: gateway.history_api)."""
    if history_api.is_history_request(request):
        return await history_api.board_at(request)
    system = _system(request)
    try:
        board = await _existing_board(system, request.path_params["board"])
    except InkstreamError as exc:
        return error_response(exc)
    body = board.cached_body()  # cached on the live board until its Doc changes
    reading = board.read_for_render() if body is None else None
    try:
        durable = system.service.durable(board.board_id)  # the version of what was just read
        if reading is not None:
            body = await board.render(reading)
            system.metrics.board_renders.inc()
        version = await durable  # serve only what the log has
    except InkstreamError as exc:
        return error_response(exc)
    return Response(board_json(board.board_id, version, body), media_type="application/json")


async def get_thumbnail(request: Request) -> Response:
    """The board's first shapes as the projector last stored them (projections.thumbnails); never loads the board.

    `ETag` is the thumbnail's version: `If-None-Match` with it answers 304.
    """
    system = _system(request)
    board_id = request.path_params["board"]
    try:
        validate_board_id(board_id)
        thumbnail = await system.thumbnails.thumbnail(board_id)
    except InkstreamError as exc:
        return error_response(exc)
    if thumbnail is None:
        missing = f"board {board_id} has no thumbnail: it does not exist or is not projected yet"
        return error_response(BoardNotFound(missing))
    etag = f'W/"{thumbnail.version}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(thumbnail.body, media_type="application/json", headers=headers)


async def get_state(request: Request) -> Response:
    """The full Yjs state as application/octet-stream (as it was at ?version=V / ?at=ISO: gateway.history_api)."""
    if history_api.is_history_request(request):
        return await history_api.state_at(request)
    system = _system(request)
    try:
        board = await _existing_board(system, request.path_params["board"])
    except InkstreamError as exc:
        return error_response(exc)
    state = board.state()
    try:
        version = await system.service.durable(board.board_id)  # serve only what the log has
    except InkstreamError as exc:
        return error_response(exc)
    return Response(state, media_type=OCTET, headers={"X-Inkstream-Version": str(version)})


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (UpdateTooLarge) past `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UpdateTooLarge(f"body of {declared} bytes exceeds the limit of {limit}")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise UpdateTooLarge(f"body exceeds the limit of {limit} bytes")
    return bytes(chunks)


async def post_update(request: Request) -> Response:
    """Merge a Yjs update (e.g. offline edits) into the board; returns the board's version after it."""
    system = _system(request)
    board_id = request.path_params["board"]
    content_type = media_type(request)
    if content_type != OCTET:
        return bad_request(
            f"send the Yjs update as {OCTET}, not {clip(content_type) or 'no content type'}",
            reason="unsupported_media_type",
            status=415,
        )
    try:
        body = await read_body(request, system.settings.max_update_bytes)  # read first: keeps the connection usable
        validate_board_id(board_id)
        if not body:
            return bad_request("empty body: expected a Yjs update", reason="invalid_update")
        client = request.client.host if request.client else "http"
        event = await system.service.submit(board_id, body, client_id=f"http:{client}", user=author(request))
    except InkstreamError as exc:
        system.metrics.updates_rejected.labels(exc.reason).inc()
        return error_response(exc)
    if event is None:  # nothing new; an unknown board stays at version 0, the empty board
        board = system.service.loaded_board(board_id)
        version = board.version if board is not None else await system.event_log.head(board_id)
        return JSONResponse({"version": version, "changed": False})
    return JSONResponse({"version": event.version, "changed": True})


async def cluster(request: Request) -> Response:
    """The live gateways: {"self": member, "gateways": [member, ...]} (one node in embedded mode)."""
    membership = _system(request).membership
    return JSONResponse(
        {"self": membership.self_member.to_json(), "gateways": [m.to_json() for m in membership.members()]}
    )


async def route(request: Request) -> Response:
    """A board's preferred gateway by rendezvous hashing over the live members."""
    board_id = request.path_params["board"]
    try:
        validate_board_id(board_id)
    except InkstreamError as exc:
        return error_response(exc)
    membership = _system(request).membership
    member = preferred(board_id, membership.members()) or membership.self_member
    return JSONResponse({"board": board_id, "gateway": member.to_json()})
