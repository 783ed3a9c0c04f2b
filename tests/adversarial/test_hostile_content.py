"""Content a client may legally (or almost legally) write must never crash the server or break rendering.

README: "The JSON rendering keeps only schema fields of the right types (a document is whatever clients
wrote)"; bad input "affects no other connection"; `GET /api/boards/{id}` must survive whatever a client wrote.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pycrdt import Doc, Map, XmlFragment

from gateway import protocol
from tests.adversarial.conftest import (
    OCTET,
    assert_alive,
    close_of,
    deeply_nested_any,
    draw,
    joined,
    root_item_update,
)
from tests.conftest import InkstreamServer, wait_until


def _post(server: InkstreamServer, board: str, update: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/api/boards/{board}/updates", content=update, headers=OCTET, timeout=30)


def _json_or_4xx(server: InkstreamServer, path: str) -> httpx.Response:
    try:
        r = httpx.get(server.url + path, timeout=30)
    except httpx.HTTPError as exc:
        assert_alive(server, f"GET {path}")
        raise AssertionError(f"GET {path} failed: {exc!r}") from exc
    assert r.status_code < 500, (path, r.status_code, r.text[:300])
    r.json()  # always JSON
    return r


def _put_witness(server: InkstreamServer) -> None:
    doc = Doc()
    assert _post(server, "witness", draw(doc, "w1")).status_code == 200


def _witness_intact(server: InkstreamServer) -> None:
    r = httpx.get(server.url + "/api/boards/witness", timeout=10)
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["shapes"]] == ["w1"]


@pytest.mark.parametrize("depth", [20_000, 100_000])
def test_deeply_nested_value_does_not_kill_the_server(inkstream_server: InkstreamServer, depth: int) -> None:
    """An ~40-200 KB update holding [[[[...]]]] nested `depth` deep.

    Today: depth 100k segfaults the process inside POST (stack overflow decoding the update);
    depth 20k is accepted and logged, and the next GET /api/boards/{id} segfaults the process.
    """
    server = inkstream_server
    _put_witness(server)
    update = root_item_update("shapes", "deep", deeply_nested_any(depth))
    try:
        r = _post(server, "deep", update)
        assert r.status_code in (200, 400, 413), r.text
        r.json()
    except httpx.HTTPError:
        pass  # asserted below
    assert_alive(server, f"POST of a {depth}-deep nested value")
    _json_or_4xx(server, "/api/boards/deep")
    _json_or_4xx(server, "/api/boards")
    r = httpx.get(server.url + "/api/boards/deep/state", timeout=30)
    assert r.status_code in (200, 404)
    assert_alive(server, f"GET of a board holding a {depth}-deep nested value")
    _witness_intact(server)


def test_deeply_nested_meta_value_does_not_crash_loop_the_server(inkstream_server: InkstreamServer) -> None:
    """Once such a value is in the log, the projector summarizes it (render_meta -> to_py) on every start.

    Today, depending on the stack at hand, the process either segfaults within a second of every start
    (a permanent crash loop: `inkstream serve` on that data dir never stays up), or the projector raises
    RecursionError forever and `/api/boards` answers 500.
    """
    server = inkstream_server
    try:
        _post(server, "deepmeta", root_item_update("meta", "x", deeply_nested_any(20_000)))
    except httpx.HTTPError:
        pass
    later = Doc()
    later.get("meta", type=Map)["title"] = "written after"
    assert _post(server, "later", bytes(later.get_update())).status_code == 200
    server.stop()
    server.start()

    def later_listed() -> bool:  # not loaded after the restart: its list entry comes from the projector
        assert server.proc is not None and server.proc.poll() is None, "server died"
        r = httpx.get(server.url + "/api/boards", timeout=10)
        return r.status_code == 200 and any(b["id"] == "later" and b["title"] == "written after" for b in r.json())

    wait_until(later_listed, timeout=5, what="/api/boards to list the board written after the deep one")
    assert_alive(server, "restart with a deeply nested meta value in the log")


def _projected(server: InkstreamServer, board: str) -> bool:
    r = httpx.get(server.url + "/api/boards", timeout=10)
    return r.status_code == 200 and any(b["id"] == board for b in r.json())


def _nan_shape(doc: Doc) -> bytes:
    return draw(doc, "bad", x=float("nan"), y=float("inf"), points=[0.0, float("-inf"), 1.0, 1.0])


def _xml_in_shapes(doc: Doc) -> bytes:
    before = doc.get_state()
    doc.get("shapes", type=Map)["xml"] = XmlFragment()
    return bytes(doc.get_update(before))


def _xml_inside_shape(doc: Doc) -> bytes:
    before = doc.get_state()
    doc.get("shapes", type=Map)["s"] = Map({"type": "rect", "z": "a", "extra": XmlFragment()})
    return bytes(doc.get_update(before))


def _xml_in_meta(doc: Doc) -> bytes:
    before = doc.get_state()
    doc.get("meta", type=Map)["junk"] = XmlFragment()
    return bytes(doc.get_update(before))


HOSTILE = {
    "nan_and_infinity_numbers": _nan_shape,
    "xml_fragment_as_a_shape": _xml_in_shapes,
    "xml_fragment_inside_a_shape": _xml_inside_shape,
    "xml_fragment_in_meta": _xml_in_meta,
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_board_json_survives_whatever_a_client_wrote(inkstream_server: InkstreamServer, kind: str) -> None:
    """Valid Yjs that does not follow the board model: GET must render the valid part, not answer 500.

    Today: NaN/Infinity (legal Yjs numbers) -> 500 "Out of range float values are not JSON compliant";
    a Y.XmlFragment value -> 500 "XmlFragment has no Python equivalent" (engine/model.py `_plain` / to_py).
    """
    server = inkstream_server
    _put_witness(server)
    doc = Doc()
    assert _post(server, "hostile", draw(doc, "good")).status_code == 200
    r = _post(server, "hostile", HOSTILE[kind](doc))
    assert r.status_code in (200, 400), r.text
    board = _json_or_4xx(server, "/api/boards/hostile").json()
    assert "good" in [s["id"] for s in board["shapes"]]
    _json_or_4xx(server, "/api/boards")  # the list of *all* boards too
    _witness_intact(server)


def test_one_bad_board_does_not_stall_projections_of_all_boards(inkstream_server: InkstreamServer) -> None:
    """A meta value the projector cannot summarize must not stop it: later boards still get summaries.

    Today: LocalProjector.step raises on the bad board's summary, retries the same batch forever
    ("local projector step failed; retrying" every ~1 s), and no board after it is ever projected
    or checkpointed.
    """
    server = inkstream_server
    _post(server, "poison", _xml_in_meta(Doc()))
    doc = Doc()
    doc.get("meta", type=Map)["title"] = "after the poison"
    assert _post(server, "later", bytes(doc.get_update())).status_code == 200
    # Board list entries of boards not loaded come from the projector's summaries.
    server.stop()
    server.start()

    def later_projected() -> bool:
        r = httpx.get(server.url + "/api/boards", timeout=10)
        return r.status_code == 200 and any(b["id"] == "later" and b["title"] == "after the poison" for b in r.json())

    wait_until(later_projected, timeout=5, what="summary of a board written after a poisoned one")


async def test_awareness_relay_never_forwards_non_json_numbers(inkstream_server: InkstreamServer) -> None:
    """Python's json accepts NaN/Infinity; JavaScript's JSON.parse does not (y-protocols would throw).

    Today gateway/protocol.py `decode_awareness` uses json.loads (accepts `NaN`), and rooms.py relays the
    raw frame to every other client: one client can make every browser's awareness handler throw.
    Expected: 4400 for the sender, nothing relayed.
    """
    server = inkstream_server
    url = f"{server.ws_url}/aw-nan"
    state = b'{"cursor":{"x":NaN,"y":Infinity}}'
    body = protocol.write_uint(1) + protocol.write_uint(77) + protocol.write_uint(1) + protocol.write_bytes(state)
    frame = bytes([protocol.MSG_AWARENESS]) + protocol.write_bytes(body)
    async with joined(url) as sender, joined(url) as other:
        await sender.send(frame)
        assert _post(server, "aw-nan", draw(Doc(), "marker")).status_code == 200
        seen = []
        while True:  # everything `other` gets up to the marker update
            raw = await asyncio.wait_for(other.recv(), 5)
            seen.append(raw)
            message = protocol.decode(raw)
            if isinstance(message, protocol.SyncMessage) and message.step == protocol.SYNC_UPDATE:
                break
        assert not any(b"NaN" in raw or b"Infinity" in raw for raw in seen), seen
        closed = await close_of(sender, timeout=5)
        assert closed is not None and closed[0] == 4400, closed
