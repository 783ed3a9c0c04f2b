"""The MongoDB projector: folds the Kafka updates topic into MongoDB (boards, archive, checkpoints).

`inkstream projector` runs it as a faust-streaming worker with its own consumer group. It reads
the topic in batches (engine.stream.batches, as the view processor does), folds each batch, writes
the result to MongoDB and only then acks the records, so the consumer group's committed offsets
never pass what MongoDB has. A MongoDB outage makes the batch write retry with jittered backoff
(engine.retry) forever: the projector lags, never skips.

Versions: a board's versions are dense from 1 in partition order (see engine.wire); the projector
counts them exactly as the processor does. Redelivery is idempotent because each board document
stores the (partition, offset) of the record that became its version: records at or below it are
skipped, and every write is conditional on version (archive and checkpoints are unique on
(board, version); the board document only moves forward).

History (projections.history): the fold runs under a `ChangeRecorder` (the same code as the local
projector), so each archived update also carries what it changed (`changes`, compact JSON) and its
counts; a shape index groups, per batch, the versions that touched each shape (one document per
(board, shape, batch), not one per version: a dragged shape is many versions in one batch); a plain
JSON checkpoint is written every K versions next to the Yjs one. History is complete up to the
board document's version (`projected`): that document is written after the batch's archive and
index, so no extra write per batch says how far history goes.

Thumbnails (projections.thumbnails, GET /api/boards/{id}/thumbnail): each board document comes with
its thumbnail, taken from the document's JSON rendering, in a collection of its own (a document
holds 16 MiB: the board document already has the state and the full rendering), so thumbnails
follow the board documents' interval.

The folding (`Projector`) is independent of faust and of MongoDB (`ProjectionSink`), so it is
unit-testable and the faust wiring (`create_app`) stays small.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycrdt import Doc

from engine.errors import InvalidUpdate
from engine.fold import load_doc
from engine.model import render
from engine.retry import Backoff, retry
from engine.wire import Headers, MalformedRecord, decode_key, decode_provenance
from projections.changes import ChangeRecorder, Changes, PlainBoard, apply_changes, plain_board, plain_summary
from projections.thumbnails import from_rendering

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
    plain_checkpoints: list[dict[str, Any]] = field(default_factory=list)
    shape_index: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (board, shape) -> document
    boards: list[dict[str, Any]] = field(default_factory=list)
    thumbnails: list[dict[str, Any]] = field(default_factory=list)  # one per board document
    cursors: dict[int, int] = field(default_factory=dict)  # partition -> next offset to read


@dataclass(frozen=True, slots=True)
class ArchivedUpdate:
    """One archived update, as needed to refold a board's tail after its board document."""

    version: int
    data: bytes
    time: float
    partition: int
    offset: int


class ProjectionSink(Protocol):
    """Where projections are written (MongoDB in production)."""

    async def load(self, board: str) -> BoardState | None:
        """The stored board document of `board`, None if it has none."""

    async def archived(self, board: str, after: int) -> list[ArchivedUpdate]:
        """Archived updates of `board` with version > after, in version order."""

    async def write(self, batch: Batch) -> None:
        """Store `batch`; idempotent and conditional on version, so retrying it is always safe."""


class _Folded:
    __slots__ = (
        "board",
        "doc",
        "offset",
        "partition",
        "plain",
        "recorder",
        "updated",
        "version",
        "written",
        "written_at",
    )

    def __init__(self, board: str, doc: Doc[Any], version: int, partition: int, offset: int) -> None:
        self.board = board
        self.doc = doc
        self.recorder = ChangeRecorder(doc)
        self.plain: PlainBoard = plain_board(doc)  # kept current from the recorded changes
        self.version = version
        self.partition = partition
        self.offset = offset
        self.updated = 0.0
        self.written = version  # the version the board document in MongoDB has
        self.written_at = 0.0  # monotonic time the board document was last written


