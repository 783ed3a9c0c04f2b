# ruff: noqa: ASYNC210  (short blocking HTTP calls in async tests are deliberate)
"""Malformed input on every WebSocket path: that one connection gets a 44xx code and a reason, nothing is
logged (no traceback), nothing else is disturbed."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from gateway import protocol
from tests.adversarial.conftest import (
    assert_alive,
    client_frame,
    close_code_in,
    close_of,
    draw,
    full_state,
    joined,
    log_text,
    raw_ws,
)
from tests.conftest import InkstreamServer

ALLOWED_CLOSES = {4400, 4413, 1003}


def _awareness_frame(state: bytes, client: int = 9, clock: int = 1) -> bytes:
    body = protocol.write_uint(1) + protocol.write_uint(client) + protocol.write_uint(clock)
    body += protocol.write_bytes(state)
    return bytes([protocol.MSG_AWARENESS]) + protocol.write_bytes(body)


async def test_deeply_nested_awareness_json_gets_4400_not_1011(inkstream_server: InkstreamServer) -> None:
    """Today: json.loads raises RecursionError (not JSONDecodeError) in gateway/protocol.py decode_awareness,
    it escapes _receive_loop, the ASGI app crashes for that socket (close 1011, "Error in ASGI Framework"
    traceback in the server log)."""
    url = f"{inkstream_server.ws_url}/aw-deep"
    state = b"[" * 30_000 + b"]" * 30_000  # 60 KB: under the 64 KiB awareness limit
    async with joined(url) as ws:
        await ws.send(_awareness_frame(state))
        closed = await close_of(ws)
    assert closed is not None and closed[0] == 4400, closed
    assert "Traceback" not in log_text(inkstream_server)


async def test_frame_over_max_frame_bytes_gets_4413(tmp_path, make_server) -> None:
    """README: 4413 too large, with a reason — from ws.py, not the ASGI server's own 1009: the
    server's cap (gateway/server.py) is well above max_frame_bytes."""
    server = make_server({"INKSTREAM_MAX_FRAME_BYTES": "4096", "INKSTREAM_MAX_UPDATE_BYTES": "2048"})
    url = f"{server.ws_url}/big"
    async with joined(url) as ws:
        await ws.send(protocol.sync_update(b"\x00" * 10_000))
        closed = await close_of(ws)
    assert closed is not None and closed[0] == 4413, closed


async def test_update_over_max_update_bytes_gets_4413(make_server) -> None:
    server = make_server({"INKSTREAM_MAX_FRAME_BYTES": "4096", "INKSTREAM_MAX_UPDATE_BYTES": "2048"})
    async with joined(f"{server.ws_url}/big") as ws:
        await ws.send(protocol.sync_update(b"\x00" * 3000))
        closed = await close_of(ws)
    assert closed is not None and closed[0] == 4413, closed


def _mutate(rnd: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.random()
        if op < 0.4 and data:
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        elif op < 0.6 and data:
            del data[rnd.randrange(len(data))]
        elif op < 0.8:
            data.insert(rnd.randrange(len(data) + 1), rnd.randrange(256))
        elif data:
            data = data[: rnd.randrange(len(data) + 1)]
    return bytes(data)


async def test_fuzzed_frames_close_only_the_sender(inkstream_server: InkstreamServer) -> None:
    server = inkstream_server
    url = f"{server.ws_url}/fuzz"
    rnd = random.Random(1234)
    author = Doc(client_id=777)
    seeds = [
        protocol.sync_update(draw(author, "s1")),
        protocol.sync_update(draw(author, "s2")),
        protocol.sync_step1(bytes(author.get_state())),
        protocol.sync_step1(b"\x02\x01\x05\xff\xff\x03"),
        _awareness_frame(b'{"user":{"name":"x"}}'),
        bytes([protocol.MSG_QUERY_AWARENESS]),
        bytes([protocol.MSG_AUTH, 0]),
    ]
    bad_codes = []
    async with joined(url) as good:
        for i in range(150):
            if i % 10:
                frame = _mutate(rnd, rnd.choice(seeds))
            else:
                frame = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 64)))
            async with joined(url) as ws:
                if frame:
                    await ws.send(frame)
                await ws.send(protocol.sync_step1(b"\x00"))  # a step 2 reply means the frame was taken
                try:
                    while True:
                        message = protocol.decode(await asyncio.wait_for(ws.recv(), 5))
                        if isinstance(message, protocol.SyncMessage) and message.step == protocol.SYNC_STEP2:
                            break
                except websockets.ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd else None
                    if code not in ALLOWED_CLOSES:
                        bad_codes.append((frame.hex(), code, exc.rcvd.reason if exc.rcvd else None))
        # the good client is still served
        await good.send(protocol.sync_update(draw(Doc(), "after-fuzz")))
        await good.send(protocol.sync_step1(b"\x00"))
        while True:
            message = protocol.decode(await asyncio.wait_for(good.recv(), 5))
            if isinstance(message, protocol.SyncMessage) and message.step == protocol.SYNC_STEP2:
                break
    assert not bad_codes, bad_codes[:5]
    assert_alive(server, "fuzzing")
    r = httpx.get(f"{server.url}/api/boards/fuzz", timeout=10)
    assert r.status_code == 200 and "after-fuzz" in [s["id"] for s in r.json()["shapes"]]
    assert "Traceback" not in log_text(server)
    live = set((await full_state(url)).get("shapes", type=Map).keys())
    server.kill9()
    server.start()
    assert set((await full_state(url)).get("shapes", type=Map).keys()) == live


@pytest.mark.parametrize(
    "state_vector",
    [
        b"",
        b"\x01",
        b"\x05\x01",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        b"\x01\xff\xff\xff\xff\x0f\xff\xff\xff\xff\x0f",
        b"\x00\x00\x00",
        b"\x02\x01\x01\x01\x01\x01",
    ],
)
async def test_garbage_state_vectors(inkstream_server: InkstreamServer, state_vector: bytes) -> None:
    url = f"{inkstream_server.ws_url}/sv"
    async with joined(url) as ws:
        await ws.send(protocol.sync_step1(state_vector))
        try:
            message = await asyncio.wait_for(ws.recv(), 5)
            decoded = protocol.decode(message)
            assert isinstance(decoded, protocol.SyncMessage) and decoded.step == protocol.SYNC_STEP2
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 4400, exc.rcvd
    assert_alive(inkstream_server, "a garbage state vector")
    assert "Traceback" not in log_text(inkstream_server)


async def test_text_frame_with_invalid_utf8_gets_1007_with_a_reason_and_no_traceback(
    inkstream_server: InkstreamServer,
) -> None:
    """Uvicorn closes such a client with 1007 too, but logs it as an exception with a traceback."""
    server = inkstream_server
    sock = raw_ws(server.port, "/ws/utf8", rcvbuf=None)
    try:
        sock.sendall(client_frame(b"\xff\xfe not utf-8", opcode=0x1))
        sock.settimeout(10)
        received = b""
        while (code := close_code_in(received)) is None:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    finally:
        sock.close()
    assert code == 1007, received
    assert b"not valid UTF-8" in received
    assert "Traceback" not in log_text(server)
    assert_alive(server, "after invalid UTF-8")
