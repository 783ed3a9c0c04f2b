"""History in distributed mode answers exactly as in embedded mode.

Real Kafka, Redis, MongoDB-wire and etcd; a real distributed gateway, processor and MongoDB
projector, and an embedded `inkstream serve` next to them. The same updates (with the same
authors) go to both; then every history endpoint must give the same JSON (times aside: each
server stamps its own), including restore (seen live by a connected client) and fork.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map

from engine.fold import load_doc
from engine.model import render
from tests.conftest import eventually, free_port, unique
from tests.history.support import OCTET, add_shape, move, replica, shapes
from tests.integration.dist_kit import Cluster, Proc
from tests.interop.yws_client import YWebsocketClient

pytestmark = pytest.mark.integration

EVERY = 5  # checkpoint spacing on both sides, so plain and Yjs checkpoints are used


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def script() -> list[tuple[bytes, str]]:
    """A board's life as (update, author): adds, moves, field deletes, removals, meta, a re-add."""
    doc = replica()
    out: list[tuple[bytes, str]] = []
    authors = ["ann", "bob", "cy"]
    sub = doc.observe(lambda e: out.append((bytes(e.update), authors[len(out) % 3])))
    for i in range(8):
        add_shape(doc, f"s{i}", x=float(i * 10), z=f"a{i}", stroke="#000")
    for step in range(14):
        move(doc, f"s{step % 5}", x=100.0 + step, y=float(step))
    with doc.transaction():
        del shapes(doc)["s6"]
    with doc.transaction():
        del shapes(doc)["s2"]["stroke"]
    with doc.transaction():
        doc.get("meta", type=Map)["title"] = "Distributed history"
    add_shape(doc, "s6", x=5.0, z="a9")  # recreated with the same id
    with doc.transaction():
        shapes(doc)["s1"]["text"] = "hello"
        del shapes(doc)["s7"]
    doc.unobserve(sub)
    return out


#: Fields each server fills in itself: its own clock, and Excalidraw's random per-element seeds.
OWN = {"time", "seed", "versionNonce", "updated"}


def without_time(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_time(v) for k, v in value.items() if k not in OWN}
    if isinstance(value, list):
        return [without_time(v) for v in value]
    return value


async def get(http: httpx.AsyncClient, path: str, **params: Any) -> tuple[int, Any]:
    r = await http.get(path, params=params)
    if r.headers.get("content-type", "").startswith("application/json"):
        return r.status_code, r.json()
    return r.status_code, r.content


async def both(dist: httpx.AsyncClient, emb: httpx.AsyncClient, path: str, **params: Any) -> Any:
    """GET from both servers; assert the same status and (time-free) body; return the distributed body."""
    (sd, bd), (se, be) = await asyncio.gather(get(dist, path, **params), get(emb, path, **params))
    assert sd == se, (path, params, sd, se, bd, be)
    assert without_time(bd) == without_time(be), (path, params)
    return bd


async def projected(http: httpx.AsyncClient, board: str) -> bool:
    r = await http.get(f"/api/boards/{board}/versions", params={"before": 10**9, "limit": 1})
    body = r.json() if r.status_code == 200 else {}
    return bool(body.get("latest")) and body["projected"] == body["latest"]


def rendered_state(content: bytes, board: str, version: int) -> dict[str, Any]:
    return render(load_doc(content), board, version)


