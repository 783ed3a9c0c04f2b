"""One contract for reading boards over HTTP, run against an embedded and a distributed deployment.

- `GET /api/boards/{id}/thumbnail`: the first 3,000 shapes of the board's rendering as the
  projector last stored them (it follows the projector), never loading the board into the gateway;
  404 for a board without one, 400 for a bad id; ETag by version.
- `GET /api/boards/{id}`: rendered once per change of the live board, then served from the cache
  (counted by `inkstream_board_renders_total`), including after updates another gateway accepted.

Embedded: a real `inkstream serve` (projector in its child process). Distributed: real Kafka,
Redis, MongoDB-wire and etcd servers, a real processor, MongoDB projector and two gateways.
"""

from __future__ import annotations

import json
import random
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pycrdt import Array, Doc, Map

from tests.conftest import InkstreamServer, eventually, unique, wait_until
from tests.integration.dist_kit import Cluster, Proc

OCTET = {"content-type": "application/octet-stream"}
IDLE_UNLOAD = "2"  # seconds: lets a test see that a thumbnail read does not load the board


@dataclass
class Deployment:
    """Where to send requests: `url` (a gateway) and `other` (another gateway, or the same one)."""

    url: str
    other: str


@pytest.fixture(scope="module", params=["embedded", pytest.param("distributed", marks=pytest.mark.integration)])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if request.param == "embedded":
        server = InkstreamServer(
            data_dir=tmp_path_factory.mktemp("reads-embedded") / "data",
            env={"INKSTREAM_IDLE_UNLOAD_SECONDS": IDLE_UNLOAD},
        )
        server.start()
        try:
            yield Deployment(server.url, server.url)
        finally:
            server.stop()
        return
    cluster = Cluster(tmp_path_factory.mktemp("reads-distributed"))
    cluster.env["INKSTREAM_IDLE_UNLOAD_SECONDS"] = IDLE_UNLOAD
    try:
        cluster.processor()
        argv = ["projector", "--group", unique("thumbs"), "--board-interval", "0.5"]
        projector = Proc("projector", argv, cluster.env, cluster.log_dir).start()
        cluster.procs.append(projector)
        g1, g2 = cluster.gateway("g1"), cluster.gateway("g2")
        for g in (g1, g2):
            wait_until(lambda g=g: ready(g), timeout=90, what=f"{g.name} ready")
        yield Deployment(g1.url, g2.url)
    finally:
        cluster.stop()


def ready(gateway: Proc) -> bool:
    if not gateway.alive():
        raise RuntimeError(f"{gateway.name} exited:\n{gateway.tail()}")
    with urllib.request.urlopen(gateway.url + "/readyz", timeout=2) as r:
        return bool(r.status == 200)


def board_update(rng: random.Random, shapes: int) -> tuple[Doc, bytes]:
    """A Doc with `shapes` shapes (ties in z, z missing or of the wrong type, strokes) plus entries that are no
    shapes, and its state as one update."""
    doc: Doc = Doc()
    root = doc.get("shapes", type=Map)
    with doc.transaction():
        doc.get("meta", type=Map)["title"] = "thumbs"
        for i in range(shapes):
            kind = rng.choice(["rect", "stroke", "ellipse", "text", "sticky"])
            fields: dict[str, Any] = {"type": kind, "x": float(rng.randint(-900, 900)), "y": rng.uniform(-9, 9), "w": 5}
            roll = rng.random()
            if roll < 0.85:
                fields["z"] = f"a{rng.randint(0, 400):04}"
            elif roll < 0.9:
                fields["z"] = 3
            if kind == "stroke":
                fields["points"] = Array([0.0, 1.0, 2.5, -3.0])
            if kind == "text":
                fields["text"] = "é ✏️"
            root[f"s{rng.randint(0, 10**6):07}-{i}"] = Map(fields)
        root["junk"] = 1.5
        root["not-a-shape"] = Map({"type": "widget", "z": "!"})
    return doc, bytes(doc.get_update())


def change(doc: Doc, edit: Any) -> bytes:
    """Run `edit(shapes)` in one transaction of `doc`; the update it made."""
    made: list[bytes] = []
    sub = doc.observe(lambda e: made.append(bytes(e.update)))
    with doc.transaction():
        edit(doc.get("shapes", type=Map))
    doc.unobserve(sub)
    return made[-1]


async def post(http: httpx.AsyncClient, board: str, update: bytes) -> int:
    r = await http.post(f"/api/boards/{board}/updates", content=update, headers=OCTET)
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


async def metric(http: httpx.AsyncClient, name: str) -> float:
    text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def caught_up_thumbnail(http: httpx.AsyncClient, board: str, version: int) -> httpx.Response:
    async def ready() -> httpx.Response | None:
        r = await http.get(f"/api/boards/{board}/thumbnail")
        return r if r.status_code == 200 and r.json()["version"] == version else None

    found: httpx.Response = await eventually(ready, timeout=60, what=f"thumbnail of {board} at version {version}")
    return found


