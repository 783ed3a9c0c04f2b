"""Running an ASGI app under Hypercorn, the one way every Inkstream HTTP process is served."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from collections.abc import Coroutine
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from hypercorn.protocol import ws_stream
from wsproto.extensions import PerMessageDeflate

from gateway.settings import EVENT_LOOPS, Settings


class _DeclineDeflate(PerMessageDeflate):
    """A permessage-deflate extension that declines every offer.

    Hypercorn always accepts permessage-deflate when a client offers it (browsers do), and has no
    setting for it. Yjs updates are small and mostly binary; measured on a 5,000-update burst,
    compressing every frame halved gateway throughput (1.2k vs 2.5k updates/s), so it is off
    unless INKSTREAM_WS_COMPRESSION is set.
    """

    def accept(self, offer: str) -> None:
        return None


def configure_ws_compression(enabled: bool) -> None:
    """Accept (enabled) or decline (default) permessage-deflate in this process."""
    ws_stream.PerMessageDeflate = PerMessageDeflate if enabled else _DeclineDeflate  # type: ignore[attr-defined]


def hypercorn_config(settings: Settings, host: str | None = None, port: int | None = None) -> Config:
    """Hypercorn settings for an Inkstream process."""
    config = Config()
    config.bind = [f"{host or settings.host}:{port or settings.port}"]
    # Hypercorn's own cap only guards memory: it closes with 1009 and no reason, which y-websocket
    # clients retry forever. Frames between the app's limit and this one get our 4413 with a reason.
    config.websocket_max_message_size = max(64 * 1024 * 1024, 4 * settings.max_frame_bytes)
    config.accesslog = None
    config.graceful_timeout = 5
    return config


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
    configure_ws_compression(settings.ws_compression)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def stopping() -> None:
        await stop.wait()
        # Close the WebSocket connections before Hypercorn stops serving: Hypercorn only runs the
        # lifespan shutdown (System.close, which closes them) after its connections ended, and live
        # clients never end theirs, so a gateway under load took 50-95 s to exit after SIGTERM.
        system = getattr(getattr(app, "state", None), "system", None)
        if system is not None and hasattr(system, "close_connections"):
            await system.close_connections()

    await hypercorn_serve(app, hypercorn_config(settings, host, port), shutdown_trigger=stopping)
