"""One contract for the EventLog port, run against the embedded (SQLite) and the distributed (Kafka) adapter.

The Kafka adapter is the gateway's view of the log: appends go to a real broker and return once
a real `inkstream processor` has folded them into the Redis view (which assigns the version), or,
with `wait_for_version=False` (the live WebSocket path), at the broker's ack.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Map
from redis.asyncio import Redis

from engine.adapters.kafka_log import KafkaEventLog
from engine.adapters.sqlite_log import SqliteEventLog
from engine.events import VERSION_PENDING, Provenance
from tests.conftest import unique
from tests.integration.dist_kit import Cluster

Factory = Callable[[], Awaitable[Any]]


def update(key: str, value: Any) -> bytes:
    """A small, valid, distinct Yjs update."""
    doc: Doc[Any] = Doc()
    doc.get("kv", type=Map)[key] = value
    return bytes(doc.get_update())


def prov(n: int = 0) -> Provenance:
    return Provenance(time=1_700_000_000.0 + n, client_id=f"client-{n}", user=f"user-{n}")


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("contract-kafka"))
    cluster.processor()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.integration)])
async def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """A factory opening (and later closing) a log over the same durable storage each time it is called."""
    opened: list[Any] = []
    if request.param == "sqlite":

        async def factory() -> Any:
            log = SqliteEventLog(tmp_path / "events.db")
            await log.start()
            opened.append(log)
            return log

    else:
        cluster: Cluster = request.getfixturevalue("kafka_cluster")

        async def factory() -> Any:
            log = KafkaEventLog(
                cluster.bootstrap,
                cluster.topic,
                Redis.from_url(cluster.redis_url),
                cluster.prefix,
                partitions=cluster.partitions,
                fold_timeout=60,
            )
            await log.start()
            opened.append(log)
            return log

    yield factory
    for log in opened:
        await log.close()


async def test_versions_are_dense_from_one_per_board(open_log: Factory) -> None:
    log = await open_log()
    a, b = unique("a"), unique("b")
    versions_a = [(await log.append(a, update("k", i), prov(i))).version for i in range(4)]
    versions_b = [(await log.append(b, update("k", i), prov(i))).version for i in range(2)]
    versions_a.append((await log.append(a, update("k", 9), prov(9))).version)
    assert versions_a == [1, 2, 3, 4, 5]
    assert versions_b == [1, 2]


async def test_concurrent_appends_get_distinct_dense_versions_in_log_order(open_log: Factory) -> None:
    log = await open_log()
    boards = [unique("c") for _ in range(3)]
    updates = {(b, i): update(f"k{i}", i) for b in boards for i in range(40)}
    events = await asyncio.gather(*(log.append(b, u, prov(i)) for (b, i), u in updates.items()))
    for board in boards:
        mine = [e for e in events if e.board == board]
        assert sorted(e.version for e in mine) == list(range(1, 41))
        by_version = {e.version: e.update for e in mine}
        read = await log.read(board)
        assert [e.version for e in read] == list(range(1, 41))
        assert [e.update for e in read] == [by_version[v] for v in range(1, 41)]


async def test_read_ranges(open_log: Factory) -> None:
    log = await open_log()
    board = unique("r")
    sent = [update("k", i) for i in range(10)]
    for i, u in enumerate(sent):
        await log.append(board, u, prov(i))
    assert [e.version for e in await log.read(board)] == list(range(1, 11))
    assert [e.version for e in await log.read(board, after=3)] == list(range(4, 11))
    assert [e.version for e in await log.read(board, after=3, upto=6)] == [4, 5, 6]
    assert [e.version for e in await log.read(board, after=2, limit=3)] == [3, 4, 5]
    assert [e.update for e in await log.read(board, after=8)] == sent[8:]
    assert await log.read(board, after=10) == []
    assert await log.read(unique("nobody")) == []


async def test_head_and_heads(open_log: Factory) -> None:
    log = await open_log()
    a, b = unique("h"), unique("h")
    assert await log.head(a) == 0
    for i in range(3):
        await log.append(a, update("k", i), prov(i))
    await log.append(b, update("k", 0), prov(7))
    assert await log.head(a) == 3
    heads = {h.board: h for h in await log.heads()}
    assert heads[a].version == 3 and heads[b].version == 1
    assert heads[b].updated == pytest.approx(prov(7).time)


async def test_provenance_round_trips(open_log: Factory) -> None:
    log = await open_log()
    board = unique("p")
    p = Provenance(time=1_712_345_678.25, client_id="12345", user="Zoë ✏️")
    event = await log.append(board, update("k", 1), p)
    assert event.provenance == p
    (read,) = await log.read(board)
    assert read.provenance == p and read.update == event.update and read.version == 1


async def test_accepted_appends_survive_reopening(open_log: Factory) -> None:
    log = await open_log()
    board = unique("d")
    sent = [update("k", i) for i in range(5)]
    for i, u in enumerate(sent):
        await log.append(board, u, prov(i))
    await log.close()
    reopened = await open_log()
    assert [e.update for e in await reopened.read(board)] == sent
    assert await reopened.head(board) == 5
    event = await reopened.append(board, update("k", 5), prov(5))
    assert event.version == 6


async def test_append_without_waiting_for_the_version_is_accepted_in_order(open_log: Factory) -> None:
    log = await open_log()
    board = unique("w")
    sent = [update("k", i) for i in range(5)]
    quick = await asyncio.gather(*(log.append(board, u, prov(i), wait_for_version=False) for i, u in enumerate(sent)))
    # Known at commit (SQLite) or assigned later by the fold (Kafka): never a wrong version.
    assert [e.version for e in quick] in ([1, 2, 3, 4, 5], [VERSION_PENDING] * 5)
    assert [e.update for e in quick] == sent and quick[2].provenance == prov(2)
    last = await log.append(board, update("k", 5), prov(5))  # waits: everything before it has a version too
    assert last.version == 6
    read = await log.read(board)
    assert [e.version for e in read] == list(range(1, 7))
    assert [e.update for e in read[:5]] == sent


async def test_writable_when_open(open_log: Factory) -> None:
    log = await open_log()
    assert await log.writable()
