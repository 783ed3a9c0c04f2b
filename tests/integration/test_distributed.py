"""Distributed mode end to end: real Kafka, Redis, MongoDB-wire and etcd; real gateway and processor processes.

Each test runs its own topic and Redis key prefix. Faults: kill -9 of the processor mid-stream,
the Redis views lost, kill -9 of a gateway while clients write (they move to the other one).
After each: no accepted update lost, every replica converges, and the Redis view of every board
equals the fold of the Kafka log.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map

from engine.fold import load_doc
from tests.conftest import eventually, unique
from tests.integration.dist_kit import Cluster, Proc, views_equal_log
from tests.interop.yws_client import YWebsocketClient

pytestmark = pytest.mark.integration

OCTET = {"content-type": "application/octet-stream"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def kv_update(key: str, value: Any) -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("kv", type=Map)[key] = value
    return bytes(doc.get_update())


async def board_kv(gateway: Proc, board: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        r = await http.get(f"/api/boards/{board}/state")
        if r.status_code == 404:
            return {}
        r.raise_for_status()
    return dict(load_doc(r.content).get("kv", type=Map).to_py() or {})


async def start(cluster: Cluster, gateways: int = 2) -> list[Proc]:
    cluster.processor()
    procs = [cluster.gateway(f"g{i + 1}") for i in range(gateways)]
    await cluster.wait_ready(*procs)
    return procs


async def test_local_broadcast_happens_at_the_broker_ack_not_the_fold(cluster: Cluster) -> None:
    """With no processor running, clients of one gateway still see each other's updates live (accepted
    at the broker's ack); the version comes once a processor folds them, and the update coming back
    through the fan-out changes nothing."""
    processor = cluster.processor()
    g1, g2 = cluster.gateway("g1"), cluster.gateway("g2")
    await cluster.wait_ready(g1, g2)
    board = unique("ack")
    async with (
        YWebsocketClient(f"{g1.ws_url}/{board}") as a,
        YWebsocketClient(f"{g1.ws_url}/{board}") as b,
        YWebsocketClient(f"{g2.ws_url}/{board}") as c,
    ):
        for client in (a, b, c):
            await client.wait_synced()
        processor.kill9()
        a.doc.get("kv", type=Map)["while-no-fold"] = 1
        await eventually(lambda: "while-no-fold" in b.doc.get("kv", type=Map), 10, "b sees a's update without a fold")
        assert "while-no-fold" not in c.doc.get("kv", type=Map)  # other gateways hear of it through the fold
        cluster.processor("processor-2")
        await eventually(lambda: "while-no-fold" in c.doc.get("kv", type=Map), 60, "c sees it after the fold")

        async def version() -> int:
            async with httpx.AsyncClient(base_url=g1.url, timeout=10) as http:
                r = await http.get(f"/api/boards/{board}")
                r.raise_for_status()
                return int(r.json()["version"])

        for _ in range(100):
            if await version() == 1:
                break
            await asyncio.sleep(0.1)
        assert await version() == 1  # g1 learned the version from its own update on the fan-out
        b.doc.get("kv", type=Map)["after"] = 2
        await eventually(lambda: "after" in a.doc.get("kv", type=Map), 10, "a sees b's next update")
        assert dict(a.doc.get("kv", type=Map).to_py() or {}) == {"while-no-fold": 1.0, "after": 2.0}
    assert await eventually(lambda: views_equal_log(cluster), 30, "views equal the fold of the log")


async def test_pycrdt_clients_on_two_gateways_see_each_other_live(cluster: Cluster) -> None:
    g1, g2 = await start(cluster)
    board = unique("live")
    async with (
        YWebsocketClient(f"{g1.ws_url}/{board}") as a,
        YWebsocketClient(f"{g2.ws_url}/{board}") as b,
    ):
        await a.wait_synced()
        await b.wait_synced()
        a.doc.get("kv", type=Map)["from-a"] = 1
        b.doc.get("kv", type=Map)["from-b"] = 2

        def both() -> bool:
            return all(set(c.doc.get("kv", type=Map).keys()) == {"from-a", "from-b"} for c in (a, b))

        await eventually(both, 30, "both clients see both updates")
        a.set_awareness({"user": {"name": "a"}})
        await eventually(lambda: a.doc.client_id in b.awareness.states, 30, "awareness across gateways")
    assert await eventually(lambda: views_equal_log(cluster), 30, "views equal the fold of the log")


async def _writer(gateway: Proc, board: str, name: str, count: int, accepted: set[str], pause: float) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=90) as http:
        for i in range(count):
            key = f"{name}-{i}"
            r = await http.post(f"/api/boards/{board}/updates", content=kv_update(key, i), headers=OCTET)
            if r.status_code == 200:
                accepted.add(key)
            await asyncio.sleep(pause)


async def _all_accepted_present(cluster: Cluster, gateways: list[Proc], boards: dict[str, set[str]]) -> bool:
    for board, keys in boards.items():
        doc, _version = await cluster.view_doc(board)
        if not keys <= set(doc.get("kv", type=Map).keys()):
            return False
        for g in gateways:
            if not keys <= set(await board_kv(g, board)):
                return False
    return True


async def test_processor_killed_mid_stream_loses_nothing(cluster: Cluster) -> None:
    g1, g2 = await start(cluster)
    processor = cluster.procs[0]
    boards = {unique("pk"): set() for _ in range(3)}  # type: dict[str, set[str]]
    writers = [
        asyncio.create_task(_writer(g, board, f"{g.name}-{n}", 60, accepted, 0.02))
        for n, (board, accepted) in enumerate(boards.items())
        for g in (g1, g2)
    ]
    await eventually(lambda: sum(map(len, boards.values())) >= 40, 60, "writes flowing")
    processor.kill9()
    await asyncio.sleep(0.5)  # let appends pile up in Kafka while no processor folds them
    cluster.processor("processor-2")
    await asyncio.gather(*writers)
    assert sum(map(len, boards.values())) == 3 * 2 * 60, "every POST must be accepted eventually"
    await eventually(lambda: _all_accepted_present(cluster, [g1, g2], boards), 90, "all accepted updates present")
    assert await eventually(lambda: views_equal_log(cluster), 60, "views equal the fold of the log")


async def test_redis_views_lost_are_rebuilt_from_the_log(cluster: Cluster) -> None:
    g1, g2 = await start(cluster)
    boards = {unique("fl"): set() for _ in range(3)}  # type: dict[str, set[str]]
    await asyncio.gather(*(_writer(g, b, f"{g.name}-a", 20, acc, 0) for b, acc in boards.items() for g in (g1, g2)))
    # Lose every key of this deployment (the shared dev Redis serves other tests, so no FLUSHALL here).
    redis = cluster.redis()
    try:
        keys = [k async for k in redis.scan_iter(match=f"{cluster.prefix}:*")]
        assert keys
        await redis.delete(*keys)
    finally:
        await redis.aclose()
    await asyncio.gather(*(_writer(g, b, f"{g.name}-b", 20, acc, 0) for b, acc in boards.items() for g in (g1, g2)))
    assert all(len(acc) == 80 for acc in boards.values())
    await eventually(lambda: _all_accepted_present(cluster, [g1, g2], boards), 90, "all accepted updates present")
    assert await eventually(lambda: views_equal_log(cluster), 60, "views rebuilt equal the fold of the log")
    for board in boards:
        _doc, version = await cluster.view_doc(board)
        assert version == 80  # versions were rebuilt densely, not restarted


async def test_gateway_killed_while_clients_write_they_move_to_the_other(cluster: Cluster) -> None:
    g1, g2 = await start(cluster)
    board = unique("gk")
    docs: list[Doc[Any]] = [Doc() for _ in range(4)]
    homes = [g1, g1, g2, g2]
    clients = [YWebsocketClient(f"{home.ws_url}/{board}", doc=doc) for home, doc in zip(homes, docs, strict=True)]
    for c in clients:
        await c.start()
        await c.wait_synced()
    written: list[set[str]] = [set() for _ in clients]
    stop = asyncio.Event()

    async def write(n: int) -> None:
        i = 0
        while not stop.is_set():
            key = f"c{n}-{i}"
            docs[n].get("kv", type=Map)[key] = i  # sent by whichever connection the client has
            written[n].add(key)
            i += 1
            await asyncio.sleep(random.uniform(0.005, 0.02))

    tasks = [asyncio.create_task(write(n)) for n in range(4)]
    await eventually(lambda: all(len(w) >= 20 for w in written), 30, "clients writing")
    g1.kill9()
    await eventually(lambda: clients[0].closed.is_set() and clients[1].closed.is_set(), 30, "g1 clients see the crash")
    for n in (0, 1):  # reconnect with the same Doc: sync step 1/2 hands g2 whatever g1 never logged
        await clients[n].stop()
        clients[n] = YWebsocketClient(f"{g2.ws_url}/{board}", doc=docs[n])
        await clients[n].start()
        await clients[n].wait_synced(30)
    await eventually(lambda: all(len(w) >= 60 for w in written), 30, "clients keep writing")
    stop.set()
    await asyncio.gather(*tasks)
    everything = set().union(*written)

    def converged() -> bool:
        return all(set(d.get("kv", type=Map).keys()) == everything for d in docs)

    try:
        await eventually(converged, 60, "every client has every update")

        async def view_has_all() -> bool:
            doc, _v = await cluster.view_doc(board)
            return set(doc.get("kv", type=Map).keys()) == everything and set(await board_kv(g2, board)) == everything

        await eventually(view_has_all, 60, "the view and the surviving gateway have every update")
        assert await eventually(lambda: views_equal_log(cluster), 60, "views equal the fold of the log")
    finally:
        for c in clients:
            await c.stop()


async def test_js_clients_split_across_gateways_converge(cluster: Cluster) -> None:
    """Real yjs + y-websocket clients (Node), two per gateway: maps, arrays, text and awareness converge."""
    from tests.interop.jsclient import JsClient

    g1, g2 = await start(cluster)
    board = unique("js")
    clients = [JsClient(f"js{i}") for i in range(4)]
    try:
        for i, c in enumerate(clients):
            home = g1 if i < 2 else g2
            await asyncio.to_thread(c.connect, home.ws_url, board, awareness={"user": {"name": f"u{i}"}})
        for i, c in enumerate(clients):
            await asyncio.to_thread(c.call, "setShape", id=f"s{i}", fields={"type": "rect", "x": i, "y": 2 * i})
            await asyncio.to_thread(c.call, "listInsert", index=0, items=[f"item{i}"])
            await asyncio.to_thread(c.call, "textInsert", index=0, text=f"<{i}>")
            await asyncio.to_thread(c.call, "kvSet", key=f"k{i}", value=i)
        await asyncio.to_thread(clients[0].call, "setMeta", key="title", value="split")
        await eventually(lambda: asyncio.to_thread(lambda: "s0" in clients[3].snapshot()["shapes"]), 30, "s0 on g2")
        await asyncio.to_thread(clients[3].call, "updateShape", id="s0", fields={"x": 100})

        def snapshots() -> list[dict[str, Any]]:
            return [c.snapshot() for c in clients]

        def converged() -> bool:
            snaps = snapshots()
            first = {k: snaps[0][k] for k in ("shapes", "meta", "kv", "list", "notes")}
            same = all({k: s[k] for k in first} == first for s in snaps)
            return same and len(first["shapes"]) == 4 and len(first["list"]) == 4 and first["shapes"]["s0"]["x"] == 100

        await eventually(lambda: asyncio.to_thread(converged), 45, "JS clients converge across gateways")
        ids = {c.client_id for c in clients}

        def everyone_present() -> bool:
            return all(ids <= set(c.awareness()) for c in clients)

        await eventually(lambda: asyncio.to_thread(everyone_present), 30, "awareness across gateways")
        final = clients[0].snapshot()
        for g in (g1, g2):
            async with httpx.AsyncClient(base_url=g.url, timeout=10) as http:
                body = (await http.get(f"/api/boards/{board}")).json()
            assert body["meta"]["title"] == "split"
            assert {s["id"] for s in body["shapes"]} == set(final["shapes"])
    finally:
        for c in clients:
            c.close()
    assert await eventually(lambda: views_equal_log(cluster), 30, "views equal the fold of the log")