class ProjectorStats(Protocol):
    """Hooks for metrics."""

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
    """Folds batches of topic records into the archive, checkpoints and board documents.

    The archive is written with every batch (it is what makes acking the batch safe). A board's
    document (full state + JSON, often 100 KB+) is rewritten at most every `board_interval` seconds
    and by `flush` when the board goes quiet, so a busy board costs one document write per interval,
    not one per batch. The document is therefore at most `board_interval` behind the archive, and
    loading a board folds the archived updates after its document's version (`ProjectionSink.archived`).
    """

    def __init__(
        self,
        sink: ProjectionSink,
        checkpoint_every: int = 1000,
        cache_boards: int = 256,
        board_interval: float = 1.0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        backoff: Backoff | None = None,
        stats: ProjectorStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.checkpoint_every = max(1, checkpoint_every)
        self.cache_boards = cache_boards
        self.board_interval = board_interval
        self.retry_on = retry_on
        self.backoff = backoff or Backoff(base=0.1, cap=5.0)
        self.stats: ProjectorStats = stats or _NoStats()
        self.clock = clock
        self._boards: OrderedDict[str, _Folded] = OrderedDict()
        self._lock = asyncio.Lock()  # the agent's batches and the periodic flush take turns

    def forget(self) -> None:
        """Drop cached boards whose documents are written (after a rebalance others may have moved them on)."""
        for board in [b for b, f in self._boards.items() if f.version == f.written]:
            self._boards.pop(board).recorder.close()

    async def project(self, records: Sequence[Record]) -> Batch:
        """Fold `records` (in partition order) and write them; returns once MongoDB has all of it."""
        async with self._lock:
            started = time.perf_counter()
            batch = Batch()
            touched: dict[str, _Folded] = {}
            for record in records:
                batch.cursors[record.partition] = max(batch.cursors.get(record.partition, 0), record.offset + 1)
                folded = await self._fold(record, batch)
                if folded is not None:
                    touched[folded.board] = folded
            now = self.clock()
            due = [f for f in touched.values() if now - f.written_at >= self.board_interval]
            batch.boards = [self._board_document(f) for f in due]
            batch.thumbnails = [thumbnail_document(doc) for doc in batch.boards]
            await self._write(batch, f"writing {len(batch.archive)} updates to MongoDB")
            self._written(due, batch)
            self.stats.batch_written(len(records), len(batch.archive), time.perf_counter() - started)
            self._evict()
            return batch

    async def flush(self, force: bool = False) -> int:
        """Write the documents of boards changed since their last write (if due, or all if `force`)."""
        async with self._lock:
            now = self.clock()
            due = [
                f
                for f in self._boards.values()
                if f.version > f.written and (force or now - f.written_at >= self.board_interval)
            ]
            if due:
                boards = [self._board_document(f) for f in due]
                batch = Batch(boards=boards, thumbnails=[thumbnail_document(doc) for doc in boards])
                await self._write(batch, f"writing {len(due)} board documents to MongoDB")
                self._written(due, batch)
            self._evict()
            return len(due)

    async def _write(self, batch: Batch, what: str) -> None:
        await retry(
            lambda: self.sink.write(batch),
            retry_on=self.retry_on,
            backoff=self.backoff,
            what=what,
            on_error=self.stats.write_failed,
        )

    def _written(self, folded: list[_Folded], batch: Batch) -> None:
        now = self.clock()
        versions = {doc["_id"]: doc["version"] for doc in batch.boards}
        for f in folded:
            f.written = max(f.written, versions[f.board])
            f.written_at = now

    async def _load(self, board: str) -> _Folded:
        stored = await self.sink.load(board)
        if stored is None:
            folded = _Folded(board, load_doc(None), 0, -1, -1)
        else:
            folded = _Folded(board, load_doc(stored.state), stored.version, stored.partition, stored.offset)
        written = folded.version
        for row in await self.sink.archived(board, after=folded.version):
            if row.version != folded.version + 1:
                break  # a hole (a batch cut short): redelivery from Kafka fills it with the same versions
            self._apply(folded, row.data, row.version)  # its history is stored with it (written first)
            folded.version, folded.partition, folded.offset, folded.updated = (
                row.version,
                row.partition,
                row.offset,
                row.time,
            )
        folded.written = written
        return folded

    async def _board(self, board: str) -> _Folded:
        folded = self._boards.get(board)
        if folded is None:
            folded = await retry(
                lambda: self._load(board),
                retry_on=self.retry_on,
                backoff=self.backoff,
                what=f"loading board {board} from MongoDB",
                on_error=self.stats.write_failed,
            )
            self._boards[board] = folded
        self._boards.move_to_end(board)
        return folded

    def _apply(self, folded: _Folded, update: bytes, version: int) -> Changes:
        try:
            changes = folded.recorder.record(update)
        except InvalidUpdate as exc:
            # Still a version (every consumer counts every keyed record), archived as sent, folded as a no-op.
            log.error("board %s version %d does not decode (%s); archived, not folded", folded.board, version, exc)
            self.stats.record_rejected("invalid_update")
            return Changes()
        if not changes.empty:
            apply_changes(folded.plain, changes)
        return changes

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
        changes = self._apply(folded, record.value, version)
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
                **history_fields(changes),
            }
        )
        for shape, kind in changes.kinds.items():
            entry = batch.shape_index.get((board, shape))
            if entry is None:
                entry = {"board": board, "shape": shape, "first": version, "touches": []}
                batch.shape_index[(board, shape)] = entry
            entry["last"] = version
            entry["touches"].append(
                [version, provenance.time, provenance.client_id, provenance.user, kind, changes.fields(shape)]
            )
        if version % self.checkpoint_every == 0:
            batch.checkpoints.append({"board": board, "version": version, "state": bytes(folded.doc.get_update())})
            plain = json.dumps(folded.plain, separators=(",", ":"))
            batch.plain_checkpoints.append({"board": board, "version": version, "plain": plain})
        return folded

    def _board_document(self, folded: _Folded) -> dict[str, Any]:
        title, shapes = plain_summary(folded.plain)  # the rendering's rule, from the plain board history keeps
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
            board = next((b for b, f in self._boards.items() if f.version == f.written), None)
            if board is None:
                return  # every cached board has unwritten changes: keep them until the next flush
            self._boards.pop(board).recorder.close()  # MongoDB has it; reloaded on next use


