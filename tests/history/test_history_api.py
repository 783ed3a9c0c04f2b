"""Every history endpoint through a real `inkstream serve`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pycrdt import Doc, Map

from engine.model import render
from tests.conftest import InkstreamServer, wait_until
from tests.history.support import add_shape, move, post, projected, replica, shapes, view, ws_sync


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InkstreamServer]:
    # Dense checkpoints so the tests cross several of them.
    srv = InkstreamServer(data_dir=tmp_path / "data", env={"INKSTREAM_CHECKPOINT_EVERY": "3"})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: InkstreamServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def build(client: httpx.Client, board: str = "b") -> tuple[Doc, list[dict]]:
    """Ten versions: add a, b, c; move a; title; delete b; move c twice; add d; change a's fill."""
    doc = replica()
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(bytes(e.update)))
    add_shape(doc, "a", 0, 0, z="a0")
    add_shape(doc, "b", 10, 10, z="a1")
    add_shape(doc, "c", 20, 20, z="a2")
    move(doc, "a", 5, 5)
    with doc.transaction():
        doc.get("meta", type=Map)["title"] = "Plan"
    with doc.transaction():
        del shapes(doc)["b"]
    move(doc, "c", 30, 30)
    move(doc, "c", 40, 40)
    add_shape(doc, "d", 50, 50, z="a3")
    with doc.transaction():
        shapes(doc)["a"]["fill"] = "#ff0000"
    renders = []
    replay = replica()
    for i, update in enumerate(updates, start=1):
        assert post(client, board, update, user=f"user{i % 2}")["version"] == i
        replay.apply_update(update)
        renders.append(render(replay, board, i))
    wait_until(lambda: projected(client, board), what="history projected")
    return doc, renders


def test_board_and_state_at_every_version(client: httpx.Client) -> None:
    _doc, renders = build(client)
    for v, expected in enumerate(renders, start=1):
        assert client.get("/api/boards/b", params={"version": v}).json() == expected
        r = client.get("/api/boards/b/state", params={"version": v})
        assert r.status_code == 200 and r.headers["x-inkstream-version"] == str(v)
        assert render(replica(r.content), "b", v) == expected
    # the latest without parameters is unchanged behaviour
    assert client.get("/api/boards/b").json()["version"] == 10


def test_at_time_picks_last_version_at_or_before(client: httpx.Client) -> None:
    build(client)
    listing = client.get("/api/boards/b/versions", params={"limit": 100}).json()["versions"]
    t4 = listing[3]["time"]
    assert client.get("/api/boards/b", params={"at": t4}).json()["version"] == 4
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    assert client.get("/api/boards/b", params={"at": future}).json()["version"] == 10
    r = client.get("/api/boards/b", params={"at": "1999-01-01T00:00:00Z"})
    assert r.status_code == 404 and r.json()["error"] == "version_not_found"
    r = client.get("/api/boards/b/state", params={"at": "yesterday"})
    assert r.status_code == 400 and "ISO-8601" in r.json()["detail"]


def test_unknown_and_bad_versions(client: httpx.Client) -> None:
    build(client)
    for path in ("/api/boards/b", "/api/boards/b/state", "/api/boards/b/export"):
        assert client.get(path, params={"version": 11}).status_code == 404
        assert client.get(path, params={"version": -1}).status_code == 400
        assert client.get(path, params={"version": 0}).status_code == 200  # version 0: the empty board
        r = client.get(path, params={"version": "x"})
        assert r.status_code == 400 and r.json()["error"] == "bad_request" and r.json()["detail"]
    assert client.get("/api/boards/nope", params={"version": 1}).status_code == 404
    assert client.get("/api/boards/nope/versions").status_code == 404
    assert client.get("/api/boards/b", params={"version": 1, "at": "2020-01-01"}).status_code == 400


def test_versions_listing_pages_both_ways(client: httpx.Client) -> None:
    build(client)
    first = client.get("/api/boards/b/versions", params={"after": 0, "limit": 4}).json()
    assert [v["version"] for v in first["versions"]] == [1, 2, 3, 4]
    assert first["latest"] == 10 and first["next"] == {"after": 4}
    assert first["versions"][0]["summary"]["added"] == 1 and first["versions"][0]["summary"]["added_ids"] == ["a"]
    assert first["versions"][0]["user"] == "user1"
    assert first["versions"][3]["summary"]["changed_ids"] == ["a"]
    seen = []
    after = 0
    while True:
        page = client.get("/api/boards/b/versions", params={"after": after, "limit": 3}).json()
        seen += [v["version"] for v in page["versions"]]
        if page["next"] is None:
            break
        after = page["next"]["after"]
    assert seen == list(range(1, 11))
    newest = client.get("/api/boards/b/versions", params={"before": 11, "limit": 3}).json()
    assert [v["version"] for v in newest["versions"]] == [10, 9, 8]
    assert newest["next"] == {"before": 8}
    summaries = {v["version"]: v["summary"] for v in client.get("/api/boards/b/versions").json()["versions"]}
    assert summaries[5]["meta"] is True
    assert summaries[6]["removed_ids"] == ["b"]
    assert client.get("/api/boards/b/versions", params={"limit": 0}).status_code == 400
    assert client.get("/api/boards/b/versions", params={"limit": 5000}).status_code == 400


