"""Helpers for the history tests: pycrdt replicas talking to a real server over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import websockets
from pycrdt import Doc, Map, create_sync_message, handle_sync_message

from engine.model import render

OCTET = {"content-type": "application/octet-stream"}


def replica(state: bytes | None = None) -> Doc:
    """A pycrdt replica, optionally loaded from a server state."""
    doc: Doc = Doc()
    doc.get("shapes", type=Map)
    doc.get("meta", type=Map)
    if state:
        doc.apply_update(state)
    return doc


def shapes(doc: Doc) -> Map:
    return doc.get("shapes", type=Map)


def add_shape(doc: Doc, shape_id: str, x: float = 0.0, y: float = 0.0, z: str = "a0", **extra: Any) -> None:
    with doc.transaction():
        shapes(doc)[shape_id] = Map({"type": "rect", "x": x, "y": y, "w": 10.0, "h": 10.0, "z": z, **extra})


def move(doc: Doc, shape_id: str, x: float, y: float) -> None:
    with doc.transaction():
        shape = shapes(doc)[shape_id]
        shape["x"] = x
        shape["y"] = y


def view(doc: Doc, board: str = "b") -> dict[str, Any]:
    """The board as the server would render it, without id/version."""
    out = render(doc, board, 0)
    return {"meta": out["meta"], "shapes": out["shapes"]}


def post(client: httpx.Client, board: str, update: bytes, user: str = "tester") -> dict[str, Any]:
    r = client.post(f"/api/boards/{board}/updates", content=update, headers={**OCTET, "x-inkstream-user": user})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def server_state(client: httpx.Client, board: str) -> bytes:
    r = client.get(f"/api/boards/{board}/state")
    assert r.status_code == 200, r.text
    return r.content


def projected(client: httpx.Client, board: str) -> bool:
    """True once the projector has history rows for every version of the board."""
    body = client.get(f"/api/boards/{board}/versions", params={"before": 10**9, "limit": 1}).json()
    return bool(body["projected"] == body["latest"] and body["latest"] > 0)


async def ws_sync(
    ws_url: str, board: str, doc: Doc, until: Any = None, timeout: float = 20.0, ready: asyncio.Event | None = None
) -> None:
    """Sync `doc` with the server over the y-websocket protocol until `until(doc)` holds (default: synced).

    `ready` is set once the server's step 2 arrived (the connection is live from then on).
    """
    async with websockets.connect(f"{ws_url}/{board}", max_size=None) as ws:
        await ws.send(create_sync_message(doc))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        synced = False
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("websocket sync did not reach the expected state")
            msg = await asyncio.wait_for(ws.recv(), remaining)
            assert isinstance(msg, bytes)
            if msg[0] != 0:  # awareness and friends
                continue
            reply = handle_sync_message(msg[1:], doc)
            if reply is not None:
                await ws.send(reply)
            if msg[1] == 1:  # step 2: we have the server's state
                synced = True
                if ready is not None:
                    ready.set()
            if synced and (until is None or until(doc)):
                return
