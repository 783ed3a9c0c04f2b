"""The direct lane (gateway.ws_direct) on a real Uvicorn server, with a real WebSocket client.

What the y-websocket endpoint relies on: messages a handler takes never reach `receive()`, the ones
it declines do, in order with everything after them; frames written through the lane arrive whole
(small and large) and interleave correctly with ASGI sends; after the close nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from gateway.server import uvicorn_config
from gateway.settings import Settings
from gateway.ws_direct import DIRECT_LANE, DirectLane, binary_frame_header
from tests.conftest import free_port

seen: dict[str, object] = {}


async def _endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    lane: DirectLane | None = websocket.scope["extensions"].get(DIRECT_LANE)
    seen["lane"] = lane
    assert lane is not None

    busy = False  # handling a declined message: decline the ones after it too (the lane cannot know)

    def handler(data: bytes) -> bool:
        if data.startswith(b"d") and not busy:  # taken here: answered through the lane, at once
            assert lane.write(b"direct:" + data)
            return True
        return False  # declined: the ASGI way

    lane.deliver_to(handler)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        busy = True
        try:
            await _handle(websocket, lane, message.get("bytes") or b"")
        finally:
            busy = False


async def _handle(websocket: WebSocket, lane: DirectLane, data: bytes) -> None:
    if data == b"big":
        assert lane.write(bytes(range(256)) * 1000)  # 256,000 bytes: 8-byte length, writelines
        return
    if data == b"close":
        await websocket.close(4000, "bye")
        seen["after_close"] = lane.write(b"too late")
        return
    await asyncio.sleep(0.2)  # a slow ASGI handler: what arrives meanwhile must not overtake it
    await websocket.send_bytes(b"asgi:" + data)


@asynccontextmanager
async def _server() -> AsyncIterator[str]:
    port = free_port()
    app = Starlette(routes=[WebSocketRoute("/ws", _endpoint)])
    server = uvicorn.Server(uvicorn_config(app, Settings(), "127.0.0.1", port))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        await task


def test_frame_headers_follow_rfc_6455() -> None:
    assert binary_frame_header(0) == b"\x82\x00"
    assert binary_frame_header(125) == b"\x82\x7d"
    assert binary_frame_header(126) == b"\x82\x7e\x00\x7e"
    assert binary_frame_header(65535) == b"\x82\x7e\xff\xff"
    assert binary_frame_header(65536) == b"\x82\x7f" + (65536).to_bytes(8, "big")


async def test_taken_and_declined_messages_keep_their_order() -> None:
    async with _server() as url, connect(url) as ws:
        await ws.send(b"d1")
        assert await asyncio.wait_for(ws.recv(), 5) == b"direct:d1"
        # x2 is declined; d3 right behind it is queued after it (same read) or declined (x2 is being handled).
        await ws.send(b"x2")
        await ws.send(b"d3")
        await asyncio.sleep(0.05)
        await ws.send(b"d4")  # alone, while x2 is being handled (queue empty): the handler declines it
        replies = [await asyncio.wait_for(ws.recv(), 5) for _ in range(3)]
        assert replies == [b"asgi:x2", b"asgi:d3", b"asgi:d4"]
        await ws.send(b"d5")  # all handled: direct again
        assert await asyncio.wait_for(ws.recv(), 5) == b"direct:d5"


async def test_lane_frames_arrive_whole_and_nothing_is_written_after_the_close() -> None:
    async with _server() as url, connect(url, max_size=None) as ws:
        await ws.send(b"big")
        assert await asyncio.wait_for(ws.recv(), 5) == bytes(range(256)) * 1000
        await ws.send(b"close")
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4000 and ws.close_reason == "bye"
    assert seen["after_close"] is False