def test_diff(client: httpx.Client) -> None:
    build(client)
    d = client.get("/api/boards/b/diff", params={"from": 3, "to": 10}).json()
    assert [s["id"] for s in d["added"]] == ["d"]
    assert [s["id"] for s in d["removed"]] == ["b"]
    changed = {c["id"]: c["fields"] for c in d["changed"]}
    assert changed["a"] == {
        "fill": {"from": None, "to": "#ff0000"},
        "x": {"from": 0.0, "to": 5.0},
        "y": {"from": 0.0, "to": 5.0},
    }
    assert changed["c"]["x"] == {"from": 20.0, "to": 40.0}
    assert d["meta"] == {"title": {"from": None, "to": "Plan"}}
    assert client.get("/api/boards/b/diff", params={"from": 0}).json()["to"] == 10
    assert client.get("/api/boards/b/diff").status_code == 400
    assert client.get("/api/boards/b/diff", params={"from": 1, "to": 99}).status_code == 404


async def test_restore_appends_one_update_and_clients_see_it_live(server: InkstreamServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        _doc, renders = build(client)
    watcher = replica()
    await ws_sync(server.ws_url, "b", watcher)
    live = asyncio.Event()
    listen = asyncio.create_task(
        ws_sync(server.ws_url, "b", watcher, until=lambda d: "b" in shapes(d) and "d" not in shapes(d), ready=live)
    )
    await asyncio.wait_for(live.wait(), 20)  # connected and synced before the restore
    assert "d" in shapes(watcher)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        r = await client.post("/api/boards/b/restore", json={"version": 3}, headers={"x-inkstream-user": "undoer"})
        assert r.status_code == 200, r.text
        assert r.json() == {"version": 11, "restored": 3, "changed": True}
        now = (await client.get("/api/boards/b")).json()
        assert {"meta": now["meta"], "shapes": now["shapes"]} == {"meta": {}, "shapes": renders[2]["shapes"]}
        # history is never rewritten
        assert (await client.get("/api/boards/b", params={"version": 10})).json() == renders[9]
        # restoring again changes nothing
        again = (await client.post("/api/boards/b/restore", json={"version": 3})).json()
        assert again == {"version": 11, "restored": 3, "changed": False}
        for bad in ({"version": -1}, {"version": "x"}, {}, [1]):
            assert (await client.post("/api/boards/b/restore", json=bad)).status_code == 400
        assert (await client.post("/api/boards/b/restore", json={"version": 99})).status_code == 404
        assert (await client.post("/api/boards/b/restore", content=b"{")).status_code == 400
    await asyncio.wait_for(listen, 20)
    assert view(watcher)["shapes"] == renders[2]["shapes"]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        wait_until(lambda: projected(client, "b"), what="restore projected")
        v11 = client.get("/api/boards/b/versions", params={"after": 10}).json()["versions"][0]
        assert v11["user"] == "undoer"
        assert v11["summary"]["added_ids"] == ["b"] and v11["summary"]["removed_ids"] == ["d"]


def test_fork(client: httpx.Client) -> None:
    _doc, renders = build(client)
    r = client.post("/api/boards/b/fork", json={"version": 6, "id": "b-fork"})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "b-fork", "version": 1, "from": {"id": "b", "version": 6}}
    forked = client.get("/api/boards/b-fork").json()
    assert forked["shapes"] == renders[5]["shapes"] and forked["meta"] == renders[5]["meta"]
    assert client.post("/api/boards/b/fork", json={"version": 6, "id": "b-fork"}).status_code == 409
    assert client.post("/api/boards/b/fork", json={"version": 2, "id": "b"}).status_code == 409
    assert client.post("/api/boards/b/fork", json={"version": 99, "id": "x"}).status_code == 404
    assert client.post("/api/boards/b/fork", json={"version": 1, "id": "bad id!"}).status_code == 400
    assert client.post("/api/boards/b/fork", json={"version": 1}).status_code == 400
    # the fork is a board of its own: editing it leaves the original alone
    doc = replica(client.get("/api/boards/b-fork/state").content)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(bytes(e.update)))
    move(doc, "a", 99, 99)
    post(client, "b-fork", updates[0])
    assert client.get("/api/boards/b").json()["shapes"][0]["x"] == 5.0


