"""The Starlette application: routes, the web app's static files, and the system's lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from gateway import history_api, http_api
from gateway.system import System
from gateway.ws import board_socket

STATIC = Path(__file__).parent / "static"
INDEX = STATIC / "app" / "index.html"

_NOT_BUILT = """<!doctype html><title>Inkstream</title>
<p>The web app is not built into this installation. The API is at <code>/api/boards</code>.</p>"""


async def web_app(request: Request) -> Response:
    """The single-page web app for `/` and `/b/{id}`."""
    if INDEX.is_file():
        return FileResponse(INDEX, headers={"Cache-Control": "no-cache"})
    return HTMLResponse(_NOT_BUILT)


_REASONS = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Routing errors (unknown path, wrong method) as the API's JSON error body."""
    reason = _REASONS.get(exc.status_code, "http_error")
    detail = exc.detail if exc.status_code not in _REASONS else f"{request.method} {request.url.path}: {exc.detail}"
    return JSONResponse({"error": reason, "detail": detail}, status_code=exc.status_code, headers=exc.headers)


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
        Route("/api/boards/{board}/updates", http_api.post_update, methods=["POST"]),
        *history_api.routes(),
        Route("/api/cluster", http_api.cluster),
        Route("/api/route/{board}", http_api.route),
        WebSocketRoute("/ws/{board:path}", board_socket),
        Route("/", web_app),
        Route("/b/{board:path}", web_app),
    ]
    STATIC.mkdir(exist_ok=True)
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC, check_dir=False), name="static"))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )
    app.router.redirect_slashes = False  # /api/boards/. is a bad id (400), not a redirect
    app.state.system = system
    return app