async def test_every_history_endpoint_answers_as_embedded(cluster: Cluster, tmp_path: Path) -> None:
    cluster.processor()
    projector = Proc(
        "projector",
        ["projector", "--group", unique("hist"), "--checkpoint-every", str(EVERY), "--board-interval", "0.5"],
        cluster.env,
        cluster.log_dir,
    ).start()
    cluster.procs.append(projector)
    gateway = cluster.gateway("g1")
    embedded = Proc(
        "embedded",
        ["serve", "--port", str(port := free_port()), "--data-dir", str(tmp_path / "embedded")],
        {**os.environ, "INKSTREAM_CHECKPOINT_EVERY": str(EVERY)},
        cluster.log_dir,
    )
    embedded.port = port
    embedded.start()
    cluster.procs.append(embedded)
    await cluster.wait_ready(gateway, embedded)

    board = unique("hist")
    updates = script()
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as dist,
        httpx.AsyncClient(base_url=embedded.url, timeout=30) as emb,
    ):
        for update, user in updates:
            for http in (dist, emb):
                r = await http.post(
                    f"/api/boards/{board}/updates", content=update, headers={**OCTET, "x-inkstream-user": user}
                )
                assert r.status_code == 200, r.text
        n = len(updates)
        assert (await dist.get(f"/api/boards/{board}")).json()["version"] == n
        for http, name in ((dist, "distributed"), (emb, "embedded")):
            await eventually(lambda http=http: projected(http, board), 60, f"{name} history projected")

        # versions: pages both ways, summaries and provenance
        listed = await both(dist, emb, f"/api/boards/{board}/versions", limit=1000)
        assert [v["version"] for v in listed["versions"]] == list(range(1, n + 1))
        assert all(v["summary"] is not None for v in listed["versions"])
        assert [v["user"] for v in listed["versions"]] == [u for _, u in updates]
        await both(dist, emb, f"/api/boards/{board}/versions", after=7, limit=5)
        await both(dist, emb, f"/api/boards/{board}/versions", before=20, limit=6)
        await both(dist, emb, f"/api/boards/{board}/versions", before=n + 50, limit=3)

        # the board at every version, as JSON and as Yjs; ?at= each server's own time of a version
        for v in range(1, n + 1):
            await both(dist, emb, f"/api/boards/{board}", version=v)
            state = await both(dist, emb, f"/api/boards/{board}/state", version=v)
            assert (
                rendered_state(state, board, v) == (await emb.get(f"/api/boards/{board}", params={"version": v})).json()
            )
        for v in (1, 9, n):
            at_d = listed["versions"][v - 1]["time"]
            at_e = (await emb.get(f"/api/boards/{board}/versions", params={"after": v - 1, "limit": 1})).json()
            rd = (await dist.get(f"/api/boards/{board}", params={"at": at_d})).json()
            re_ = (await emb.get(f"/api/boards/{board}", params={"at": at_e["versions"][0]["time"]})).json()
            assert rd["version"] == v and rd == re_
        # errors
        for params in ({"version": 0}, {"version": n + 1}, {"version": "x"}, {"version": 1, "at": "2020-01-01"}):
            await both(dist, emb, f"/api/boards/{board}", **params)
        await both(dist, emb, "/api/boards/no-such-board/versions")

        # diff, shape history, export
        for a, b in ((0, n), (3, 17), (8, 22), (n - 1, n), (5, 5)):
            await both(dist, emb, f"/api/boards/{board}/diff", **{"from": a, "to": b})
        for shape in [f"s{i}" for i in range(8)] + ["nope"]:
            await both(dist, emb, f"/api/boards/{board}/shapes/{shape}/history")
            await both(dist, emb, f"/api/boards/{board}/shapes/{shape}/history", after=3, limit=2)
        for fmt in ("json", "svg", "excalidraw"):
            await both(dist, emb, f"/api/boards/{board}/export", format=fmt)
            await both(dist, emb, f"/api/boards/{board}/export", format=fmt, version=12)

        # restore, seen live by a client of the distributed gateway
        target = (await dist.get(f"/api/boards/{board}", params={"version": 10})).json()
        live: Doc[Any] = Doc()
        async with YWebsocketClient(f"{gateway.ws_url}/{board}", live) as client:
            await client.wait_synced()
            results = []
            for http in (dist, emb):
                r = await http.post(
                    f"/api/boards/{board}/restore", json={"version": 10}, headers={"x-inkstream-user": "rae"}
                )
                assert r.status_code == 200, r.text
                results.append(r.json())
            assert results[0] == results[1] == {"version": n + 1, "restored": 10, "changed": True}

            def shows_target() -> bool:
                seen = render(live, board, 0)
                return seen["shapes"] == target["shapes"] and seen["meta"] == target["meta"]

            await eventually(shows_target, 30, "the connected client sees the restore")
        now = await both(dist, emb, f"/api/boards/{board}")
        assert now["shapes"] == target["shapes"] and now["version"] == n + 1
        for http, name in ((dist, "distributed"), (emb, "embedded")):
            await eventually(lambda http=http: projected(http, board), 60, f"{name} restore projected")
        await both(dist, emb, f"/api/boards/{board}/versions", after=n - 2)
        await both(dist, emb, f"/api/boards/{board}/diff", **{"from": 10, "to": n + 1})
        await both(dist, emb, f"/api/boards/{board}/shapes/s6/history")
        again = [(await http.post(f"/api/boards/{board}/restore", json={"version": 10})).json() for http in (dist, emb)]
        assert again[0] == again[1] == {"version": n + 1, "restored": 10, "changed": False}

        # fork
        fork_id = unique("fork")
        forks = [
            await http.post(f"/api/boards/{board}/fork", json={"version": 12, "id": fork_id}) for http in (dist, emb)
        ]
        assert [f.status_code for f in forks] == [201, 201] and forks[0].json() == forks[1].json()
        await eventually(lambda: dist.get(f"/api/boards/{fork_id}"), 30, "the fork is readable")
        forked = await both(dist, emb, f"/api/boards/{fork_id}")
        at12 = await both(dist, emb, f"/api/boards/{board}", version=12)
        assert forked["shapes"] == at12["shapes"]
        conflict = [await http.post(f"/api/boards/{board}/fork", json={"id": fork_id}) for http in (dist, emb)]
        assert [c.status_code for c in conflict] == [409, 409]
