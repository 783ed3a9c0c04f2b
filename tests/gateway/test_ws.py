"""The y-websocket endpoint over real sockets against a real `inkstream serve`."""

import asyncio
from pathlib import Path

import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from gateway import protocol
from tests.conftest import InkstreamServer


def _draw(doc: Doc, shape_id: str) -> bytes:
    before = doc.get_state()
    doc.get("shapes", type=Map)[shape_id] = Map({"type": "rect", "x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0, "z": "a"})
    return bytes(doc.get_update(before))


async def _recv(ws: websockets.ClientConnection, timeout: float = 5.0) -> protocol.Message:
    return protocol.decode(await asyncio.wait_for(ws.recv(), timeout))


async def _recv_until(
    ws: websockets.ClientConnection, want: type, step: int | None = None, timeout: float = 5.0
) -> protocol.Message:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        message = await _recv(ws, deadline - asyncio.get_running_loop().time())
        if isinstance(message, want) and (step is None or getattr(message, "step", None) == step):
            return message


async def _closed(ws: websockets.ClientConnection) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as info:
        for _ in range(100):
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_server_greets_with_step1_and_answers_step1_for_that_peer_only(inkstream_server: InkstreamServer) -> None:
    url = inkstream_server.ws_url
    async with websockets.connect(f"{url}/b1") as a, websockets.connect(f"{url}/b1") as b:
        assert (await _recv(a)) == protocol.SyncMessage(protocol.SYNC_STEP1, b"\x00")
        await _recv(b)
        doc = Doc()
        await a.send(protocol.sync_update(_draw(doc, "s1")))
        relayed = await _recv_until(b, protocol.SyncMessage, protocol.SYNC_UPDATE)
        assert isinstance(relayed, protocol.SyncMessage)
        await b.send(protocol.sync_step1(b"\x00"))
        step2 = await _recv_until(b, protocol.SyncMessage, protocol.SYNC_STEP2)
        assert isinstance(step2, protocol.SyncMessage) and len(step2.payload) > 2
        # a never receives b's step 2 (nor its own update back): the next thing it gets is b's next update.
        await b.send(protocol.sync_update(_draw(Doc(), "s2")))
        next_for_a = await _recv_until(a, protocol.SyncMessage)
        assert isinstance(next_for_a, protocol.SyncMessage) and next_for_a.step == protocol.SYNC_UPDATE
        probe = Doc()
        probe.apply_update(next_for_a.payload)
        assert list(probe.get("shapes", type=Map).keys()) == ["s2"]


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (b"\x00\x02\x05garbage-not-yjs", 4400, "malformed"),
        (protocol.sync_update(b"\x09\x09\x09\x09"), 4400, "invalid"),
        (b"\x07", 4400, "unknown message type"),
        (protocol.sync_step1(b"\xff\xff\xff"), 4400, "state vector"),
        (b"\x01\x05\x01\x01\x01\x01{", 4400, "JSON"),
    ],
)
async def test_bad_frames_close_only_that_connection(
    inkstream_server: InkstreamServer, frame: bytes, code: int, reason: str
) -> None:
    url = inkstream_server.ws_url
    doc = Doc()
    async with websockets.connect(f"{url}/room") as good, websockets.connect(f"{url}/room") as bad:
        await _recv(good)
        await good.send(protocol.sync_update(_draw(doc, "before")))
        await bad.send(frame)
        got_code, got_reason = await _closed(bad)
        assert got_code == code and reason in got_reason
        await good.send(protocol.sync_update(_draw(doc, "after")))
        async with httpx.AsyncClient(base_url=inkstream_server.url) as http:
            for _ in range(100):
                board = (await http.get("/api/boards/room")).json()
                if len(board["shapes"]) == 2:
                    break
                await asyncio.sleep(0.05)
            assert [s["id"] for s in board["shapes"]] == ["after", "before"]
            assert board["version"] == 2  # the bad frame was never logged
            metrics = (await http.get("/metrics")).text
            assert "inkstream_updates_rejected_total" in metrics


async def test_text_frames_and_bad_board_ids_get_close_codes(inkstream_server: InkstreamServer) -> None:
    async with websockets.connect(f"{inkstream_server.ws_url}/room") as ws:
        await ws.send("hello")
        assert (await _closed(ws))[0] == 1003
    async with websockets.connect(f"{inkstream_server.ws_url}/{'x' * 129}") as ws:
        code, reason = await _closed(ws)
        assert code == 4400 and "at most 128" in reason
    async with websockets.connect(f"{inkstream_server.ws_url}/a%20b") as ws:
        assert (await _closed(ws))[0] == 4400


