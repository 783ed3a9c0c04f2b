"""Benchmark peer: pycrdt-websocket's ASGI y-websocket server on Uvicorn (like our gateway).

    python benchmarks/peers/pycrdt_websocket_server.py --host 127.0.0.1 --port 1235

Rooms are keyed by the URL path (ws://HOST:PORT/ROOM), in memory only. Needs
`pip install pycrdt-websocket` (0.16.x). Served the way `inkstream serve` is (uvloop, httptools,
Uvicorn's sans-I/O websockets protocol, no permessage-deflate), so the comparison is of the
y-websocket servers, not of their ASGI servers.
"""

from __future__ import annotations

import argparse

import uvicorn
import uvloop
from pycrdt.websocket import ASGIServer, WebsocketServer


async def main(host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT (Uvicorn's own handlers)."""
    websocket_server = WebsocketServer()
    async with websocket_server:
        config = uvicorn.Config(
            ASGIServer(websocket_server),  # type: ignore[arg-type]
            host=host,
            port=port,
            http="httptools",
            ws="websockets-sansio",
            ws_max_size=64 * 1024 * 1024,
            ws_per_message_deflate=False,
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1235)
    args = parser.parse_args()
    uvloop.run(main(args.host, args.port))
