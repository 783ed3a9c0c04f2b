"""The HTTP API against a real `inkstream serve`: bad input gets a 4xx JSON error for that one request,
and the same state reads the same whichever way it is read.

House rule: {"error": reason, "detail": what to do}, quoting only a short piece of the input.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from tests.conftest import ROOT, InkstreamServer, wait_until
from tests.history.support import projected

OCTET = "application/octet-stream"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InkstreamServer]:
    srv = InkstreamServer(data_dir=tmp_path_factory.mktemp("http-api") / "data")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: InkstreamServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def raw(server: InkstreamServer, method: str, path: str, body: bytes | None = None, **headers: str) -> Any:
    """One request with `path` sent exactly as written (no client-side normalisation of %2F or '..')."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def error_of(status: int, body: bytes) -> dict[str, str]:
    assert 400 <= status < 500, (status, body[:300])
    parsed = json.loads(body)
    assert set(parsed) == {"error", "detail"} and parsed["detail"], parsed
    return parsed  # type: ignore[no-any-return]


def update(fill: Any) -> bytes:
    doc: Doc = Doc()
    before = doc.get_state()
    fill(doc.get("shapes", type=Map), doc.get("meta", type=Map))
    return bytes(doc.get_update(before))


def a_rect(shapes: Map, _meta: Map) -> None:
    shapes["r"] = Map({"type": "rect", "x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0, "z": "a0"})


# -- 1. media types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/octet-stream", "APPLICATION/OCTET-STREAM", "Application/Octet-Stream; charset=binary"],
)
def test_media_types_are_case_insensitive(client: httpx.Client, content_type: str) -> None:
    r = client.post("/api/boards/ct/updates", content=update(a_rect), headers={"content-type": content_type})
    assert r.status_code == 200, r.text


def test_wrong_media_type_is_415_quoting_little(server: InkstreamServer) -> None:
    for content_type in ("text/plain", "text/" + "x" * 5000, ""):
        headers = {"Content-Type": content_type} if content_type else {}
        status, body = raw(server, "POST", "/api/boards/ct2/updates", update(a_rect), **headers)
        assert status == 415
        err = error_of(status, body)
        assert err["error"] == "unsupported_media_type" and len(err["detail"]) < 200, err


# -- 2. board ids in paths -----------------------------------------------------------------------

BAD_SEGMENTS = ["a%2Fb", "a%2fb", "%2e%2e", "%2E", "..", ".", "a%20b", "x" * 129, "%C3%A9", "%ff"]
SUB_ROUTES = [
    ("GET", ""),
    ("GET", "/state"),
    ("GET", "/versions"),
    ("GET", "/diff?from=0"),
    ("GET", "/export?format=svg"),
    ("GET", "/shapes/s1/history"),
    ("GET", "/no-such-route"),
    ("POST", "/updates"),
    ("POST", "/restore"),
    ("POST", "/fork"),
    ("POST", "/import"),
]


@pytest.mark.parametrize("segment", BAD_SEGMENTS)
def test_invalid_board_id_segment_is_400_on_every_board_route(server: InkstreamServer, segment: str) -> None:
    for method, suffix in SUB_ROUTES:
        status, body = raw(server, method, f"/api/boards/{segment}{suffix}", b"{}" if method == "POST" else None)
        assert status == 400, (method, segment, suffix, status, body[:200])
        assert error_of(status, body)["error"] == "invalid_board_id"
    status, body = raw(server, "GET", f"/api/route/{segment}")
    assert status == 400 and error_of(status, body)["error"] == "invalid_board_id"


def test_valid_ids_with_dots_tildes_dashes_underscores(server: InkstreamServer, client: httpx.Client) -> None:
    for board in ("a.b~c-d_e", "...", "~", "v1.2", "_-_"):
        r = client.post(f"/api/boards/{board}/updates", content=update(a_rect), headers={"content-type": OCTET})
        assert r.status_code == 200, (board, r.text)
        status, body = raw(server, "GET", f"/api/boards/{board}")
        assert status == 200 and json.loads(body)["id"] == board
        assert raw(server, "GET", f"/api/boards/{board}/versions")[0] == 200
        assert raw(server, "GET", f"/api/route/{board}")[0] == 200


def test_empty_and_missing_ids(server: InkstreamServer) -> None:
    status, body = raw(server, "GET", "/api/boards/")
    assert status == 400 and error_of(status, body)["detail"] == "board id is empty"
    status, body = raw(server, "GET", "/api/boards/unknown-board")
    assert status == 404 and error_of(status, body)["error"] == "not_found"


def test_shape_ids_with_encoded_slashes_are_found(client: httpx.Client) -> None:
    def slashed(shapes: Map, _meta: Map) -> None:
        shapes["a/b"] = Map({"type": "rect", "x": 0.0, "y": 0.0, "z": "a0"})

    assert client.post("/api/boards/slash/updates", content=update(slashed), headers={"content-type": OCTET}).is_success
    wait_until(lambda: projected(client, "slash"), what="projected")
    r = client.get("/api/boards/slash/shapes/a%2Fb/history")
    assert r.status_code == 200 and r.json()["shape"] == "a/b" and r.json()["history"][0]["kind"] == "added"
    r = client.get("/api/boards/slash/shapes/a/b/history")  # an unencoded '/' is not part of a shape id
    assert r.status_code == 404 and r.json()["error"] == "not_found"


# -- 3. WebSocket paths --------------------------------------------------------------------------


async def _close_of(url: str) -> tuple[int, str]:
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as info:
            for _ in range(100):
                await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/ws", "board id is empty"),
        ("/ws/", "board id is empty"),
        ("/ws?user=ann", "board id is empty"),
        ("/ws/..", "'.' or '..'"),
        ("/ws/%2e%2e", "'.' or '..'"),
        ("/ws/a%2Fb", "only letters"),
        ("/ws/a/b", "only letters"),
        ("/", "no WebSocket endpoint at /; boards are at /ws/"),  # what a browser makes of /ws/.. and /ws/%2e%2e
        ("/static/x", "no WebSocket endpoint at /static/x"),
        ("/api/boards/b1", "no WebSocket endpoint at /api/boards/b1"),
    ],
)
async def test_every_bad_websocket_path_is_accepted_and_closed_with_4400(
    server: InkstreamServer, path: str, reason: str
) -> None:
    code, why = await _close_of(f"ws://127.0.0.1:{server.port}{path}")
    assert code == 4400 and reason in why, (code, why)


