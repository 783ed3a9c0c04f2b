"""The history HTTP API: versions, the board at a version, diff, restore, fork, shape history, export, import.

Errors: unknown board / version -> 404, bad parameters -> 400, fork onto an existing id -> 409,
all as JSON {"error": reason, "detail": message}, quoting at most a short piece of the input.
Version 0 is the empty board wherever a version is accepted. Logic lives in projections.history;
what parameters mean, in projections.history_requests (shared with the CLI).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.adapters.sqlite_log import SqliteEventLog
from engine.board_id import validate_board_id
from engine.errors import InkstreamError, UpdateTooLarge
from engine.events import ANONYMOUS
from gateway.errors import author, bad_request, clip, error_body, error_response, raw_segments
from gateway.system import System
from projections import excalidraw, svg
from projections.excalidraw import InvalidScene
from projections.history import BoardExists, BoardHistory, fork, import_scene, restore
from projections.history_requests import MAX_PAGE, BadParam, import_result, page, quote, version_or_at, versions_page
from projections.history_requests import iso as _iso
from projections.history_requests import parse_int as _int
from projections.sqlite_archive import SqliteArchive

OCTET = "application/octet-stream"
MAX_SCENE_BYTES = 32 * 1024 * 1024


def _system(request: Request) -> System:
    return request.app.state.system  # type: ignore[no-any-return]


def history_for(system: System) -> BoardHistory:
    """The system's BoardHistory: `system.history` if the composition root set one, else the SQLite archive."""
    existing = getattr(system, "history", None)
    if isinstance(existing, BoardHistory):
        return existing
    if not isinstance(system.event_log, SqliteEventLog):
        raise InkstreamError("history needs an archive: this system has none configured")
    history = BoardHistory(SqliteArchive(system.event_log, system.store))
    system.history = history  # type: ignore[attr-defined]
    return history


def _user(request: Request) -> str:
    return author(request) or ANONYMOUS


def _opt_int(request: Request, name: str, minimum: int = 0) -> int | None:
    raw = request.query_params.get(name)
    return None if raw is None else _int(raw, name, minimum)


async def _version(request: Request, history: BoardHistory, board: str) -> int:
    """The version a request asks for: ?version=V (0: the empty board), ?at=ISO, or the latest."""
    version, at = version_or_at(request.query_params.get("version"), request.query_params.get("at"))
    return await history.resolve(board, version=version, at=at)


