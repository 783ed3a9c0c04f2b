"""Garbage on one connection closes that connection with a clear code and reason, and harms nobody.

A real JS writer and a real JS reader share the board. A raw socket sends one bad frame. The raw
socket must be closed by the server with a 4400-range code (the y-websocket client treats
4400-4499 as "do not reconnect") and a reason; the JS clients must stay connected, keep syncing,
and the board's log (version) and state must not change because of the garbage.
"""

from __future__ import annotations

import asyncio
import random
from urllib.parse import quote

import pytest
from pycrdt import Doc, Map, create_update_message
from support import Target, async_wait_until, connections, content, doc_from_state, wait_until
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def _valid_update() -> bytes:
    doc = Doc()
    doc.get("shapes", type=Map)["evil"] = Map({"type": "rect", "x": 666})
    return doc.get_update()


def _varuint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def _is_invalid_yjs_update(update: bytes) -> bool:
    try:
        Doc().apply_update(update)
    except Exception:
        return True
    return False


VALID_UPDATE_MESSAGE = create_update_message(_valid_update())
# A length prefix that promises 40 bytes, but the Yjs payload inside is not a Yjs v1 update.
NOT_A_YJS_UPDATE = b"\xff\xff\xff\xff\xff\x01" + bytes(range(34))
RANDOM = random.Random(20261203).randbytes(512)
HUGE = 32 * 1024 * 1024  # bytes; larger than any sane per-message limit

