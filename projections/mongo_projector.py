"""The MongoDB projector: folds the Kafka updates topic into MongoDB (boards, archive, checkpoints).

`inkstream projector` runs it as a faust-streaming worker with its own consumer group. The agent
takes batches of records without auto-acking them (`noack_take`), folds each batch, writes the
result to MongoDB and only then acks the records, so the consumer group's committed offsets never
pass what MongoDB has. A MongoDB outage makes the batch write retry with jittered backoff
(engine.retry) forever: the projector lags, never skips.

Versions: a board's versions are dense from 1 in partition order (see engine.wire); the projector
counts them exactly as the processor does. Redelivery is idempotent because each board document
stores the (partition, offset) of the record that became its version: records at or below it are
skipped, and every write is conditional on version (archive and checkpoints are unique on
(board, version); the board document only moves forward).

The folding (`Projector`) is independent of faust and of MongoDB (`ProjectionSink`), so it is
unit-testable and the faust wiring (`create_app`) stays small.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycrdt import Doc

from engine.errors import InvalidUpdate
from engine.fold import apply_update, load_doc
from engine.model import render, summarize
from engine.retry import Backoff, retry
from engine.wire import Headers, MalformedRecord, decode_key, decode_provenance

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the updates topic, as the projector needs it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp: float  # the record's broker/producer timestamp, seconds


@dataclass(frozen=True, slots=True)
class BoardState:
    """What MongoDB holds for one board: compacted state, version and the record it came from."""

    board: str
    version: int
    state: bytes | None
    partition: int
    offset: int


@dataclass(slots=True)
class Batch:
    """Everything one batch of records turns into: written to MongoDB as a unit, idempotently."""

    archive: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    boards: list[dict[str, Any]] = field(default_factory=list)
    cursors: dict[int, int] = field(default_factory=dict)  # partition -> next offset to read


class ProjectionSink(Protocol):
    """Where projections are written (MongoDB in production)."""

    async def load(self, board: str) -> BoardState | None:
        """The stored state of `board`, None if it has none."""

    async def write(self, batch: Batch) -> None:
        """Store `batch`; idempotent and conditional on version, so retrying it is always safe."""


class _Folded:
    __slots__ = ("board", "doc", "offset", "partition", "updated", "version")

    def __init__(self, board: str, doc: Doc[Any], version: int, partition: int, offset: int) -> None:
        self.board = board
        self.doc = doc
        self.version = version
        self.partition = partition
        self.offset = offset
        self.updated = 0.0


class ProjectorStats(Protocol):
    """Hooks for metrics (see gateway/projector_metrics or tests)."""

    def batch_written(self, records: int, updates: int, seconds: float) -> None:
        """A batch is in MongoDB."""

    def write_failed(self, exc: BaseException, attempt: int) -> None:
        """A MongoDB write failed and will be retried."""

    def record_rejected(self, reason: str) -> None:
        """A record could not be folded (counted, logged, never silently dropped)."""


class _NoStats:
    def batch_written(self, records: int, updates: int, seconds: float) -> None:
        pass

    def write_failed(self, exc: BaseException, attempt: int) -> None:
        pass

    def record_rejected(self, reason: str) -> None:
        pass


class Projector:
    """Folds batches of topic records into board documents, archive rows and checkpoints."""

    def __init__(
        self,
        sink: ProjectionSink,
        checkpoint_every: int = 1000,
        cache_boards: int = 256,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        backoff: Backoff | None = None,
        stats: ProjectorStats | None = None,
    ) -> None:
        self.sink = sink
        self.checkpoint_every = max(1, checkpoint_every)
        self.cache_boards = cache_boards
        self.retry_on = retry_on
        self.backoff = backoff or Backoff(base=0.1, cap=5.0)
        self.stats: ProjectorStats = stats or _NoStats()
        self._boards: OrderedDict[str, _Folded] = OrderedDict()

    def forget(self) -> None:
        """Drop every cached board (after a rebalance another worker may have moved them on)."""
        self._boards.clear()

    async def project(self, records: Sequence[Record]) -> Batch:
        """Fold `records` (in partition order) and write them; returns once MongoDB has all of it."""
        started = time.perf_counter()
        batch = Batch()
        touched: dict[str, _Folded] = {}
        for record in records:
            batch.cursors[record.partition] = max(batch.cursors.get(record.partition, 0), record.offset + 1)
            folded = await self._fold(record, batch)
            if folded is not None:
                touched[folded.board] = folded
        batch.boards = [self._board_document(folded) for folded in touched.values()]
        await retry(
            lambda: self.sink.write(batch),
            retry_on=self.retry_on,
            backoff=self.backoff,
            what=f"writing {len(batch.archive)} updates to MongoDB",
            on_error=self.stats.write_failed,
        )
        self.stats.batch_written(len(records), len(batch.archive), time.perf_counter() - started)
        self._evict()
        return batch

    async def _board(self, board: str) -> _Folded:
        folded = self._boards.get(board)
        if folded is None:
            stored = await retry(
                lambda: self.sink.load(board),
                retry_on=self.retry_on,
                backoff=self.backoff,
                what=f"loading board {board} from MongoDB",
                on_error=self.stats.write_failed,
            )
            if stored is None:
                folded = _Folded(board, load_doc(None), 0, -1, -1)
            else:
                folded = _Folded(board, load_doc(stored.state), stored.version, stored.partition, stored.offset)
            self._boards[board] = folded
        self._boards.move_to_end(board)
        return folded

    async def _fold(self, record: Record, batch: Batch) -> _Folded | None:
        try:
            board = decode_key(record.key)
        except MalformedRecord as exc:
            log.error("skipping record %d@%d: %s", record.offset, record.partition, exc)
            self.stats.record_rejected("malformed_key")
            return None
        folded = await self._board(board)
        if record.partition == folded.partition and record.offset <= folded.offset:
            return None  # already folded: redelivery changes nothing
        if folded.partition not in (-1, record.partition):
            log.warning("board %s moved from partition %d to %d", board, folded.partition, record.partition)
        version = folded.version + 1
        try:
            apply_update(folded.doc, record.value)
        except InvalidUpdate as exc:
            # Still a version (every consumer counts every keyed record), archived as sent, folded as a no-op.
            log.error("board %s version %d does not decode (%s); archived, not folded", board, version, exc)
            self.stats.record_rejected("invalid_update")
        provenance = decode_provenance(record.headers, fallback_time=record.timestamp)
        folded.version = version
        folded.partition = record.partition
        folded.offset = record.offset
        folded.updated = provenance.time
        batch.archive.append(
            {
                "board": board,
                "version": version,
                "time": provenance.time,
                "client": provenance.client_id,
                "user": provenance.user,
                "data": record.value,
                "partition": record.partition,
                "offset": record.offset,
            }
        )
        if version % self.checkpoint_every == 0:
            batch.checkpoints.append({"board": board, "version": version, "state": bytes(folded.doc.get_update())})
        return folded

    def _board_document(self, folded: _Folded) -> dict[str, Any]:
        title, shapes = summarize(folded.doc)
        return {
            "_id": folded.board,
            "version": folded.version,
            "updated": folded.updated,
            "title": title,
            "shapes": shapes,
            "state": bytes(folded.doc.get_update()),
            "content": render(folded.doc, folded.board, folded.version),
            "partition": folded.partition,
            "offset": folded.offset,
        }

    def _evict(self) -> None:
        while len(self._boards) > self.cache_boards:
            self._boards.popitem(last=False)  # MongoDB has it; reloaded on next use


# ---------------------------------------------------------------------------------------------- faust


@dataclass(frozen=True)
class ProjectorConfig:
    """What the projector worker needs (taken from gateway Settings by the CLI)."""

    kafka_bootstrap: str
    topic: str
    mongo_url: str
    mongo_db: str
    group: str = "inkstream-projector"
    checkpoint_every: int = 1000
    batch_max: int = 2000
    batch_seconds: float = 0.05
    topic_partitions: int = 3  # only used if the worker has to declare the topic itself


def create_app(config: ProjectorConfig, stats: ProjectorStats | None = None) -> Any:
    """The faust app (consumer group `config.group`) whose one agent folds the topic into MongoDB."""
    import faust

    from projections.mongo_store import RETRYABLE, MongoProjectionStore

    app = faust.App(
        config.group,
        broker=f"kafka://{config.kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=10.0,  # a crashed worker's partitions move on after 10 s, not faust's 60
        broker_heartbeat_interval=3.0,
        topic_replication_factor=1,
        topic_partitions=config.topic_partitions,
    )
    topic = app.topic(config.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    store = MongoProjectionStore(config.mongo_url, config.mongo_db, group=config.group, topic=config.topic)
    projector = Projector(store, checkpoint_every=config.checkpoint_every, retry_on=RETRYABLE, stats=stats)

    @app.on_partitions_assigned.connect
    def _assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        projector.forget()  # boards of newly assigned partitions may have moved on elsewhere

    @app.agent(topic, concurrency=1)
    async def project(stream: Any) -> None:
        await retry(store.start, retry_on=RETRYABLE, backoff=projector.backoff, what="connecting to MongoDB")
        try:
            # noack_take: events are acked (and so committed) only after MongoDB has them.
            async for events in stream.noack_take(config.batch_max, within=config.batch_seconds):
                records = [_record(event) for event in events]
                await projector.project(records)
                for event in events:
                    await stream.ack(event)
        finally:
            await store.close()

    return app


def _record(event: Any) -> Record:
    message = event.message
    headers = message.headers or []
    if isinstance(headers, dict):
        headers = list(headers.items())
    timestamp = float(message.timestamp or time.time())
    if timestamp > 1e11:  # milliseconds (aiokafka) rather than seconds
        timestamp /= 1000.0
    return Record(
        partition=int(message.partition),
        offset=int(message.offset),
        key=message.key,
        value=bytes(message.value or b""),
        headers=list(headers),
        timestamp=timestamp,
    )


def run_worker(config: ProjectorConfig, log_level: str = "info") -> int:
    """Run the projector worker in this process until SIGINT/SIGTERM; returns the exit code."""
    import faust

    app = create_app(config)
    worker = faust.Worker(app, loglevel=log_level.lower(), redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