async def _json_body(request: Request, limit: int = 64 * 1024) -> Any:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise UpdateTooLarge(f"body exceeds the limit of {limit} bytes")
    try:
        return json.loads(bytes(body) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadParam("the body must be JSON") from None
    except RecursionError:
        raise BadParam("the body must be JSON nested less deeply") from None


def _handle(exc: Exception) -> Response:
    if isinstance(exc, BadParam):
        return bad_request(str(exc))
    if isinstance(exc, InvalidScene):
        return bad_request(str(exc), reason="invalid_scene")
    if isinstance(exc, BoardExists):
        return JSONResponse(error_body(exc.reason, str(exc)), status_code=409)
    if isinstance(exc, InkstreamError):
        return error_response(exc)
    raise exc


def is_history_request(request: Request) -> bool:
    """True when GET /api/boards/{id}[/state] asks for a past version (?version= or ?at=)."""
    return "version" in request.query_params or "at" in request.query_params


async def board_at(request: Request) -> Response:
    """GET /api/boards/{id}?version=V|at=ISO: the board as JSON as it was then."""
    try:
        board = validate_board_id(request.path_params["board"])
        history = history_for(_system(request))
        version = await _version(request, history, board)
        return JSONResponse(await history.render_at(board, version))
    except Exception as exc:
        return _handle(exc)


async def state_at(request: Request) -> Response:
    """GET /api/boards/{id}/state?version=V|at=ISO: the Yjs state as it was then."""
    try:
        board = validate_board_id(request.path_params["board"])
        history = history_for(_system(request))
        version = await _version(request, history, board)
        state = await history.state_at(board, version)
    except Exception as exc:
        return _handle(exc)
    return Response(state, media_type=OCTET, headers={"X-Inkstream-Version": str(version)})


async def list_versions(request: Request) -> Response:
    """GET /versions?after=V&limit=N (ascending) or ?before=V&limit=N (newest first)."""
    try:
        board = validate_board_id(request.path_params["board"])
        history = history_for(_system(request))
        params = request.query_params
        after, before, limit = page(params.get("after"), params.get("before"), params.get("limit"))
        body = await versions_page(history, board, after, before, limit)
    except Exception as exc:
        return _handle(exc)
    return JSONResponse(body)


async def diff(request: Request) -> Response:
    """GET /diff?from=A&to=B (to defaults to the latest): shapes added, removed, changed."""
    try:
        board = validate_board_id(request.path_params["board"])
        history = history_for(_system(request))
        raw_from = request.query_params.get("from")
        if raw_from is None:
            raise BadParam("from is required: /diff?from=A&to=B")
        a = _int(raw_from, "from")
        b = _opt_int(request, "to")
        to_version = await history.resolve(board, version=b)
        from_version = await history.resolve(board, version=a)  # 0: the empty board
        return JSONResponse(await history.diff(board, from_version, to_version))
    except Exception as exc:
        return _handle(exc)


async def post_restore(request: Request) -> Response:
    """POST /restore {"version": V}: append one update that makes the board look like V again."""
    system = _system(request)
    try:
        body = await _json_body(request)
        board = validate_board_id(request.path_params["board"])
        history = history_for(system)
        if not isinstance(body, dict) or "version" not in body:
            raise BadParam('expected a JSON body {"version": V}')
        version = await history.resolve(board, version=_int(body["version"], "version"))  # 0: empty it
        event = await restore(system.service, history, board, version, _user(request))
    except Exception as exc:
        return _handle(exc)
    if event is None:
        current = await system.event_log.head(board)
        return JSONResponse({"version": current, "restored": version, "changed": False})
    return JSONResponse({"version": event.version, "restored": version, "changed": True})


async def post_fork(request: Request) -> Response:
    """POST /fork {"version": V, "id": "new-id"} -> 201; 409 if the id exists."""
    system = _system(request)
    try:
        body = await _json_body(request)
        board = validate_board_id(request.path_params["board"])
        history = history_for(system)
        if not isinstance(body, dict) or "id" not in body or not isinstance(body["id"], str):
            raise BadParam('expected a JSON body {"version": V, "id": "new-board-id"}')
        raw = body.get("version")
        number = None if raw is None else _int(raw, "version")
        if number == 0:
            raise BadParam("version 0 is the empty board, nothing to fork: give a version >= 1 (default: the latest)")
        version = await history.resolve(board, version=number)
        event = await fork(system.service, history, board, version, body["id"], _user(request))
    except Exception as exc:
        return _handle(exc)
    new_version = event.version if event is not None else 0
    return JSONResponse(
        {"id": body["id"], "version": new_version, "from": {"id": board, "version": version}}, status_code=201
    )


async def shape_history(request: Request) -> Response:
    """GET /shapes/{shape}/history?after=V&limit=N: every version that touched the shape, by whom.

    The shape id is read from the raw path, so an id holding a '/' (sent as %2F) is found.
    """
    segments = raw_segments(request.scope)  # "", "api", "boards", board, "shapes", shape, "history"
    if len(segments) != 7 or segments[4] != "shapes" or segments[6] != "history":
        detail = f"{request.method} {clip(request.url.path)}: Not Found"
        return JSONResponse(error_body("not_found", detail), status_code=404)
    try:
        board = validate_board_id(request.path_params["board"])
        shape = segments[5]
        history = history_for(_system(request))
        after = _opt_int(request, "after") or 0
        limit = _opt_int(request, "limit", minimum=1) or 1000
        if limit > MAX_PAGE * 10:
            raise BadParam(f"limit must be <= {MAX_PAGE * 10}")
        rows = await history.shape_history(board, shape, after=after, limit=limit)
    except Exception as exc:
        return _handle(exc)
    if not rows and after == 0:
        return JSONResponse(
            error_body("shape_not_found", f"no version of board {board} touched shape {clip(shape)}"),
            status_code=404,
        )
    return JSONResponse(
        {
            "id": board,
            "shape": shape,
            "history": [
                {
                    "version": r.version,
                    "time": _iso(r.time),
                    "client": r.client,
                    "user": r.user,
                    "kind": r.kind,
                    "fields": r.fields,
                }
                for r in rows
            ],
        }
    )


async def export(request: Request) -> Response:
    """GET /export?format=json|svg|excalidraw[&version=V|at=ISO]."""
    try:
        board = validate_board_id(request.path_params["board"])
        history = history_for(_system(request))
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "svg", "excalidraw"):
            raise BadParam(f"format must be json, svg or excalidraw (default: json), not {quote(fmt)}")
        version = await _version(request, history, board)
        rendered = await history.render_at(board, version)
    except Exception as exc:
        return _handle(exc)
    name = f"{board}-v{version}"
    if fmt == "svg":
        return Response(
            svg.to_svg(rendered),
            media_type="image/svg+xml",
            headers={"Content-Disposition": f'attachment; filename="{name}.svg"', "X-Inkstream-Version": str(version)},
        )
    body = excalidraw.to_scene(rendered["shapes"]) if fmt == "excalidraw" else rendered
    ext = "excalidraw" if fmt == "excalidraw" else "json"
    return JSONResponse(
        body,
        headers={"Content-Disposition": f'attachment; filename="{name}.{ext}"', "X-Inkstream-Version": str(version)},
    )


async def post_import(request: Request) -> Response:
    """POST /import with an .excalidraw scene: adds its shapes as one update; reports skipped element types."""
    system = _system(request)
    try:
        scene = await _json_body(request, limit=MAX_SCENE_BYTES)
        board = validate_board_id(request.path_params["board"])
        event, imported = await import_scene(system.service, board, scene, _user(request))
    except Exception as exc:
        return _handle(exc)
    version = event.version if event is not None else await system.event_log.head(board)
    return JSONResponse(import_result(version, event, imported))


def routes() -> list[Route]:
    """The history routes (GET /api/boards/{id} and /state with ?version= are dispatched by http_api)."""
    base = "/api/boards/{board}"
    return [
        Route(base + "/versions", list_versions),
        Route(base + "/diff", diff),
        Route(base + "/restore", post_restore, methods=["POST"]),
        Route(base + "/fork", post_fork, methods=["POST"]),
        Route(base + "/shapes/{shape:path}", shape_history),  # .../shapes/{shape}/history, from the raw path
        Route(base + "/export", export),
        Route(base + "/import", post_import, methods=["POST"]),
    ]
