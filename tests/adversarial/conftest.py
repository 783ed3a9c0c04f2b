"""Helpers for the adversarial tests: hand-crafted Yjs updates and y-websocket frames, raw clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from gateway import protocol
from tests.conftest import InkstreamServer

OCTET = {"content-type": "application/octet-stream"}


# -- hand-made Yjs v1 updates ---------------------------------------------------------------------


def _var_string(text: str) -> bytes:
    return protocol.write_bytes(text.encode())


def root_item_update(root: str, key: str | None, content_any: bytes, client: int = 424242, clock: int = 0) -> bytes:
    """A Yjs v1 update with one Item (ContentAny holding the pre-encoded `content_any` values).

    The item hangs off the root type `root` (under map key `key`, or as an array element if None).
    `content_any` is `varUint count` followed by that many lib0 `writeAny` values.
    """
    info = 8 | (0x20 if key is not None else 0)  # content ref 8 = ContentAny; 0x20 = has parentSub
    struct = bytes([info]) + protocol.write_uint(1) + _var_string(root)  # parent is a root type, by name
    if key is not None:
        struct += _var_string(key)
    struct += content_any
    return (
        protocol.write_uint(1)  # one client
        + protocol.write_uint(1)  # one struct
        + protocol.write_uint(client)
        + protocol.write_uint(clock)
        + struct
        + protocol.write_uint(0)  # empty delete set
    )


def deeply_nested_any(depth: int) -> bytes:
    """One lib0 `any` value: an array nested `depth` times around null ([[[...null...]]])."""
    return protocol.write_uint(1) + b"\x75\x01" * depth + b"\x7e"


def draw(doc: Doc, shape_id: str, **fields: Any) -> bytes:
    """Add a rect shape to `doc` and return the update that did it."""
    before = doc.get_state()
    shape = {"type": "rect", "x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0, "z": shape_id, **fields}
    doc.get("shapes", type=Map)[shape_id] = Map(shape)
    return bytes(doc.get_update(before))


# -- server checks --------------------------------------------------------------------------------


def server_alive(server: InkstreamServer) -> bool:
    """The server process is running and answers /healthz."""
    assert server.proc is not None
    if server.proc.poll() is not None:
        return False
    try:
        return httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def assert_alive(server: InkstreamServer, what: str) -> None:
    assert server.proc is not None
    code = server.proc.poll()
    assert code is None, f"server died ({code}) after {what}"
    assert server_alive(server), f"server stopped answering after {what}"


def log_text(server: InkstreamServer) -> str:
    return server.log_path.read_text(errors="replace") if server.log_path else ""


@pytest.fixture
def make_server(tmp_path: Path):
    """Factory for servers with custom env; every server made is stopped at the end."""
    made: list[InkstreamServer] = []

    def make(env: dict[str, str] | None = None, name: str = "data") -> InkstreamServer:
        server = InkstreamServer(data_dir=tmp_path / name, env=env or {})
        server.start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


# -- websocket helpers ----------------------------------------------------------------------------


def raw_ws(port: int, path: str, rcvbuf: int | None = 4096) -> socket.socket:
    """A WebSocket handshake on a plain socket (by default with a tiny receive buffer, for a client that
    never reads); the caller writes frames with `client_frame`."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
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


def close_code_in(stream: bytes) -> int | None:
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


def client_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """One final client frame, masked (as clients must) with a random key."""
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


async def recv(ws: Any, timeout: float = 5.0) -> protocol.Message:
    return protocol.decode(await asyncio.wait_for(ws.recv(), timeout))


async def close_of(ws: Any, timeout: float = 10.0) -> tuple[int, str] | None:
    """Read until the server closes; its (code, reason), or None if the socket died without a close frame."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            await asyncio.wait_for(ws.recv(), max(0.01, deadline - loop.time()))
    except websockets.ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else None


@contextlib.asynccontextmanager
async def joined(url: str, **kwargs: Any) -> AsyncIterator[Any]:
    """A y-websocket connection that has received the server's sync step 1."""
    async with websockets.connect(url, max_size=None, **kwargs) as ws:
        first = await recv(ws)
        assert isinstance(first, protocol.SyncMessage) and first.step == protocol.SYNC_STEP1
        yield ws


async def full_state(url: str) -> Doc:
    """Join with an empty doc and return what the server's sync step 2 holds."""
    async with joined(url) as ws:
        await ws.send(protocol.sync_step1(b"\x00"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            message = await recv(ws, deadline - loop.time())
            if isinstance(message, protocol.SyncMessage) and message.step == protocol.SYNC_STEP2:
                doc = Doc()
                doc.apply_update(message.payload)
                return doc
