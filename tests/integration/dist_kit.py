"""Helpers for distributed-mode tests: real gateway/processor processes on their own topic and Redis prefix."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pycrdt import Doc
from redis.asyncio import Redis

from engine.adapters.redis_view import RedisViews
from engine.fold import load_doc
from engine.stream.records import decode_record
from tests.conftest import eventually, free_port, kill9, stop_process, unique
from tests.servers import ensure_servers

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    """One `python -m gateway ...` child process with its log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int | None = None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> Proc:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", *self.argv], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def kill9(self) -> None:
        kill9(self.proc)

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
        return r.status == 200


@dataclass
class Cluster:
    """Gateways and a processor on one topic/prefix (each test gets its own)."""

    log_dir: Path
    topic: str = field(default_factory=lambda: unique("ink-t"))
    prefix: str = field(default_factory=lambda: unique("ink-p"))
    partitions: int = 2
    procs: list[Proc] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        servers = ensure_servers("kafka", "redis", "mongo", "etcd")
        self.env = {
            **os.environ,
            **servers,
            "INKSTREAM_KAFKA_TOPIC": self.topic,
            "INKSTREAM_REDIS_PREFIX": self.prefix,
            "INKSTREAM_KAFKA_PARTITIONS": str(self.partitions),
            "INKSTREAM_MONGO_DB": self.prefix.replace("-", "_"),
            "INKSTREAM_FOLD_TIMEOUT_SECONDS": "60",
        }

    @property
    def bootstrap(self) -> str:
        return self.env["INKSTREAM_KAFKA_BOOTSTRAP"]

    @property
    def redis_url(self) -> str:
        return self.env["INKSTREAM_REDIS_URL"]

    def processor(self, name: str = "processor") -> Proc:
        proc = Proc(name, ["processor", "--instance-id", f"{self.prefix}-{name}"], self.env, self.log_dir).start()
        self.procs.append(proc)
        return proc

    def gateway(self, name: str, port: int | None = None) -> Proc:
        port = port or free_port()
        proc = Proc(name, ["gateway", "--port", str(port), "--gateway-id", f"{name}-{port}"], self.env, self.log_dir)
        proc.port = port
        proc.start()
        self.procs.append(proc)
        return proc

    async def wait_ready(self, *gateways: Proc, timeout: float = 60) -> None:
        for g in gateways:

            def ok(g: Proc = g) -> bool:
                if not g.alive():
                    raise RuntimeError(f"{g.name} exited:\n{g.tail()}")
                return _ready(g.url)

            await eventually(ok, timeout, f"{g.name} ready")

    def stop(self) -> None:
        for p in self.procs:
            p.stop()

    def redis(self) -> Redis:
        return Redis.from_url(self.redis_url)

    async def log_records(self) -> dict[str, list[bytes]]:
        """Every board's updates as the Kafka topic has them, in partition order."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            metadata = await consumer._client.fetch_all_metadata()
            tps = [TopicPartition(self.topic, p) for p in sorted(metadata.partitions_for_topic(self.topic) or ())]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            boards: dict[str, list[bytes]] = {}
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=1000)
                for messages in batch.values():
                    for m in messages:
                        record = decode_record(m.partition, m.offset, m.key, m.value, m.headers, m.timestamp)
                        if record is not None:
                            boards.setdefault(record.board, []).append(record.update)
            return boards
        finally:
            await consumer.stop()

    async def view_doc(self, board: str) -> tuple[Doc[Any], int]:
        redis = self.redis()
        try:
            view = await RedisViews(redis, self.prefix).load(board)
        finally:
            await redis.aclose()
        return load_doc(view.state, [e.update for e in view.events]), view.version


def same_doc(a: Doc[Any], b: Doc[Any]) -> bool:
    """CRDT equality: the same state vector and the same encoded state (Yjs encodes state deterministically)."""
    return a.get_state() == b.get_state() and a.get_update() == b.get_update()


async def views_equal_log(cluster: Cluster) -> bool:
    """True if every board's Redis view has as many versions as the log has records, and the same state."""
    log = await cluster.log_records()
    for board, updates in log.items():
        doc, version = await cluster.view_doc(board)
        if version != len(updates):
            return False
        if not same_doc(doc, load_doc(None, updates)):
            return False
    return True
