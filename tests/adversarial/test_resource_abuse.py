# ruff: noqa: ASYNC210  (short blocking HTTP calls in async tests are deliberate)
"""Resource abuse: slow consumers, connection churn, many boards, hostile HTTP requests."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time

import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from gateway import protocol
from tests.adversarial.conftest import OCTET, assert_alive, draw, joined, log_text
from tests.conftest import InkstreamServer


def _raw_ws(port: int, path: str) -> socket.socket:
    """A WebSocket handshake on a socket with a tiny receive buffer; the caller then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return sock


def _close_code_in(stream: bytes) -> int | None:
    """Parse unmasked server frames; the close code if a close frame is among them."""
    pos = 0
    while pos + 2 <= len(stream):
        opcode = stream[pos] & 0x0F
        length = stream[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            length = int.from_bytes(stream[pos : pos + 2], "big")
            pos += 2
        elif length == 127:
            length = int.from_bytes(stream[pos : pos + 8], "big")
            pos += 8
        payload = stream[pos : pos + length]
        pos += length
        if opcode == 0x8 and len(payload) >= 2:
            return int.from_bytes(payload[:2], "big")
    return None


async def test_slow_consumer_is_cut_off_with_1013_and_others_stay_live(make_server) -> None:
    server = make_server({"INKSTREAM_MAX_SEND_QUEUE": "64"})
    board = "slow"
    url = f"{server.ws_url}/{board}"
    slow = _raw_ws(server.port, f"/ws/{board}")
    try:
        writer_doc = Doc()
        filler = "x" * 16_000
        async with joined(url) as writer, joined(url) as reader:
            started = time.monotonic()
            got = Doc()

            async def read_all() -> None:  # the live reader gets everything, promptly
                while len(got.get("shapes", type=Map)) < 800:
                    message = protocol.decode(await asyncio.wait_for(reader.recv(), 10))
                    if isinstance(message, protocol.SyncMessage) and message.step != protocol.SYNC_STEP1:
                        got.apply_update(message.payload)

            reading = asyncio.create_task(read_all())
            for i in range(800):  # ~13 MB: far more than the socket buffers hold
                await writer.send(protocol.sync_update(draw(writer_doc, f"s{i}", text=filler)))
                if i % 16 == 15:  # a live client keeps up: never more than 16 frames ahead of it
                    while len(got.get("shapes", type=Map)) <= i - 16 and not reading.done():
                        await asyncio.sleep(0.001)
            await asyncio.wait_for(reading, 20)
            assert time.monotonic() - started < 20
        # now the slow client reads: it must find a 1013 close after what was queued for it
        slow.settimeout(10)
        data = b""
        deadline = time.monotonic() + 15
        code = None
        while time.monotonic() < deadline and code is None:
            try:
                chunk = slow.recv(1 << 20)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            if len(data) > 50_000_000:
                break
            code = _close_code_in(data)
        assert code == 1013, f"slow consumer got close code {code} after {len(data)} bytes"
    finally:
        slow.close()
    assert_alive(server, "a slow consumer")


async def test_connection_churn(inkstream_server: InkstreamServer) -> None:
    """2,000 connections opened and closed quickly (some abruptly) leave the server healthy and at 0."""
    server = inkstream_server
    sem = asyncio.Semaphore(100)

    async def one(i: int) -> None:
        async with sem:
            if i % 3 == 0:  # abrupt: TCP close right after the handshake, no close frame
                sock = await asyncio.to_thread(_raw_ws, server.port, f"/ws/churn-{i % 7}")
                sock.close()
                return
            async with websockets.connect(f"{server.ws_url}/churn-{i % 7}") as ws:
                await ws.recv()

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(2000))), 50)
    async with joined(f"{server.ws_url}/churn-0") as ws:
        await ws.send(protocol.sync_update(draw(Doc(), "alive")))
    deadline = time.monotonic() + 10
    while True:
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        line = next(x for x in metrics.splitlines() if x.startswith("inkstream_connections "))
        if float(line.split()[1]) == 0:
            break
        assert time.monotonic() < deadline, line
        await asyncio.sleep(0.05)
    assert_alive(server, "connection churn")
    assert "Traceback" not in log_text(server)


