"""The direct lane (gateway.ws_direct) on a real Uvicorn server, with a real WebSocket client.

What the y-websocket endpoint relies on: messages a handler takes never reach `receive()`, the ones
it declines do, in order with everything after them; frames written through the lane arrive whole
(small and large) and interleave correctly with ASGI sends; after the close nothing is written.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from gateway.server import uvicorn_config
from gateway.settings import Settings
from gateway.ws_direct import DIRECT_LANE, MESSAGES_PER_TURN, DirectLane, binary_frame_header
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
    if data.startswith(b"x"):
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
        await ws.send(b"x2")  # declined; its handler takes 0.2 s
        await asyncio.sleep(0.05)
        await ws.send(b"d3")  # read while x2 is being handled (nothing queued): the handler must decline it
        assert [await asyncio.wait_for(ws.recv(), 5) for _ in range(2)] == [b"asgi:x2", b"asgi:d3"]
        await ws.send(b"d4")  # all handled: direct again
        assert await asyncio.wait_for(ws.recv(), 5) == b"direct:d4"


async def test_lane_frames_arrive_whole_and_nothing_is_written_after_the_close() -> None:
    async with _server() as url, connect(url, max_size=None) as ws:
        await ws.send(b"big")
        assert await asyncio.wait_for(ws.recv(), 5) == bytes(range(256)) * 1000
        await ws.send(b"close")
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4000 and ws.close_reason == "bye"
    assert seen["after_close"] is False


async def test_one_read_hands_at_most_direct_per_read_messages_to_the_handler() -> None:
    """A burst in one read: MESSAGES_PER_TURN are handled at once, the rest through `receive()`, in order."""
    async with _server() as url:
        port = int(url.split(":")[2].split("/")[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        count = 3 * MESSAGES_PER_TURN
        # Client frames are masked; a zero key leaves the payload as it is.
        payloads = [b"d%03d" % i for i in range(count)]
        burst = b"".join(b"\x82" + bytes([0x80 | len(p)]) + b"\0\0\0\0" + p for p in payloads)
        writer.write(burst)  # one write, read by the server in one go (well under a read's 256 KiB)
        replies = []
        for _ in range(count):
            header = await asyncio.wait_for(reader.readexactly(2), 5)
            replies.append(await reader.readexactly(header[1]))
        writer.close()
    assert [r.split(b":")[1] for r in replies] == [b"d%03d" % i for i in range(count)]
    direct = [r for r in replies if r.startswith(b"direct:")]
    assert direct == replies[: len(direct)] and 1 <= len(direct) <= MESSAGES_PER_TURN, len(direct)
