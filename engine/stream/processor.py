"""`inkstream processor`: a faust-streaming worker folding the event log into the Redis views.

The agent takes batches of records (`take_events`), folds each batch with the ViewFolder, and
only returns to faust once Redis has the result: faust acknowledges a batch's events after the
agent asks for the next batch, and commits only acknowledged offsets, so a crash re-delivers at
most what Redis may already have, and the fold skips it (its offset guard). A Redis outage stalls
the agent (retry with backoff), it never skips a batch. A timer rebuilds the views if Redis lost
them (FLUSHALL, restart without persistence), replaying the topic directly with a plain consumer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from engine.stream.folder import ViewFolder
from engine.stream.records import Record, decode_record
from engine.stream.topic import ensure_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessorConfig:
    """What one processor needs; built from the gateway's Settings by the CLI."""

    kafka_bootstrap: str
    kafka_topic: str
    redis_url: str
    redis_prefix: str
    partitions: int = 3
    group: str | None = None  # consumer group; default inkstream-views.<topic>
    instance_id: str | None = None  # static group membership: a restart rejoins without a rebalance wait
    batch: int = 2000
    within: float = 0.005  # seconds a partial batch waits for more records (the fold latency floor)
    compact_every: int = 500
    keep: int = 2000

    @property
    def group_id(self) -> str:
        """The consumer group of the view processors."""
        return self.group or f"inkstream-views.{self.kafka_topic}"


class KafkaLogSource:
    """Reads ranges of the topic with a plain (group-less) consumer, to rebuild views."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._consumer: AIOKafkaConsumer | None = None

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=5000,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        """Stop the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def partitions(self) -> list[int]:
        """Every partition of the topic."""
        consumer = await self._client()
        metadata = await consumer._client.fetch_all_metadata()  # a group-less consumer knows no topics itself
        return sorted(metadata.partitions_for_topic(self.topic) or ())

    async def end_offsets(self) -> dict[int, int]:
        """Partition -> next offset to be written."""
        consumer = await self._client()
        tps = [TopicPartition(self.topic, p) for p in await self.partitions()]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def read(self, ranges: dict[int, tuple[int, int]]) -> AsyncIterator[list[Record]]:
        """Batches of records with start <= offset < end per partition."""
        if not ranges:
            return
        consumer = await self._client()
        tps = {p: TopicPartition(self.topic, p) for p in ranges}
        consumer.assign(list(tps.values()))
        for p, (start, _end) in ranges.items():
            consumer.seek(tps[p], start)
        remaining = dict(ranges)
        while remaining:
            fetched = await consumer.getmany(*[tps[p] for p in remaining], timeout_ms=1000, max_records=5000)
            batch: list[Record] = []
            for tp, messages in fetched.items():
                end = remaining.get(tp.partition, (0, 0))[1]
                for m in messages:
                    if m.offset < end:
                        record = decode_record(m.partition, m.offset, m.key, m.value, m.headers, m.timestamp)
                        if record is not None:
                            batch.append(record)
                        else:
                            log.error("skipping record %d@%d: it has no board key", m.offset, m.partition)
            for p in list(remaining):
                if await consumer.position(tps[p]) >= remaining[p][1]:
                    del remaining[p]
            if batch:
                yield batch


def _headers(raw: Any) -> Sequence[tuple[str, bytes]]:
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        return list(raw.items())
    return list(raw)


class Processor:
    """The faust app and its view folder, for one worker process."""

    def __init__(self, config: ProcessorConfig) -> None:
        import faust

        self.config = config
        self.app = faust.App(
            config.group_id,
            broker=f"kafka://{config.kafka_bootstrap}",
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=False,
            consumer_auto_offset_reset="earliest",
            consumer_group_instance_id=config.instance_id,
            broker_session_timeout=10.0,
            broker_heartbeat_interval=2.0,
            broker_commit_interval=1.0,
            topic_disable_leader=True,
            topic_allow_declare=False,
            stream_buffer_maxsize=max(16384, config.batch * 4),
            broker_max_poll_records=config.batch,
        )
        self.topic = self.app.topic(config.kafka_topic, key_type=bytes, value_type=bytes)
        self._folder: ViewFolder | None = None
        self._source: KafkaLogSource | None = None
        self._ready_lock = asyncio.Lock()
        self._last_report = (time.monotonic(), 0)
        self.app.agent(self.topic, name="fold-views")(self._agent)
        self.app.timer(1.0, on_leader=False)(self._watch)

    async def folder(self) -> ViewFolder:
        """The folder, created on first use inside faust's event loop."""
        async with self._ready_lock:
            if self._folder is None:
                config = self.config
                await ensure_topic(config.kafka_bootstrap, config.kafka_topic, config.partitions)
                redis = Redis.from_url(config.redis_url)
                self._source = KafkaLogSource(config.kafka_bootstrap, config.kafka_topic)
                self._folder = ViewFolder(
                    redis, config.redis_prefix, self._source, compact_every=config.compact_every, keep=config.keep
                )
            return self._folder

    async def _agent(self, stream: Any) -> None:
        """Fold batch after batch; take_events acks a batch (so faust may commit it) only once Redis has it."""
        folder = await self.folder()
        async for events in stream.take_events(self.config.batch, within=self.config.within):
            await self._fold_retrying(folder, self._records(list(events)))

    @staticmethod
    def _records(events: list[Any]) -> list[Record]:
        decoded = [
            decode_record(
                e.message.partition,
                e.message.offset,
                e.message.key,
                e.message.value,
                _headers(e.message.headers),
                e.message.timestamp * 1000 if e.message.timestamp else None,
            )
            for e in events
        ]
        records = [r for r in decoded if r is not None]
        if len(records) < len(decoded):
            log.error("skipped %d records without a board key", len(decoded) - len(records))
        return records

    async def _fold_retrying(self, folder: ViewFolder, records: list[Record]) -> None:
        delay = 0.1
        while True:
            try:
                await folder.fold(records)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # Never skip a batch: stall (and say so) until Redis/Kafka answer again.
                log.exception("folding %d records failed; retrying in %.1f s", len(records), delay)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)

    async def _watch(self) -> None:
        folder = await self.folder()
        try:
            await folder.ensure_views()
        except Exception:
            log.exception("checking the Redis views failed; will retry")
        now = time.monotonic()
        then, count = self._last_report
        if now - then >= 5:
            stats = folder.stats
            if stats.records != count:
                log.info(
                    "folded %d records in %d batches (%.0f/s), %d skipped as already folded, %d invalid, %d replayed",
                    stats.records,
                    stats.batches,
                    (stats.records - count) / (now - then),
                    stats.skipped,
                    stats.invalid,
                    stats.replayed,
                )
            self._last_report = (now, stats.records)

    def run(self, log_level: str = "info") -> None:
        """Run the worker until SIGINT/SIGTERM (blocks; faust owns the event loop)."""
        from faust import Worker

        worker = Worker(self.app, loglevel=log_level.lower(), quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()
