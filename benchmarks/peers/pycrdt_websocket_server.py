"""Benchmark peer: pycrdt-websocket's ASGI y-websocket server on Hypercorn (like our gateway).

    python benchmarks/peers/pycrdt_websocket_server.py --host 127.0.0.1 --port 1235

Rooms are keyed by the URL path (ws://HOST:PORT/ROOM), in memory only. Needs
`pip install pycrdt-websocket` (0.16.x).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from hypercorn.asyncio import serve
from hypercorn.config import Config
from pycrdt.websocket import ASGIServer, WebsocketServer


async def main(host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.websocket_max_message_size = 64 * 1024 * 1024
    websocket_server = WebsocketServer()
    async with websocket_server:
        await serve(ASGIServer(websocket_server), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1235)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
