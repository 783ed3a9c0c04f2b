"""The Starlette application: routes, the web app's static files, and the system's lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from engine.board_id import validate_board_id
from engine.errors import InvalidBoardId
from gateway import history_api, http_api
from gateway.errors import clip, error_body, error_response, raw_segments
from gateway.rooms import CLOSE_BAD_REQUEST
from gateway.system import System
from gateway.ws import board_socket, close_and_drain

STATIC = Path(__file__).parent / "static"
INDEX = STATIC / "app" / "index.html"

_NOT_BUILT = """<!doctype html><title>Inkstream</title>
<p>The web app is not built into this installation. The API is at <code>/api/boards</code>.</p>"""

#: Path prefixes whose next segment is a board id: /api/boards/{id}..., /api/route/{id}.
_BOARD_PREFIXES = (("api", "boards"), ("api", "route"))


async def web_app(request: Request) -> Response:
    """The single-page web app for `/` and `/b/{id}`."""
    if INDEX.is_file():
        return FileResponse(INDEX, headers={"Cache-Control": "no-cache"})
    return HTMLResponse(_NOT_BUILT)


_REASONS = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Routing errors (unknown path, wrong method) as the API's JSON error body."""
    reason = _REASONS.get(exc.status_code, "http_error")
    detail = exc.detail
    if exc.status_code in _REASONS:
        detail = f"{request.method} {clip(request.url.path)}: {exc.detail}"
    return JSONResponse(error_body(reason, detail), status_code=exc.status_code, headers=exc.headers)


class BoardIdGuard:
    """400 invalid_board_id for any /api/boards/{id}... or /api/route/{id} whose id segment is invalid.

    It looks at the raw path, so an id with an encoded '/' (or '.' / '..', or anything outside the
    charset) is refused as a bad board id on every route under it, instead of being routed as
    other segments (a 404 naming a path nobody asked for).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            segments = raw_segments(scope)
            if len(segments) >= 4 and segments[0] == "" and (segments[1], segments[2]) in _BOARD_PREFIXES:
                try:
                    validate_board_id(segments[3])
                except InvalidBoardId as exc:
                    await error_response(exc)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def socket_without_board(websocket: WebSocket) -> None:
    """WS /ws: no board id -> the board socket's own answer (accepted, closed with 4400 and the reason)."""
    websocket.scope["path_params"] = {**websocket.scope.get("path_params", {}), "board": ""}
    await board_socket(websocket)


async def socket_elsewhere(websocket: WebSocket) -> None:
    """A WebSocket to any other path: accepted and closed with 4400 and a reason a y-websocket client shows.

    Browsers resolve `..` segments (also written `%2e%2e`) before connecting, so `/ws/..` arrives here as `/`.
    """
    await websocket.accept()
    reason = f"no WebSocket endpoint at {clip(websocket.url.path, 40)}; boards are at /ws/BOARD_ID"
    await close_and_drain(websocket, CLOSE_BAD_REQUEST, reason)


async def websocket_over_http(request: Request) -> Response:
    """Plain HTTP to /ws or /ws/{id}: 426, with a JSON body saying what the endpoint speaks."""
    detail = (
        f"{clip(request.url.path)} is a WebSocket endpoint (the y-websocket protocol): connect with a "
        "WebSocket client, e.g. y-websocket's new WebsocketProvider('ws://HOST:PORT/ws', boardId, doc); "
        "over HTTP the board is at /api/boards/{id}"
    )
    return JSONResponse(
        error_body("upgrade_required", detail),
        status_code=426,
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )


def create_app(system: System) -> Starlette:
    """The ASGI app serving `system`; starting the app starts the system."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await system.start()
        try:
            yield
        finally:
            await system.close()

    routes = [
        Route("/healthz", http_api.healthz),
        Route("/readyz", http_api.readyz),
        Route("/metrics", http_api.metrics),
        Route("/api/boards", http_api.list_boards),
        Route("/api/boards/{board}", http_api.get_board),
        Route("/api/boards/{board}/state", http_api.get_state),
        Route("/api/boards/{board}/thumbnail", http_api.get_thumbnail),
        Route("/api/boards/{board}/updates", http_api.post_update, methods=["POST"]),
        *history_api.routes(),
        Route("/api/cluster", http_api.cluster),
        Route("/api/route/{board}", http_api.route),
        WebSocketRoute("/ws", socket_without_board),
        WebSocketRoute("/ws/{board:path}", board_socket),
        Route("/ws", websocket_over_http, methods=None),
        Route("/ws/{board:path}", websocket_over_http, methods=None),
        Route("/", web_app),
        Route("/b/{board:path}", web_app),
        WebSocketRoute("/{path:path}", socket_elsewhere),  # before the mount: it would take WebSockets too
    ]
    STATIC.mkdir(exist_ok=True)
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC, check_dir=False), name="static"))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(BoardIdGuard)],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )
    app.router.redirect_slashes = False  # /api/boards/. is a bad id (400), not a redirect
    app.state.system = system
    return app