def test_shape_history(client: httpx.Client) -> None:
    build(client)
    h = client.get("/api/boards/b/shapes/a/history").json()["history"]
    assert [(e["version"], e["kind"]) for e in h] == [(1, "added"), (4, "changed"), (10, "changed")]
    assert h[1]["fields"] == ["x", "y"] and h[2]["fields"] == ["fill"] and h[0]["user"] == "user1"
    b = client.get("/api/boards/b/shapes/b/history").json()["history"]
    assert [(e["version"], e["kind"]) for e in b] == [(2, "added"), (6, "removed")]
    paged = client.get("/api/boards/b/shapes/a/history", params={"after": 1, "limit": 1}).json()["history"]
    assert [e["version"] for e in paged] == [4]
    assert client.get("/api/boards/b/shapes/zzz/history").status_code == 404
    assert client.get("/api/boards/nope/shapes/a/history").status_code == 404


def test_export_formats(client: httpx.Client) -> None:
    _doc, renders = build(client)
    j = client.get("/api/boards/b/export", params={"format": "json", "version": 4})
    assert j.status_code == 200 and j.json() == renders[3]
    assert "attachment" in j.headers["content-disposition"]
    s = client.get("/api/boards/b/export", params={"format": "svg"})
    assert s.status_code == 200 and s.headers["content-type"].startswith("image/svg+xml")
    assert s.text.count('data-shape-id="') == 3 and "<title>Plan</title>" in s.text
    e = client.get("/api/boards/b/export", params={"format": "excalidraw", "version": 3}).json()
    assert e["type"] == "excalidraw" and [el["type"] for el in e["elements"]] == ["rectangle"] * 3
    assert client.get("/api/boards/b/export", params={"format": "png"}).status_code == 400


def test_import_excalidraw_and_round_trip(client: httpx.Client) -> None:
    scene = {
        "type": "excalidraw",
        "version": 2,
        "elements": [
            {"type": "rectangle", "x": 1, "y": 2, "width": 30, "height": 40, "strokeColor": "#123456"},
            {"type": "ellipse", "x": 5, "y": 5, "width": 10, "height": 10},
            {"type": "diamond", "x": 0, "y": 0, "width": 20, "height": 10},
            {"type": "line", "x": 0, "y": 0, "points": [[0, 0], [10, 10]]},
            {"type": "arrow", "x": 0, "y": 0, "points": [[0, 0], [5, 0]], "endArrowhead": "arrow"},
            {"type": "freedraw", "x": 0, "y": 0, "points": [[0, 0], [1, 1], [2, 0]]},
            {"type": "text", "x": 0, "y": 0, "text": "hi", "fontSize": 16},
            {"type": "image", "x": 0, "y": 0},
            {"type": "frame", "x": 0, "y": 0},
            {"type": "rectangle", "x": 0, "y": 0, "isDeleted": True},
        ],
    }
    r = client.post("/api/boards/imp/import", json=scene, headers={"x-inkstream-user": "ann"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 1 and body["imported"] == 7 and body["deleted"] == 1
    assert body["skipped"] == {"image": 1, "frame": 1}
    board = client.get("/api/boards/imp").json()
    kinds = [s["type"] for s in board["shapes"]]
    assert kinds == ["rect", "ellipse", "line", "line", "arrow", "stroke", "text"]  # scene order = stacking order
    assert board["shapes"][0]["stroke"] == "#123456" and board["shapes"][0]["createdBy"] == "ann"
    # export -> import into another board gives the same shapes (ids and z aside)
    exported = client.get("/api/boards/imp/export", params={"format": "excalidraw"}).json()
    again = client.post("/api/boards/imp2/import", json=exported).json()
    assert again["imported"] == 7 and again["skipped"] == {}

    def strip(shapes: list[dict]) -> list[dict]:
        return [{k: v for k, v in s.items() if k not in ("id", "z", "createdAt", "createdBy")} for s in shapes]

    assert strip(client.get("/api/boards/imp2").json()["shapes"]) == strip(board["shapes"])
    # a second import stacks above what is there
    client.post("/api/boards/imp/import", json={"type": "excalidraw", "elements": [scene["elements"][0]]})
    top = client.get("/api/boards/imp").json()["shapes"][-1]
    assert top["z"] > board["shapes"][-1]["z"]
    assert client.post("/api/boards/imp/import", json={"nope": 1}).status_code == 400
    assert client.post("/api/boards/imp/import", content=b"not json").status_code == 400
    assert client.post("/api/boards/bad id/import", json=scene).status_code in (400, 404)
    assert json.loads(client.get("/api/boards/imp/versions").text)["latest"] == 2