async def test_oversized_update_is_rejected(tmp_path: Path) -> None:
    server = InkstreamServer(data_dir=tmp_path / "data", env={"INKSTREAM_MAX_UPDATE_BYTES": "1000"})
    server.start()
    try:
        doc = Doc()
        async with websockets.connect(f"{server.ws_url}/big") as ws:
            before = doc.get_state()
            doc.get("shapes", type=Map)["s"] = Map({"type": "text", "text": "x" * 5000})
            await ws.send(protocol.sync_update(bytes(doc.get_update(before))))
            code, reason = await _closed(ws)
            assert code == 4413 and "limit" in reason
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post(
                "/api/boards/big/updates",
                content=bytes(doc.get_update()),
                headers={"content-type": "application/octet-stream"},
            )
            assert r.status_code == 413 and r.json()["error"] == "too_large"
            assert (await http.get("/api/boards/big")).status_code == 404
    finally:
        server.stop()


async def test_awareness_is_relayed_and_removed_when_a_client_vanishes(inkstream_server: InkstreamServer) -> None:
    url = inkstream_server.ws_url
    async with websockets.connect(f"{url}/aw") as watcher:
        await _recv(watcher)
        ghost = await websockets.connect(f"{url}/aw")
        await _recv(ghost)
        await ghost.send(protocol.awareness([(4242, 1, {"user": {"name": "ghost"}})]))
        seen = await _recv_until(watcher, protocol.AwarenessMessage)
        assert isinstance(seen, protocol.AwarenessMessage) and seen.entries[0][0] == 4242
        # A late joiner gets the present states right away.
        async with websockets.connect(f"{url}/aw") as late:
            present = await _recv_until(late, protocol.AwarenessMessage)
            assert isinstance(present, protocol.AwarenessMessage)
            assert [e[:1] for e in present.entries if e[2]] == [(4242,)]
        # Abrupt end: the TCP connection drops without a close frame.
        ghost.transport.abort()
        removed = await _recv_until(watcher, protocol.AwarenessMessage)
        assert isinstance(removed, protocol.AwarenessMessage)
        assert removed.entries == [(4242, 2, None)]


async def test_idle_connections_get_keepalive_frames(tmp_path: Path) -> None:
    server = InkstreamServer(data_dir=tmp_path / "data", env={"INKSTREAM_KEEPALIVE_SECONDS": "0.3"})
    server.start()
    try:
        async with websockets.connect(f"{server.ws_url}/quiet") as ws:
            await _recv(ws)  # step 1
            keepalive = await _recv(ws, timeout=3)
            assert keepalive == protocol.AwarenessMessage(protocol.awareness([]), [])
    finally:
        server.stop()


async def test_author_name_follows_the_awareness_user_name(inkstream_server: InkstreamServer) -> None:
    """The app connects before the user picks a name; provenance follows awareness `user.name`."""
    url = inkstream_server.ws_url
    doc = Doc()
    async with websockets.connect(f"{url}/names?user=Bright%20Panda") as ws:
        await _recv(ws)
        await ws.send(protocol.sync_update(_draw(doc, "s1")))
        await ws.send(protocol.awareness([(doc.client_id, 1, {"user": {"name": "Alice", "color": "#f00"}})]))
        await ws.send(protocol.sync_update(_draw(doc, "s2")))
        await ws.send(protocol.sync_step1(b"\x00"))
        await _recv_until(ws, protocol.SyncMessage, protocol.SYNC_STEP2)  # both updates processed
    async with httpx.AsyncClient(base_url=inkstream_server.url) as http:
        for _ in range(200):
            page = (await http.get("/api/boards/names/versions")).json()
            if len(page["versions"]) == 2:
                break
            await asyncio.sleep(0.05)
    assert [v["user"] for v in page["versions"]] == ["Bright Panda", "Alice"]


async def test_author_names_lose_control_characters(inkstream_server: InkstreamServer) -> None:
    """Names end up in terminals (`inkstream history`) and the web app: no control characters,
    line breaks or bidi overrides, whether they come from the URL or from awareness."""
    url = inkstream_server.ws_url
    doc = Doc()
    async with websockets.connect(f"{url}/dirty-names?user=%00evil%0A%1B%5B31mred") as ws:
        await _recv(ws)
        await ws.send(protocol.sync_update(_draw(doc, "s1")))
        await ws.send(protocol.awareness([(doc.client_id, 1, {"user": {"name": "\u202eMallory\r\n\x07"}})]))
        await ws.send(protocol.sync_update(_draw(doc, "s2")))
        await ws.send(protocol.sync_step1(b"\x00"))
        await _recv_until(ws, protocol.SyncMessage, protocol.SYNC_STEP2)
    async with httpx.AsyncClient(base_url=inkstream_server.url) as http:
        for _ in range(200):
            page = (await http.get("/api/boards/dirty-names/versions")).json()
            if len(page["versions"]) == 2:
                break
            await asyncio.sleep(0.05)
    assert [v["user"] for v in page["versions"]] == ["evil [31mred", "Mallory"]


async def test_routing_errors_are_json(inkstream_server: InkstreamServer) -> None:
    async with httpx.AsyncClient(base_url=inkstream_server.url) as http:
        r = await http.get("/api/nothing")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = await http.delete("/api/boards/x")
        assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
        r = await http.get("/api/boards/..")
        assert r.status_code in (400, 404) and "error" in r.json()