def test_websocket_endpoint_over_plain_http_is_426(server: InkstreamServer) -> None:
    for path in ("/ws/b1", "/ws", "/ws/"):
        status, body = raw(server, "GET", path)
        assert status == 426, (path, status)
        err = error_of(status, body)
        assert err["error"] == "upgrade_required" and "WebSocket" in err["detail"] and "y-websocket" in err["detail"]


# -- 4. one rendering ----------------------------------------------------------------------------


def _tokens(text: str | bytes) -> Any:
    """JSON with every number kept as its text: {"x": ("float", "1.0")}, so 1 and 1.0 differ."""
    return json.loads(text, parse_int=lambda s: ("int", s), parse_float=lambda s: ("float", s))


def _numbers(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, tuple):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


def _cli(*args: str) -> bytes:
    done = subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_same_state_renders_identically_through_every_road(server: InkstreamServer, client: httpx.Client) -> None:
    """The live board, ?version=, /export, /diff?from=0 and `inkstream replay` (both ways): the same JSON text."""

    def first(shapes: Map, meta: Map) -> None:
        meta["title"] = "Same"
        shapes["a"] = Map(
            {"type": "rect", "x": 1, "y": 2.0, "w": -0.0, "h": 2**40, "z": "a0", "opacity": 1, "createdAt": 1733e9}
        )
        shapes["b"] = Map({"type": "stroke", "x": 0.5, "y": 1e20, "z": "a1", "points": [0, 1.5, 2.0, -0.0, 3, 4]})
        shapes["c"] = Map({"type": "text", "x": 3, "y": 4, "text": "hi", "font": 16, "z": "a2"})
        shapes["junk"] = 5  # entries that are not shapes: never rendered, never counted
        shapes["also-junk"] = Map({"type": "hexagon", "x": 1})

    board = "same"
    assert client.post(f"/api/boards/{board}/updates", content=update(first), headers={"content-type": OCTET})
    state = client.get(f"/api/boards/{board}/state").content
    doc: Doc = Doc()
    doc.apply_update(state)
    before = doc.get_state()
    with doc.transaction():  # a second version: history applies recorded changes to reach it
        doc.get("shapes", type=Map)["a"]["x"] = 3
        doc.get("shapes", type=Map)["b"]["points"] = [7, 8.25]
    second = bytes(doc.get_update(before))
    r = client.post(f"/api/boards/{board}/updates", content=second, headers={"content-type": OCTET})
    assert r.json() == {"version": 2, "changed": True}
    wait_until(lambda: projected(client, board), what="history projected")

    live = _tokens(client.get(f"/api/boards/{board}").content)
    assert [s["id"] for s in live["shapes"]] == ["a", "b", "c"]
    assert all(kind == "float" for kind, _ in _numbers(live["shapes"])), live  # numbers are floats, everywhere
    assert live["shapes"][0]["w"] == ("float", "0.0") and live["shapes"][0]["x"] == ("float", "3.0")
    roads = {
        "?version=2": _tokens(client.get(f"/api/boards/{board}", params={"version": 2}).content),
        "export": _tokens(client.get(f"/api/boards/{board}/export").content),
        "replay --url": _tokens(_cli("replay", board, "--url", server.url)),
        "replay --data-dir": _tokens(_cli("replay", board, "--data-dir", str(server.data_dir))),
    }
    for road, body in roads.items():
        assert body["meta"] == live["meta"] and body["shapes"] == live["shapes"], road
    added = _tokens(client.get(f"/api/boards/{board}/diff", params={"from": 0}).content)["added"]
    assert added == sorted(live["shapes"], key=lambda s: s["id"])
    # and what the boards list counts is what the rendering lists (live board, then projected summary)
    listed = {b["id"]: b["shapes"] for b in client.get("/api/boards").json()}
    assert listed[board] == 3
    server.restart()  # not loaded any more: the list reads the projector's summary, the board is reloaded
    listed = {b["id"]: b["shapes"] for b in client.get("/api/boards").json()}
    assert listed[board] == 3
    assert _tokens(client.get(f"/api/boards/{board}").content) == live


