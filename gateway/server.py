"""Running an ASGI app under Uvicorn, the one way every Inkstream HTTP process is served.

Uvicorn replaced Hypercorn (the first choice) for a measured reason: at 20 boards x 5 clients x
10 updates/s a gateway used 31-32 % of a core on Hypercorn and 27-28 % on Uvicorn's sans-I/O
`websockets` protocol with httptools, with lower delivery latency (benchmarks/RESULTS.md, "ASGI
server"). Every frame a gateway sends passes through the server's WebSocket layer, and Hypercorn's
(wsproto, an h11 stream, a send lock and a drain per frame) cost more Python per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Coroutine, Iterator
from typing import Any

import uvicorn

from engine.tasks import cancel_and_wait
from gateway.settings import EVENT_LOOPS, Settings
from gateway.ws_direct import InkstreamWebSocketProtocol


class _Server(uvicorn.Server):
    """Uvicorn's server without its own signal handlers: `serve_app` decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: Any, settings: Settings, host: str | None = None, port: int | None = None) -> uvicorn.Config:
    """Uvicorn settings for an Inkstream process."""
    return uvicorn.Config(
        app,
        host=host or settings.host,
        port=port or settings.port,
        http="httptools",
        ws=InkstreamWebSocketProtocol,  # Uvicorn's "websockets-sansio" plus the endpoint's direct lane
        # The server's own cap only guards memory: it closes with 1009 and no reason, which
        # y-websocket clients retry forever. Frames between the app's limit and this one get our
        # 4413 with a reason.
        ws_max_size=max(64 * 1024 * 1024, 4 * settings.max_frame_bytes),
        # Yjs updates are small and mostly binary; compressing every frame halved gateway
        # throughput when measured (1.2k vs 2.5k updates/s on a 5,000-update burst), so
        # permessage-deflate is declined unless INKSTREAM_WS_COMPRESSION is set.
        ws_per_message_deflate=settings.ws_compression,
        lifespan="on",
        log_config=None,  # the process configured logging already
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def run_loop(main: Coroutine[Any, Any, None], event_loop: str = "uvloop") -> None:
    """Run a gateway process's main coroutine to completion on the chosen event loop.

    uvloop is the default: at 20 boards x 5 clients x 10 updates/s it took a gateway from 33 % to
    28 % of a core and delivery p50 from 0.90 to 0.77 ms (benchmarks/RESULTS.md, "Event loop").
    "asyncio" is the standard library's loop, for platforms without uvloop or to compare.
    """
    if event_loop not in EVENT_LOOPS:
        raise SystemExit(f"inkstream: event_loop must be one of {', '.join(EVENT_LOOPS)}, not {event_loop!r}")
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise SystemExit(
                "inkstream: event_loop=uvloop needs the uvloop package (or set INKSTREAM_EVENT_LOOP=asyncio)"
            ) from None
        uvloop.run(main)
    else:
        asyncio.run(main)


def tune_gc() -> None:
    """Collect garbage less often: a gateway allocates many short-lived objects per update, and the
    default thresholds made full collections of a large heap stall the event loop for tens of ms."""
    gc.collect()
    gc.freeze()  # what exists at start-up (modules, the app) is never garbage: skip it in every pass
    gc.set_threshold(50_000, 20, 100)


def check_listen(host: str, port: int) -> None:
    """Exit with a clear message (not a lifespan traceback) if `host:port` cannot be bound."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"inkstream: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


async def serve_app(app: Any, settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve `app` until SIGINT/SIGTERM; pending work is finished by the app's lifespan shutdown."""
    logging.getLogger("uvicorn.error").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    server = _Server(uvicorn_config(app, settings, host, port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def stopping() -> None:
        await stop.wait()
        # Close the WebSocket connections (1001, after what is queued to them) before the server
        # stops serving: its own shutdown would close them with 1012 at once, and it runs the
        # lifespan shutdown (System.close) only after they ended.
        system = getattr(getattr(app, "state", None), "system", None)
        if system is not None and hasattr(system, "close_connections"):
            await system.close_connections()
        server.should_exit = True

    stopper = asyncio.create_task(stopping(), name="inkstream-stop")
    try:
        await server.serve()
    finally:
        await cancel_and_wait(stopper)
    if not server.started:
        raise SystemExit("inkstream: the server did not start (see the log above)")