GARBAGE: dict[str, bytes | str] = {
    # First byte 0xe3 starts a multi-byte varint message type: no such message type.
    "random-bytes": b"\xe3" + RANDOM,
    "empty-frame": b"",
    "truncated-sync-step1": b"\x00\x00\x10\x01",  # step 1 promising a 16-byte state vector, 1 byte
    "truncated-sync-update": VALID_UPDATE_MESSAGE[: len(VALID_UPDATE_MESSAGE) // 2],
    "sync-update-not-yjs": b"\x00\x02" + _varuint(len(NOT_A_YJS_UPDATE)) + NOT_A_YJS_UPDATE,
    "sync-step2-not-yjs": b"\x00\x01" + _varuint(len(NOT_A_YJS_UPDATE)) + NOT_A_YJS_UPDATE,
    "unknown-sync-subtype": b"\x00\x09\x02\x00\x00",
    "unknown-message-type": b"\x63\x01\x02\x03",
    "truncated-awareness": b"\x01\x20\x01",
    "text-frame": "this is not a y-websocket message",
}


def test_garbage_payloads_are_really_garbage() -> None:
    """Guard the fixtures above: the 'not a Yjs update' payload must be rejected by pycrdt."""
    assert _is_invalid_yjs_update(NOT_A_YJS_UPDATE)
    assert VALID_UPDATE_MESSAGE[0] == 0 and VALID_UPDATE_MESSAGE[1] == 2
    assert not _is_invalid_yjs_update(_valid_update())


async def _send_and_wait_for_close(url: str, frame: bytes | str) -> tuple[int | None, str | None]:
    async with connect(url, max_size=None, proxy=None, open_timeout=10, close_timeout=10) as ws:
        try:
            await ws.send(frame)  # the server may already have closed (e.g. a bad board id)
            async with asyncio.timeout(10):
                async for _ in ws:  # the server's step 1 etc. may arrive before the close
                    pass
        except ConnectionClosed:
            pass
        except TimeoutError:
            return None, "server did not close the connection within 10 s"
        return ws.close_code, ws.close_reason


async def _check_room_unharmed(target: Target, board: str, writer, reader, version_before: int,
                               marker: str) -> None:
    # The garbage changed nothing on the server...
    if target.http is not None:
        assert target.version(board) == version_before, "garbage must not be appended to the log"
        assert "evil" not in doc_from_state(target.board_state(board))["shapes"]
    # ...the JS clients are still connected and still sync.
    writer.call("setShape", id=marker, fields={"type": "sticky", "text": marker})
    await async_wait_until(lambda: marker in reader.snapshot()["shapes"], within=10,
                           what="room keeps syncing after garbage")
    for client in (writer, reader):
        sizes = client.sizes()
        assert sizes["connected"] and sizes["closes"] == [], sizes
        assert "evil" not in client.snapshot()["shapes"]
    assert content(writer.snapshot()) == content(reader.snapshot())
    if target.http is not None:
        await async_wait_until(lambda: target.version(board) == version_before + 1, within=10,
                               what="exactly the one good update is logged")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", list(GARBAGE))
async def test_garbage_frame_closes_only_that_connection(target: Target, js_client, kind: str) -> None:
    if target.http is None:
        pytest.skip("the reference server ignores garbage instead of closing")
    board = f"garbage-{kind}"
    writer, reader = js_client("writer"), js_client("reader")
    writer.connect(target.ws_url, board)
    reader.connect(target.ws_url, board)
    writer.call("setShape", id="before", fields={"type": "rect", "x": 1})
    await async_wait_until(lambda: "before" in reader.snapshot()["shapes"], within=10, what="base state")
    await async_wait_until(lambda: target.version(board) >= 1, within=10, what="base state logged")
    version_before = target.version(board)

    code, reason = await _send_and_wait_for_close(f"{target.ws_url}/{board}", GARBAGE[kind])
    # A text frame may also get the WebSocket layer's own 1003 "unsupported data".
    allowed_standard = {1003} if kind == "text-frame" else set()
    assert code is not None and (4400 <= code < 4500 or code in allowed_standard), (code, reason)
    assert reason, f"close code {code} needs a reason a developer can act on"

    await _check_room_unharmed(target, board, writer, reader, version_before, marker=f"after-{kind}")


# A frame over the ASGI server's own cap (gateway/server.py: 4 x max_frame_bytes, at least 64 MiB)
# is refused by the server itself (1009); the connection must still be released, not stay counted.


@pytest.mark.asyncio
async def test_huge_frame_is_refused_and_the_connection_released(target: Target, js_client) -> None:
    if target.http is None:
        pytest.skip("the reference server accepts any size")
    board = "garbage-huge"
    writer, reader = js_client("writer"), js_client("reader")
    writer.connect(target.ws_url, board)
    reader.connect(target.ws_url, board)
    writer.call("setShape", id="before", fields={"type": "rect"})
    await async_wait_until(lambda: target.version(board) >= 1, within=10, what="base state logged")
    version_before = target.version(board)

    # A syntactically valid sync update message carrying 32 MiB of junk; the client never
    # completes the closing handshake (as a hostile or broken client would not).
    frame = b"\x00\x02" + _varuint(HUGE) + b"\x00" * HUGE
    async with connect(f"{target.ws_url}/{board}", max_size=None, proxy=None, close_timeout=2) as ws:
        await async_wait_until(lambda: connections(target) == 3, within=10, what="third connection")
        try:
            await ws.send(frame)
        except ConnectionClosed:
            pass
        close = await async_wait_until(lambda: ws.protocol.close_rcvd, within=10, what="a close frame")
        # 1009 "message too big" from the WebSocket layer is acceptable for a frame this size.
        assert close.code == 1009 or 4400 <= close.code < 4500, close
        # The server must let go of the connection itself, not wait for the client to hang up.
        await async_wait_until(lambda: connections(target) == 2, within=5,
                               what="server releases the refused connection")

    await _check_room_unharmed(target, board, writer, reader, version_before, marker="after-huge")


def test_oversized_update_from_a_js_client_gets_a_terminal_close_with_reason(target: Target, js_client) -> None:
    """A 5 MiB image pasted into a shape: the client must be told (4400-range + reason), once.

    y-websocket reconnects after any close outside 4400-4499; a close it does not understand
    makes it reconnect and re-send the same oversized state forever.
    """
    if target.http is None:
        pytest.skip("the reference server accepts any size")
    board = "huge-image"
    other, big = js_client("other"), js_client("big")
    other.connect(target.ws_url, board)
    other.call("setShape", id="small", fields={"type": "rect"})
    wait_until(lambda: target.version(board) >= 1, timeout=10, what="board exists")
    version = target.version(board)
    big.connect(target.ws_url, board)
    big.call("setShape", id="img", fields={"type": "image", "src": "data:image/png;base64," + "A" * (5 << 20)})
    closes = wait_until(lambda: big.sizes()["closes"], timeout=20, what="the oversized client is closed")
    assert 4400 <= closes[0]["code"] < 4500 and closes[0]["reason"], closes
    wait_until(lambda: connections(target) == 1, timeout=10, what="only the other client left")
    assert "img" not in other.snapshot()["shapes"]
    assert "img" not in doc_from_state(target.board_state(board))["shapes"]
    assert target.version(board) == version


@pytest.mark.asyncio
@pytest.mark.parametrize("board", ["bad board", "a" * 129, "semi;colon", "%00"])
async def test_invalid_board_id_is_closed_with_4400_and_reason(target: Target, board: str) -> None:
    if target.http is None:
        pytest.skip("the reference server accepts any room name")
    code, reason = await _send_and_wait_for_close(f"{target.ws_url}/{quote(board, safe='%')}",
                                                  create_update_message(_valid_update()))
    assert code == 4400, (code, reason)
    assert reason
    r = target.http.get(f"/api/boards/{quote(board, safe='%')}")
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()  # a JSON body that says what is wrong


# Known server bug (reported): after a server-initiated close the handler returns at once and the
# TCP connection is dropped before the client's frames are read; the reset loses the close frame
# (1006) in 10-50 % of closes. Not strict: the race does not lose every time.
def test_js_client_is_told_4400_for_an_invalid_board(target: Target, js_client) -> None:
    """Every time, not most times: y-websocket sends step 1 right after open, racing the close.

    If the server drops TCP before the client's frames are read, the kernel resets the
    connection, the client loses the close frame and sees 1006, which y-websocket retries.
    """
    if target.http is None:
        pytest.skip("the reference server accepts any room name")
    c = js_client("bad-board")
    attempts = 20
    for i in range(attempts):
        c.call("connect", url=target.ws_url, room=f"no:colons:{i}", params={}, waitSynced=False)
        wait_until(lambda i=i: len(c.sizes()["closes"]) > i, timeout=10, what="close event")
        c.call("destroy")
    closes = c.sizes()["closes"][:attempts]
    bad = [cl for cl in closes if cl["code"] != 4400 or not cl["reason"]]
    assert not bad, f"{len(bad)} of {attempts} closes were not 4400 with a reason: {bad[:3]}"