async def test_many_boards_created_rapidly(inkstream_server: InkstreamServer) -> None:
    server = inkstream_server
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        sem = asyncio.Semaphore(50)

        async def post(i: int) -> int:
            async with sem:
                r = await http.post(f"/api/boards/many-{i}/updates", content=draw(Doc(), "s"), headers=OCTET)
                return r.status_code

        codes = await asyncio.gather(*(post(i) for i in range(300)))
        assert set(codes) == {200}
        listed = (await http.get("/api/boards")).json()
        assert len([b for b in listed if b["id"].startswith("many-")]) == 300


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, b"\x00\x00", 415),
        ({"content-type": "text/plain"}, b"\x00\x00", 415),
        ({"content-type": "application/json"}, b"{}", 415),
        (OCTET, b"", 400),
        (OCTET, b"\x00", 400),
        (OCTET, b"not yjs at all", 400),
        ({**OCTET, "content-type": "application/octet-stream; charset=binary"}, b"\x00\x00", 200),
    ],
)
def test_post_bad_requests_answer_json_4xx(inkstream_server: InkstreamServer, headers, body, status) -> None:
    r = httpx.post(f"{inkstream_server.url}/api/boards/post/updates", content=body, headers=headers, timeout=10)
    assert r.status_code == status, r.text
    assert "error" in r.json() or status == 200


def test_post_huge_declared_content_length_is_refused_without_reading(make_server) -> None:
    server = make_server({"INKSTREAM_MAX_UPDATE_BYTES": "1000"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/boards/huge/updates HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 99999999999\r\n\r\n" + b"\x00" * 100
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.split(b"\r\n")[0].split(b" ")[1] == b"413", reply[:200]

    # chunked, no Content-Length, over the limit
    def gen():
        for _ in range(10):
            yield b"\x00" * 500

    r = httpx.post(f"{server.url}/api/boards/huge/updates", content=gen(), headers=OCTET, timeout=10)
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert_alive(server, "huge bodies")


async def test_huge_and_many_awareness_states(make_server) -> None:
    """Awareness over the limit -> 4413; many client ids in one frame are relayed, and cleared on disconnect."""
    server = make_server()
    url = f"{server.ws_url}/aw-big"
    state = b'{"blob":"' + b"x" * 70_000 + b'"}'
    body = protocol.write_uint(1) + protocol.write_uint(5) + protocol.write_uint(1) + protocol.write_bytes(state)
    async with joined(url) as ws:
        await ws.send(bytes([1]) + protocol.write_bytes(body))
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4413
    entries = [(1000 + i, 1, {"u": i}) for i in range(2000)]
    async with joined(url) as other:
        async with joined(url) as spammer:
            await spammer.send(protocol.awareness(entries))
            while True:
                m = protocol.decode(await asyncio.wait_for(other.recv(), 5))
                if isinstance(m, protocol.AwarenessMessage) and len(m.entries) == 2000:
                    break
        while True:  # removal for all 2000 after the spammer left
            m = protocol.decode(await asyncio.wait_for(other.recv(), 5))
            if isinstance(m, protocol.AwarenessMessage) and m.entries and all(s is None for _c, _k, s in m.entries):
                assert len(m.entries) == 2000
                break


def _masked(payload: bytes, opcode: int = 0x2) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_awareness_removed_when_a_socket_dies_without_a_close_frame(inkstream_server: InkstreamServer) -> None:
    server = inkstream_server
    url = f"{server.ws_url}/aw-abrupt"
    async with joined(url) as watcher:
        sock = await asyncio.to_thread(_raw_ws, server.port, "/ws/aw-abrupt")
        sock.sendall(_masked(protocol.awareness([(555, 3, {"user": {"name": "ghost"}})])))
        while True:
            m = protocol.decode(await asyncio.wait_for(watcher.recv(), 5))
            if isinstance(m, protocol.AwarenessMessage) and any(c == 555 and s for c, _k, s in m.entries):
                break
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST, no close frame
        while True:
            m = protocol.decode(await asyncio.wait_for(watcher.recv(), 5))
            if isinstance(m, protocol.AwarenessMessage) and any(c == 555 and s is None for c, _k, s in m.entries):
                break
    async with joined(url) as late:  # and a late joiner is not told about the ghost
        await late.send(bytes([protocol.MSG_QUERY_AWARENESS]))
        with pytest.raises(asyncio.TimeoutError):
            while True:
                m = protocol.decode(await asyncio.wait_for(late.recv(), 0.5))
                assert not (isinstance(m, protocol.AwarenessMessage) and any(c == 555 and s for c, _k, s in m.entries))
