"""Helpers for the MongoDB projector's integration tests and benchmark: a real projector process,
a producer of realistic board updates into real Kafka, the fold of the topic, and convergence checks."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pycrdt import Doc, Map

from engine.events import Provenance
from engine.fold import fold, load_doc
from engine.model import render
from engine.wire import encode_headers, encode_key
from projections.mongo_store import MongoProjectionStore
from tests.conftest import eventually, kill9, stop_process

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ProjectorProcess:
    """`inkstream projector` as a real child process."""

    env: dict[str, str]
    topic: str
    db: str
    group: str
    log_path: Path
    checkpoint_every: int = 10
    board_interval: float = 1.0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "projector",
                "--kafka-topic",
                self.topic,
                "--mongo-db",
                self.db,
                "--group",
                self.group,
                "--checkpoint-every",
                str(self.checkpoint_every),
                "--board-interval",
                str(self.board_interval),
                "--log-level",
                "INFO",
            ],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        kill9(self.proc)

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)


async def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of `topic`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(int(p["partition"]) for p in described["partitions"])


async def committed_offsets(bootstrap: str, group: str) -> dict[int, int]:
    """Partition -> offset the consumer group has committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


@dataclass
class Client:
    """One editor of one board: its own Doc, so updates from clients of a board are concurrent."""

    board: str
    name: str
    doc: Doc[Any] = field(default_factory=Doc)
    pending: list[bytes] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        self.doc.observe(lambda e: self.pending.append(bytes(e.update)))

    def edit(self, rng: random.Random) -> bytes:
        """One realistic edit: add a shape, move one, or retitle the board."""
        shapes = self.doc.get("shapes", type=Map)
        self.count += 1
        roll = rng.random()
        mine = [k for k in shapes.keys() if k.startswith(self.name)]
        if roll < 0.5 or not mine:
            sid = f"{self.name}-{self.count}"
            shapes[sid] = Map(
                {
                    "type": rng.choice(["rect", "ellipse", "sticky"]),
                    "x": rng.random() * 1000,
                    "y": 0.0,
                    "z": f"a{self.count:06d}",
                }
            )
        elif roll < 0.95:
            shape = shapes[rng.choice(mine)]
            shape["x"] = rng.random() * 1000
        else:
            self.doc.get("meta", type=Map)["title"] = f"{self.board} by {self.name} #{self.count}"
        update = self.pending.pop()
        self.pending.clear()
        return update


class Writer:
    """Produces client updates of many boards into the topic, following the wire format."""

    def __init__(self, bootstrap: str, topic: str, boards: int, clients: int, seed: int = 1) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.rng = random.Random(seed)
        self.clients = [Client(f"board-{b}", f"c{c}") for b in range(boards) for c in range(clients)]
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
        self.sent = 0
        self.produced_at: dict[tuple[int, int], float] = {}  # (partition, offset) -> wall time acked

    async def __aenter__(self) -> Writer:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, n: int) -> None:
        """Send `n` updates from random clients and wait until the broker acked them all."""
        futures = []
        for _ in range(n):
            client = self.rng.choice(self.clients)
            update = client.edit(self.rng)
            headers = encode_headers(Provenance(time.time(), client.name, f"user-{client.name}"))
            futures.append(await self.producer.send(self.topic, update, key=encode_key(client.board), headers=headers))
        for meta in await asyncio.gather(*futures):
            self.produced_at[(meta.partition, meta.offset)] = time.time()
        self.sent += n

    async def run(self, rate: float, stop: asyncio.Event, tick: float = 0.02) -> None:
        """Send at `rate` updates/s until `stop` is set (paced by a clock, not by sleeps as waits)."""
        started = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate) - self.sent
            if due > 0:
                await self.send(due)
            await asyncio.sleep(tick)


async def read_topic(bootstrap: str, topic: str) -> dict[str, list[bytes]]:
    """Every board's updates in log order: the whole topic, read from the beginning to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        boards: dict[str, list[bytes]] = {}
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends[tp]:
                        boards.setdefault(r.key.decode(), []).append(r.value)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return boards
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def mismatches(store: MongoProjectionStore, expected: dict[str, list[bytes]]) -> list[str]:
    """How MongoDB differs from the fold of the log (empty when it matches exactly)."""
    problems: list[str] = []
    summaries = await store.summaries()
    for board, updates in expected.items():
        summary = summaries.get(board)
        if summary is None or summary.version != len(updates):
            problems.append(f"{board}: version {summary.version if summary else None} != {len(updates)}")
            continue
        want = render(load_doc(fold(None, updates)), board, len(updates))
        if await store.board_json(board) != want:
            problems.append(f"{board}: content differs from the fold of the log")
        latest = await store.latest(board)
        if latest is None or render(load_doc(latest.state), board, len(updates)) != want:
            problems.append(f"{board}: stored state differs from the fold of the log")
        archived = await store.read(board)
        if [e.version for e in archived] != list(range(1, len(updates) + 1)):
            problems.append(f"{board}: archive versions are not 1..{len(updates)}")
        elif [e.update for e in archived] != updates:
            problems.append(f"{board}: archive bytes differ from the log")
    extra = set(summaries) - set(expected)
    if extra:
        problems.append(f"boards not in the log: {sorted(extra)}")
    return problems


async def converged(store: MongoProjectionStore, bootstrap: str, topic: str, timeout: float) -> dict[str, list[bytes]]:
    """Wait until MongoDB equals the fold of the whole topic; return the topic's boards."""
    expected = await read_topic(bootstrap, topic)
    total = sum(len(u) for u in expected.values())

    async def projected_all() -> bool:
        summaries = await store.summaries()
        return sum(s.version for s in summaries.values()) >= total

    await eventually(projected_all, timeout, f"MongoDB to hold all {total} updates")
    problems = await mismatches(store, expected)
    assert not problems, problems
    return expected