async def test_thumbnail_is_the_first_3000_shapes_of_the_rendering(deployment: Deployment) -> None:
    board = unique("thumb")
    doc, state = board_update(random.Random(11), 3100)
    async with httpx.AsyncClient(base_url=deployment.url, timeout=60) as http:
        version = await post(http, board, state)
        thumb = await caught_up_thumbnail(http, board, version)
        rendered = (await http.get(f"/api/boards/{board}")).json()
        assert rendered["version"] == version and len(rendered["shapes"]) == 3100
        assert thumb.json() == {"id": board, "version": version, "shapes": rendered["shapes"][:3000], "truncated": True}
        assert thumb.headers["content-type"] == "application/json"
        assert thumb.headers["etag"] == f'W/"{version}"' and thumb.headers["cache-control"] == "no-cache"
        again = await http.get(f"/api/boards/{board}/thumbnail", headers={"if-none-match": thumb.headers["etag"]})
        assert again.status_code == 304 and again.content == b""

        # Edits move shapes across the cut: one to the very front, one removed, one re-typed out of the list.
        first_id, late_id = rendered["shapes"][0]["id"], rendered["shapes"][3050]["id"]

        def to_front(shapes: Map) -> None:
            shapes[late_id]["z"] = ""

        def remove_first(shapes: Map) -> None:
            del shapes[first_id]

        await post(http, board, change(doc, to_front))
        version = await post(http, board, change(doc, remove_first))
        thumb = await caught_up_thumbnail(http, board, version)
        rendered = (await http.get(f"/api/boards/{board}")).json()
        assert rendered["version"] == version and len(rendered["shapes"]) == 3099
        assert thumb.json() == {"id": board, "version": version, "shapes": rendered["shapes"][:3000], "truncated": True}


async def test_small_board_thumbnail_lists_every_shape(deployment: Deployment) -> None:
    board = unique("small")
    _doc, state = board_update(random.Random(12), 25)
    async with httpx.AsyncClient(base_url=deployment.other, timeout=60) as http:
        version = await post(http, board, state)
        thumb = (await caught_up_thumbnail(http, board, version)).json()
        rendered = (await http.get(f"/api/boards/{board}")).json()
        assert thumb == {"id": board, "version": version, "shapes": rendered["shapes"], "truncated": False}
        head = await http.head(f"/api/boards/{board}/thumbnail")
        assert head.status_code == 200 and head.content == b""


async def test_thumbnail_does_not_load_the_board(deployment: Deployment) -> None:
    board = unique("cold")
    _doc, state = board_update(random.Random(13), 40)
    async with httpx.AsyncClient(base_url=deployment.url, timeout=60) as http:
        version = await post(http, board, state)
        await caught_up_thumbnail(http, board, version)
        await eventually(lambda: _unloaded(http), timeout=30, what="every board unloaded (idle)")
        for _ in range(3):
            r = await http.get(f"/api/boards/{board}/thumbnail")
            assert r.status_code == 200 and r.json()["version"] == version
        assert await metric(http, "inkstream_boards_loaded") == 0


async def _unloaded(http: httpx.AsyncClient) -> bool:
    return await metric(http, "inkstream_boards_loaded") == 0


async def test_thumbnail_errors_are_the_apis(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.url, timeout=60) as http:
        missing = await http.get(f"/api/boards/{unique('nobody')}/thumbnail")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        assert "detail" in missing.json()
        for bad in ("a%2Fb", "x" * 129, "sp%20ace", "%2E%2E"):
            r = await http.get(f"/api/boards/{bad}/thumbnail")
            assert r.status_code == 400 and r.json()["error"] == "invalid_board_id", (bad, r.text)
        assert (await http.post(f"/api/boards/{unique('b')}/thumbnail")).status_code == 405


async def test_board_json_is_rendered_once_per_change(deployment: Deployment) -> None:
    board = unique("cache")
    doc, state = board_update(random.Random(14), 300)
    async with (
        httpx.AsyncClient(base_url=deployment.url, timeout=60) as http,
        httpx.AsyncClient(base_url=deployment.other, timeout=60) as other,
    ):
        version = await post(http, board, state)
        before = await metric(http, "inkstream_board_renders_total")
        first = await http.get(f"/api/boards/{board}")
        second = await http.get(f"/api/boards/{board}")
        assert first.status_code == second.status_code == 200 and first.headers["content-type"] == "application/json"
        assert second.content == first.content
        assert json.loads(first.content)["version"] == version
        assert await metric(http, "inkstream_board_renders_total") == before + 1  # the second came from the cache

        # An update through the other gateway (in distributed mode it reaches this one through the
        # fan-out): the next read renders anew, once.
        def add(shapes: Map) -> None:
            shapes["new"] = Map({"type": "rect"})

        new_version = await post(other, board, change(doc, add))

        async def shows_it() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get(f"/api/boards/{board}")).json()
            return body if body["version"] == new_version else None

        body = await eventually(shows_it, timeout=60, what="the update read back")
        assert {"id": "new", "type": "rect"} in body["shapes"]
        assert await metric(http, "inkstream_board_renders_total") == before + 2
        assert (await http.get(f"/api/boards/{board}")).json() == body
        assert await metric(http, "inkstream_board_renders_total") == before + 2
