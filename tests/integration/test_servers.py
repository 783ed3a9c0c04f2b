"""Smoke tests: each real server started by infra/dev/up answers its real Python client.

These pin down the exact client usage the distributed adapters rely on (idempotent
acks=all producer, Redis Streams, pymongo's AsyncMongoClient + Beanie, aetcd leases
and watches), and that the fault-injection helpers in tests/servers.py work.
"""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

import pytest

from tests.servers import ensure_servers, kill_server, start_server, stop_server

pytestmark = pytest.mark.integration

TIMEOUT_S = 30


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def test_kafka_idempotent_produce_and_consume() -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bootstrap = ensure_servers("kafka")["INKSTREAM_KAFKA_BOOTSTRAP"]
    topic = _unique("smoke")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        # The first send auto-creates the topic (num.partitions=3); same key -> same partition.
        sent = [await producer.send_and_wait(topic, f"u{i}".encode(), key=b"board-1") for i in range(5)]
    finally:
        await producer.stop()
    assert len({md.partition for md in sent}) == 1
    assert [md.offset for md in sent] == sorted(md.offset for md in sent)

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=_unique("smoke-group"), auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        async with asyncio.timeout(TIMEOUT_S):
            async for record in consumer:
                assert record.key == b"board-1"
                got.append(record.value)
                if len(got) == 5:
                    break
        await consumer.commit()
    finally:
        await consumer.stop()
    assert got == [f"u{i}".encode() for i in range(5)]


async def test_redis_streams_xadd_xread() -> None:
    import redis.asyncio as redis

    client = redis.from_url(ensure_servers("redis")["INKSTREAM_REDIS_URL"])
    stream = _unique("smoke:stream")
    try:
        first = await client.xadd(stream, {"update": b"\x00\x01"})
        await client.xadd(stream, {"update": b"\x00\x02"})
        entries = await client.xread({stream: "0-0"}, count=10)
        assert [fields[b"update"] for _id, fields in entries[0][1]] == [b"\x00\x01", b"\x00\x02"]
        # Resuming after an id returns only what came later (the fan-out reader's contract).
        after = await client.xread({stream: first}, count=10)
        assert [fields[b"update"] for _id, fields in after[0][1]] == [b"\x00\x02"]
    finally:
        await client.delete(stream)
        await client.aclose()


async def test_mongo_crud_and_beanie() -> None:
    from beanie import Document, init_beanie
    from pymongo import AsyncMongoClient

    class SmokeDoc(Document):
        board: str
        version: int

        class Settings:
            name = "smoke_docs"

    client: AsyncMongoClient = AsyncMongoClient(ensure_servers("mongo")["INKSTREAM_MONGO_URL"])
    db = client[_unique("smoke")]
    try:
        await db.raw.insert_one({"_id": "b1", "state": b"\x01\x02"})
        assert await db.raw.find_one({"_id": "b1"}) == {"_id": "b1", "state": b"\x01\x02"}

        await init_beanie(database=db, document_models=[SmokeDoc])
        await SmokeDoc(board="b1", version=3).insert()
        found = await SmokeDoc.find_one(SmokeDoc.board == "b1")
        assert found is not None and found.version == 3
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_etcd_lease_put_get_watch() -> None:
    import aetcd

    url = urlsplit(ensure_servers("etcd")["INKSTREAM_ETCD_URL"])
    prefix = _unique("/smoke").encode() + b"/"
    async with aetcd.Client(host=url.hostname, port=url.port) as client:
        lease = await client.lease(ttl=5)
        await client.put(prefix + b"self", b"gateway-1", lease=lease)
        got = await client.get(prefix + b"self")
        assert got is not None and got.value == b"gateway-1"

        watch = await client.watch_prefix(prefix)
        await client.put(prefix + b"other", b"gateway-2")
        async with asyncio.timeout(TIMEOUT_S):
            async for event in watch:
                assert event.kv.key == prefix + b"other" and event.kv.value == b"gateway-2"
                break
        await watch.cancel()

        await lease.revoke()
        assert await client.get(prefix + b"self") is None  # the lease took its key with it


async def test_redis_survives_stop_and_start() -> None:
    import redis.asyncio as redis

    url = ensure_servers("redis")["INKSTREAM_REDIS_URL"]
    key = _unique("smoke:durable")
    client = redis.from_url(url)
    await client.set(key, b"kept")
    await client.aclose()

    stop_server("redis")  # SIGTERM: Redis fsyncs its append-only file on the way out
    start_server("redis")

    client = redis.from_url(url)
    try:
        assert await client.get(key) == b"kept"
    finally:
        await client.delete(key)
        await client.aclose()


async def test_etcd_survives_kill_9() -> None:
    import aetcd

    url = urlsplit(ensure_servers("etcd")["INKSTREAM_ETCD_URL"])
    key = _unique("/smoke-durable").encode()
    async with aetcd.Client(host=url.hostname, port=url.port) as client:
        await client.put(key, b"kept")  # acknowledged only after the WAL fsync

    kill_server("etcd")
    start_server("etcd")

    async with aetcd.Client(host=url.hostname, port=url.port) as client:
        got = await client.get(key)
        assert got is not None and got.value == b"kept"
        await client.delete(key)
