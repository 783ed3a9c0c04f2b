"""`inkstream processor`: a faust-streaming worker folding the event log into the Redis views.

faust runs the worker: group membership, partition assignment, rebalances and offset commits.
The records are read in batches inside the worker by a faust Fetcher of our own (engine.stream.batches:
`BatchFetcher`, installed as the transport's Fetcher) that takes each `getmany` result of faust's
consumer whole, folds it with the ViewFolder, and acks its messages to faust's consumer only once
Redis has the result; faust commits only acked offsets (every `broker_commit_interval`), so a crash
re-delivers at most what Redis may already have, and the fold skips it (its offset guard). The fetch
of the next batch overlaps the fold of the current one. A Redis outage stalls the fold (retry with backoff), it
never skips a batch. A timer rebuilds the views if Redis lost them (FLUSHALL, restart without
persistence), replaying the topic directly with a plain consumer.

Why not a faust agent (`stream.take_events`): measured on a 2-core machine, faust's per-event
stream path costs ~250-400 us per record (per record: ~3 event-loop iterations, 4 tasks created,
2 `wait_first` calls, ~500 Python calls in cProfile). A no-op `take_events(2000, within=...)`
agent on a pre-loaded topic delivered 2.5-4.3k records/s whatever `within`,
`stream_buffer_maxsize` or `broker_max_poll_records` were, and the fold agent did 1.7k/s (batches
of ~50 records, the process mostly idle between them) -- the target is 20k/s. Reading whole
`getmany` batches in the worker removes that per-record path; the fold (~25 us a record) is then
the cost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from engine.stream.batches import BatchDrain, batch_fetcher
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
    batch: int = 10_000  # records per fetch (broker_max_poll_records): one fold, one Redis pipeline
    fetch_bytes: int = 8 << 20  # bytes per partition per fetch (consumer_max_fetch_size)
    compact_every: int = 500
    keep: int = 2000
    # The broker answers a fetch when 64 KiB are there or after 10 ms. Answering at the first record
    # made ~400-700 batches/s of 1-2 records at 500 updates/s (measured: processor 40-60 % of a core,
    # with every batch also a wake-up for each gateway's stream read); with these, ~110-180 batches/s
    # and 24-30 % of a core, for at most 10 ms more on the way to other gateways.
    fetch_min_bytes: int = 64 << 10
    fetch_wait_ms: int = 10

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


class Processor:
    """The faust app and its view folder, for one worker process."""

    def __init__(self, config: ProcessorConfig) -> None:
        import faust

        self.config = config
        # faust makes a data directory ("<app id>-data/v1") for tables even when, as here, it keeps
        # none: give it a temporary one instead of littering the working directory.
        self._datadir = tempfile.TemporaryDirectory(prefix="inkstream-faust-")
        self.app = faust.App(
            config.group_id,
            datadir=self._datadir.name,
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
            # Whole batches per getmany (measured: 2,000-record fetches of 1 MB per partition folded
            # 7.8-10k/s, 10,000-record fetches of up to 8 MB 13.6-24k/s, same machine and load).
            broker_max_poll_records=config.batch,
            consumer_max_fetch_size=config.fetch_bytes,
        )
        self.topic = self.app.topic(config.kafka_topic, key_type=bytes, value_type=bytes)
        self._folder: ViewFolder | None = None
        self._source: KafkaLogSource | None = None
        self._ready_lock = asyncio.Lock()
        self._last_report = (time.monotonic(), 0)
        self._delays: list[tuple[float, float]] = []  # per batch since the last report: (to fetch, to Redis)
        # No agent: the conductor subscribes the topic (acks enabled, so faust commits what we ack)
        # and our Fetcher reads it in batches (see the module docstring for why).
        self.app.topics.add(self.topic)
        self.app.transport.Fetcher = batch_fetcher(self.drain)  # type: ignore[misc]
        self.app.timer(1.0, on_leader=False)(self._watch)
        self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]

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

    async def drain(self, fetcher: Any) -> None:
        """Fetch, fold and ack batches until the fetcher stops (run by the BatchFetcher inside faust).

        Each `getmany` result is folded as it comes (no gathering in the worker: this is the live path
        to other gateways; the broker holds a fetch for at most `fetch_wait_ms`); the next fetch
        overlaps the fold, folds stay in log order.
        """
        folder = await self.folder()

        async def fold(messages: list[Any]) -> None:
            records = self._records(messages)
            fetched = time.time()
            await self._fold_retrying(folder, records)
            if records:  # how long the batch's oldest record took to reach the processor, and Redis
                accepted = records[0].provenance.time
                self._delays.append((fetched - accepted, time.time() - accepted))

        await BatchDrain(
            self.app, fold, fetch_min_bytes=self.config.fetch_min_bytes, fetch_max_wait_ms=self.config.fetch_wait_ms
        ).run(fetcher)

    @staticmethod
    def _records(messages: list[Any]) -> list[Record]:
        decoded = [
            decode_record(
                m.partition,
                m.offset,
                m.key,
                m.value,
                m.headers,
                int(m.timestamp * 1000) if m.timestamp else None,
            )
            for m in messages
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

    async def _on_shutdown(self, _app: Any, **_kwargs: Any) -> None:
        """After faust stopped fetching and committed: close the rebuild consumer and Redis."""
        source, folder = self._source, self._folder
        self._source = self._folder = None
        if source is not None:
            await source.close()
        if folder is not None:
            await folder.redis.aclose()

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
            if self._delays:
                fetch = sorted(d[0] for d in self._delays)
                written = sorted(d[1] for d in self._delays)
                log.info(
                    "accepted -> fetched p50 %.1f ms p99 %.1f ms; accepted -> in Redis p50 %.1f ms p99 %.1f ms",
                    1000 * fetch[len(fetch) // 2],
                    1000 * fetch[int(0.99 * (len(fetch) - 1))],
                    1000 * written[len(written) // 2],
                    1000 * written[int(0.99 * (len(written) - 1))],
                )
                self._delays = []
            self._last_report = (now, stats.records)

    def run(self, log_level: str = "info") -> None:
        """Run the worker until SIGINT/SIGTERM (blocks; faust owns the event loop)."""
        from faust import Worker

        worker = Worker(self.app, loglevel=log_level.lower(), quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()