# -- 6. Excalidraw import ------------------------------------------------------------------------

BAD_ELEMENTS = [
    {"type": "text", "x": 0, "y": 0, "text": 5},
    {"type": "rectangle", "x": "a", "y": 0, "width": 1, "height": 1},
    {"type": "rectangle"},
    {"type": "line", "x": 0, "y": 0, "points": "zz"},
    {"type": "line", "x": 0, "y": 0, "points": []},
    {"type": "arrow", "x": 0, "y": 0, "points": [[0, 0], [1, "b"]]},
    {"type": "ellipse", "x": 0, "y": 0, "width": 1},
    {"type": "text", "x": 0, "y": 0, "text": "   "},
    {"type": "rectangle", "x": 0, "y": 0, "width": 1, "height": 1, "strokeColor": 7},
    {"type": "rectangle", "x": 0, "y": 0, "width": 1, "height": 1, "isDeleted": "yes"},
    {"type": ["rectangle"]},
    "not an object",
]


def test_import_counts_every_element(client: httpx.Client) -> None:
    good = {"type": "rectangle", "x": 1, "y": 2, "width": 3, "height": 4}
    scene = {"type": "excalidraw", "elements": [good, *BAD_ELEMENTS, {"type": "frame"}, {**good, "isDeleted": True}]}
    r = client.post("/api/boards/imp-bad/import", json=scene)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 1 and body["deleted"] == 1
    assert body["skipped"] == {"invalid": len(BAD_ELEMENTS), "frame": 1}
    assert len(body["invalid"]) == len(BAD_ELEMENTS)
    assert body["invalid"][0] == "element 1 (text): text must be a string, not 5"
    assert body["invalid"][2] == "element 3 (rectangle): x is missing"
    shapes = client.get("/api/boards/imp-bad").json()["shapes"]
    assert [(s["type"], s["x"], s["y"], s["w"], s["h"]) for s in shapes] == [("rect", 1.0, 2.0, 3.0, 4.0)]


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"NaN", b"Infinity", b"1" + b"0" * 400])
def test_import_refuses_non_finite_numbers(client: httpx.Client, number: bytes) -> None:
    scene = b'{"elements": [{"type": "rectangle", "x": %s, "y": 0, "width": 1, "height": 1}]}' % number
    r = client.post("/api/boards/imp-inf/import", content=scene, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 0 and body["skipped"] == {"invalid": 1}
    assert "x must be a finite number" in body["invalid"][0]


def test_import_bodies_that_are_not_scenes(client: httpx.Client) -> None:
    for body in (b"[" * 100_000, b"{", b'{"elements": 5}', b"null"):
        r = client.post("/api/boards/imp-x/import", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["detail"], r.text


def test_cli_import_reports_the_same(server: InkstreamServer, tmp_path: Path) -> None:
    scene = tmp_path / "bad.excalidraw"
    scene.write_text(json.dumps({"elements": BAD_ELEMENTS[:3]}))
    body = json.loads(_cli("import", "imp-cli", str(scene), "--url", server.url))
    assert body["imported"] == 0 and body["skipped"] == {"invalid": 3} and len(body["invalid"]) == 3


# -- 7. version 0, and what errors quote ---------------------------------------------------------


def test_version_zero_is_the_empty_board_everywhere(client: httpx.Client) -> None:
    board = "zero"
    post = client.post(f"/api/boards/{board}/updates", content=b"\x00\x00", headers={"content-type": OCTET})
    assert post.json() == {"version": 0, "changed": False}  # an empty update to an unknown board: still empty
    assert client.get(f"/api/boards/{board}", params={"version": 0}).status_code == 404  # no board yet
    client.post(f"/api/boards/{board}/updates", content=update(a_rect), headers={"content-type": OCTET})
    empty = {"id": board, "version": 0, "meta": {}, "shapes": []}
    assert client.get(f"/api/boards/{board}", params={"version": 0}).json() == empty
    assert client.get(f"/api/boards/{board}/export", params={"version": 0}).json() == empty
    r = client.get(f"/api/boards/{board}/state", params={"version": 0})
    assert r.status_code == 200 and r.headers["x-inkstream-version"] == "0" and r.content == b"\x00\x00"
    diff = client.get(f"/api/boards/{board}/diff", params={"from": 1, "to": 0}).json()
    assert [s["id"] for s in diff["removed"]] == ["r"] and diff["to"] == 0
    r = client.post(f"/api/boards/{board}/fork", json={"version": 0, "id": "zero-fork"})
    assert r.status_code == 400 and "version 0 is the empty board" in r.json()["detail"]
    r = client.post(f"/api/boards/{board}/restore", json={"version": 0})
    assert r.json() == {"version": 2, "restored": 0, "changed": True}
    assert client.get(f"/api/boards/{board}").json()["shapes"] == []
    assert client.get(f"/api/boards/{board}/export").headers["content-type"] == "application/json"  # default


def test_error_details_quote_at_most_a_little_of_the_input(server: InkstreamServer, client: httpx.Client) -> None:
    client.post("/api/boards/quote/updates", content=update(a_rect), headers={"content-type": OCTET})
    long = "s" * 5000
    requests = [
        ("GET", f"/api/boards/quote/shapes/{long}/history"),
        ("GET", f"/api/boards/quote?version={'9' * 5000}"),
        ("GET", f"/api/boards/quote?at={long}"),
        ("GET", f"/api/boards/quote/export?format={long}"),
        ("GET", f"/api/boards/quote/versions?limit={long}"),
        ("GET", f"/api/boards/quote/diff?from={long}"),
        ("GET", f"/{long}"),
        ("GET", "/api/boards/quote?version=%C2%B2"),  # a Unicode digit
    ]
    for method, path in requests:
        status, body = raw(server, method, path)
        err = error_of(status, body)
        assert len(err["detail"]) <= 250, (path[:80], err["detail"][:300])
    status, body = raw(server, "POST", "/api/boards/quote/restore", json.dumps({"version": long}).encode())
    assert len(error_of(status, body)["detail"]) <= 250


def test_author_names_from_http_lose_control_characters(client: httpx.Client) -> None:
    """X-Inkstream-User (and ?user=) reach provenance cleaned, like WebSocket names
    (engine.events.author_name): history listings print them in terminals."""
    doc = Doc()
    doc["shapes"] = shapes = Map()
    shapes["s1"] = Map({"type": "rect", "x": 1.0})
    r = client.post(
        "/api/boards/http-dirty-author/updates",
        content=doc.get_update(),
        headers={"content-type": OCTET, "x-inkstream-user": "Zoë\t\u202e ok".encode()},  # UTF-8, as clients send
    )
    assert r.status_code == 200, r.text
    shapes["s2"] = Map({"type": "rect", "x": 2.0})
    r = client.post("/api/boards/http-dirty-author/updates?user=%07%0Abell", content=doc.get_update(),
                    headers={"content-type": OCTET})
    assert r.status_code == 200, r.text
    versions = wait_until(
        lambda: (page := client.get("/api/boards/http-dirty-author/versions").json())["versions"][1:] and page,
        what="both versions projected",
    )
    assert [v["user"] for v in versions["versions"]] == ["Zoë ok", "bell"]