def thumbnail_document(board_document: dict[str, Any]) -> dict[str, Any]:
    """The `thumbnails` document of a board document: its thumbnail JSON (projections.thumbnails) and version."""
    thumbnail = from_rendering(board_document["content"])
    return {"_id": thumbnail.board, "version": thumbnail.version, "body": thumbnail.body}


def history_fields(changes: Changes) -> dict[str, Any]:
    """What an archived update carries for history: counts of shapes added / changed / removed, and its changes."""
    kinds = list(changes.kinds.values())
    return {
        "added": kinds.count("added"),
        "changed": kinds.count("changed"),
        "removed": kinds.count("removed"),
        "meta": changes.meta is not None,
        "changes": changes.encode(),
    }


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
    batch_max: int = 10_000  # records per batch at most
    batch_seconds: float = 0.5  # gather records this long per batch (fewer, larger MongoDB writes)
    board_interval: float = 5.0  # seconds between rewrites of one busy board's document
    instance_id: str | None = None  # static group membership: a restart rejoins without a rebalance wait
    topic_partitions: int = 3  # only used if the worker has to declare the topic itself


def create_app(config: ProjectorConfig, stats: ProjectorStats | None = None) -> Any:
    """The faust app (consumer group `config.group`) folding the topic into MongoDB in batches.

    No agent: like the view processor, the app's Fetcher reads whole batches (engine.stream.batches)
    -- faust's per-record stream path cost more CPU than the projection itself. A batch gathers
    records for up to `batch_seconds` (the projector may lag; fewer, larger bulk writes are cheaper
    for MongoDB), is folded and written, and only then are its records acked (and so committed).
    """
    import faust

    from engine.stream.batches import BatchDrain, batch_fetcher
    from projections.mongo_store import RETRYABLE, MongoProjectionStore

    datadir = tempfile.TemporaryDirectory(prefix="inkstream-faust-")  # faust's table dir; we keep no tables
    app = faust.App(
        config.group,
        datadir=datadir.name,
        broker=f"kafka://{config.kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=10.0,  # a crashed worker's partitions move on after 10 s, not faust's 60
        broker_heartbeat_interval=3.0,
        broker_max_poll_records=config.batch_max,
        topic_replication_factor=1,
        topic_partitions=config.topic_partitions,
        consumer_group_instance_id=config.instance_id,
    )
    topic = app.topic(config.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    store = MongoProjectionStore(config.mongo_url, config.mongo_db, group=config.group, topic=config.topic)
    projector = Projector(
        store,
        checkpoint_every=config.checkpoint_every,
        board_interval=config.board_interval,
        retry_on=RETRYABLE,
        stats=stats,
    )
    connected = asyncio.Event()

    @app.on_partitions_assigned.connect
    def _assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        projector.forget()  # boards of newly assigned partitions may have moved on elsewhere

    async def project(messages: list[Any]) -> None:
        await projector.project([_record(message) for message in messages])

    async def drain(fetcher: Any) -> None:
        if not connected.is_set():
            await retry(store.start, retry_on=RETRYABLE, backoff=projector.backoff, what="connecting to MongoDB")
            connected.set()
        await BatchDrain(
            app,
            project,
            gather_seconds=config.batch_seconds,
            max_messages=config.batch_max,
            # The broker answers a fetch once 1 MiB is there or after the gather time: a few fetches a
            # second instead of one per handful of records.
            fetch_min_bytes=1 << 20,
            fetch_max_wait_ms=max(1, int(config.batch_seconds * 1000)),
        ).run(fetcher)

    async def _close(_app: Any, **_kwargs: Any) -> None:
        if connected.is_set():
            connected.clear()
            await store.close()
        datadir.cleanup()

    app.topics.add(topic)  # the conductor subscribes it; our Fetcher reads it
    app.transport.Fetcher = batch_fetcher(drain)  # type: ignore[misc]
    app.on_before_shutdown.connect(_close)  # type: ignore[arg-type]

    @app.timer(interval=max(0.1, config.board_interval / 2))  # type: ignore[untyped-decorator]
    async def flush_quiet_boards() -> None:
        if connected.is_set():
            await projector.flush()

    return app


def _record(message: Any) -> Record:
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
