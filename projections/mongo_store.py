"""MongoDB projections via Beanie: the projector's writes and the gateway's reads.

Write side (`write`, `load`): what `projections.mongo_projector.Projector` produces, stored
idempotently and conditionally on version. Read side: the engine's SnapshotStore (`latest`), board
summaries and heads for the boards list, the board JSON, and the update archive by version range
(for history: state at V = nearest checkpoint at or before V + the archived updates after it).

History (projections.history.HistoryArchive): `projected`, `plain_latest`, `changes`, `versions`,
`shape_history` read what the projector stores with each batch (see projections.mongo_models);
with `head`, `read`, `version_at` and `latest` this store is a complete HistoryArchive. A gateway
wraps it in projections.mongo_archive.MongoArchive so the newest, not yet archived versions come
from its event log.

Beanie binds its models to one database per process; a process uses one MongoProjectionStore.
Bulk writes go through the models' pymongo collections (one round trip per collection per batch).
"""

from __future__ import annotations

import json
import time
from typing import Any

from beanie import init_beanie
from pymongo import AsyncMongoClient, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from engine.events import BoardHead, Event, Provenance
from projections.changes import Changes, PlainBoard
from projections.history import ShapeTouch, VersionInfo, summary_of
from projections.mongo_models import (
    DOCUMENT_MODELS,
    BoardDocument,
    CheckpointDocument,
    PartitionCursor,
    PlainCheckpointDocument,
    ShapeVersions,
    ThumbnailDocument,
    UpdateRecord,
)
from projections.mongo_projector import ArchivedUpdate, Batch, BoardState
from projections.sqlite_store import BoardSummary, Checkpoint
from projections.thumbnails import Thumbnail

DUPLICATE_KEY = 11000

#: The errors a MongoDB write or read can fail with that are worth retrying (connection loss, elections, timeouts).
RETRYABLE: tuple[type[BaseException], ...] = (PyMongoError,)


def _only_duplicates(exc: BulkWriteError) -> bool:
    details: Any = exc.details or {}
    errors = details.get("writeErrors", [])
    return (
        bool(errors) and all(e.get("code") == DUPLICATE_KEY for e in errors) and not details.get("writeConcernErrors")
    )


class MongoProjectionStore:
    """Board documents, the update archive, checkpoints and projector cursors in one MongoDB database."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        group: str = "inkstream-projector",
        topic: str = "",
        timeout_ms: int = 3000,
    ) -> None:
        self.url = url
        self.database = database
        self.group = group
        self.topic = topic
        self.timeout_ms = timeout_ms
        self._client: AsyncMongoClient[dict[str, Any]] | None = None

    async def start(self) -> None:
        """Connect and bind the Beanie models (creating indexes); raises PyMongoError if MongoDB is down."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            self.url,
            serverSelectionTimeoutMS=self.timeout_ms,
            connectTimeoutMS=self.timeout_ms,
            socketTimeoutMS=max(10_000, self.timeout_ms * 3),
            tz_aware=True,
        )
        try:
            await init_beanie(database=client[self.database], document_models=DOCUMENT_MODELS)
        except BaseException:
            await client.close()
            raise
        self._client = client

    async def close(self) -> None:
        """Close the connection."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    # ------------------------------------------------------------------ write side

    async def load(self, board: str) -> BoardState | None:
        """The stored state of `board` (None if it has no document yet)."""
        raw = await BoardDocument.get_pymongo_collection().find_one(
            {"_id": board}, {"version": 1, "state": 1, "partition": 1, "offset": 1}
        )
        if raw is None:
            return None
        return BoardState(board, int(raw["version"]), bytes(raw["state"]), int(raw["partition"]), int(raw["offset"]))

    async def archived(self, board: str, after: int) -> list[ArchivedUpdate]:
        """Archived updates of `board` after version `after` (the tail its board document does not have yet)."""
        cursor = UpdateRecord.get_pymongo_collection().find(
            {"board": board, "version": {"$gt": after}},
            {"version": 1, "data": 1, "time": 1, "partition": 1, "offset": 1},
            sort=[("version", 1)],
        )
        return [
            ArchivedUpdate(int(d["version"]), bytes(d["data"]), float(d["time"]), int(d["partition"]), int(d["offset"]))
            async for d in cursor
        ]

    async def write(self, batch: Batch) -> None:
        """Store a batch (all idempotent): the shape index, archive (with each version's changes) and
        checkpoints first, then thumbnails, then board documents (whose version is how far history
        is complete, see `projected`; a crash between the two rewrites both: the board is refolded
        from its document), then cursors. One bulk write per collection."""
        if batch.shape_index:
            await self._insert_ignoring_duplicates(ShapeVersions, list(batch.shape_index.values()))
        if batch.archive:
            await self._insert_ignoring_duplicates(UpdateRecord, batch.archive)
        if batch.checkpoints:
            await self._insert_ignoring_duplicates(CheckpointDocument, batch.checkpoints)
        if batch.plain_checkpoints:
            await self._insert_ignoring_duplicates(PlainCheckpointDocument, batch.plain_checkpoints)
        if batch.thumbnails:
            ops = [
                UpdateOne({"_id": doc["_id"], "version": {"$lt": doc["version"]}}, {"$set": doc}, upsert=True)
                for doc in batch.thumbnails
            ]
            await self._bulk_ignoring_duplicates(ThumbnailDocument, ops)
        if batch.boards:
            # Conditional on version: a stale write matches nothing, its upsert hits the _id and is ignored.
            ops = [
                UpdateOne({"_id": doc["_id"], "version": {"$lt": doc["version"]}}, {"$set": doc}, upsert=True)
                for doc in batch.boards
            ]
            await self._bulk_ignoring_duplicates(BoardDocument, ops)
        if batch.cursors:
            now = time.time()
            ops = [
                UpdateOne(
                    {"_id": f"{self.group}:{self.topic}:{partition}"},
                    {
                        "$max": {"next_offset": offset},
                        "$set": {"group": self.group, "topic": self.topic, "partition": partition, "updated": now},
                    },
                    upsert=True,
                )
                for partition, offset in batch.cursors.items()
            ]
            await self._bulk_ignoring_duplicates(PartitionCursor, ops)

    async def _insert_ignoring_duplicates(self, model: Any, docs: list[dict[str, Any]]) -> None:
        await self._bulk_ignoring_duplicates(model, [InsertOne(dict(d)) for d in docs])

    async def _bulk_ignoring_duplicates(self, model: Any, ops: list[Any]) -> None:
        try:
            await model.get_pymongo_collection().bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            if not _only_duplicates(exc):
                raise
        except DuplicateKeyError:
            pass

    # ------------------------------------------------------------------ read side

    async def latest(self, board: str, at_or_before: int | None = None) -> Checkpoint | None:
        """The newest compacted state of `board` at or before a version: the board document or a checkpoint."""
        doc = await BoardDocument.get_pymongo_collection().find_one({"_id": board}, {"version": 1, "state": 1})
        if doc is not None and (at_or_before is None or int(doc["version"]) <= at_or_before):
            return Checkpoint(board, int(doc["version"]), bytes(doc["state"]))
        query: dict[str, Any] = {"board": board}
        if at_or_before is not None:
            query["version"] = {"$lte": at_or_before}
        found = await CheckpointDocument.get_pymongo_collection().find_one(query, sort=[("version", -1)])
        if found is None:
            return None
        return Checkpoint(board, int(found["version"]), bytes(found["state"]))

    async def summaries(self) -> dict[str, BoardSummary]:
        """Every projected board's summary, by board id."""
        cursor = BoardDocument.get_pymongo_collection().find({}, {"version": 1, "updated": 1, "title": 1, "shapes": 1})
        out: dict[str, BoardSummary] = {}
        async for d in cursor:
            board = str(d["_id"])
            out[board] = BoardSummary(board, int(d["version"]), float(d["updated"]), str(d["title"]), int(d["shapes"]))
        return out

    async def heads(self) -> list[BoardHead]:
        """Every projected board with its projected version and last update time."""
        return [BoardHead(s.board, s.version, s.updated) for s in (await self.summaries()).values()]

    async def head(self, board: str) -> int:
        """The projected version of `board` (0 if none)."""
        doc = await BoardDocument.get_pymongo_collection().find_one({"_id": board}, {"version": 1})
        return int(doc["version"]) if doc is not None else 0

    async def board_json(self, board: str) -> dict[str, Any] | None:
        """The board's JSON rendering as projected (engine.model.render), None if unknown."""
        doc = await BoardDocument.get_pymongo_collection().find_one({"_id": board}, {"content": 1})
        return dict(doc["content"]) if doc is not None else None

    async def thumbnail(self, board: str) -> Thumbnail | None:
        """The board's thumbnail (projections.thumbnails) as projected, None if it has none (yet)."""
        doc = await ThumbnailDocument.get_pymongo_collection().find_one({"_id": board})
        if doc is None:
            return None
        return Thumbnail(board, int(doc["version"]), bytes(doc["body"]))

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """Archived updates of `board` with after < version <= upto, in version order, at most `limit`."""
        versions: dict[str, int] = {"$gt": after}
        if upto is not None:
            versions["$lte"] = upto
        cursor = UpdateRecord.get_pymongo_collection().find(
            {"board": board, "version": versions}, sort=[("version", 1)]
        )
        if limit is not None:
            cursor = cursor.limit(limit)
        return [
            Event(
                board,
                int(d["version"]),
                bytes(d["data"]),
                Provenance(float(d["time"]), str(d["client"]), str(d["user"])),
            )
            async for d in cursor
        ]

    async def version_at(self, board: str, when: float) -> int:
        """The last version of `board` accepted at or before `when` (seconds since the epoch), 0 if none.

        Binary search over versions on the (board, version) index: acceptance times grow with versions
        (one partition's order; gateways' clocks are NTP-synced), so no time index is kept.
        """
        collection = UpdateRecord.get_pymongo_collection()

        async def time_of(version: int) -> float:
            doc = await collection.find_one({"board": board, "version": version}, {"time": 1})
            return float(doc["time"]) if doc is not None else float("inf")

        low, high = 0, await self.archived_head(board)  # invariant: time_of(low) <= when (0 = before all)
        while low < high:
            mid = (low + high + 1) // 2
            if await time_of(mid) <= when:
                low = mid
            else:
                high = mid - 1
        return low

    async def archived_head(self, board: str) -> int:
        """The highest archived version of `board` (0 if none)."""
        doc = await UpdateRecord.get_pymongo_collection().find_one(
            {"board": board}, {"version": 1}, sort=[("version", -1)]
        )
        return int(doc["version"]) if doc is not None else 0

    async def cursors(self) -> dict[int, int]:
        """Partition -> next offset this store's projector group has folded (for lag)."""
        cursor = PartitionCursor.get_pymongo_collection().find({"group": self.group, "topic": self.topic})
        return {int(d["partition"]): int(d["next_offset"]) async for d in cursor}

    # ------------------------------------------------------------------ history (HistoryArchive)

    async def projected(self, board: str) -> int:
        """The version up to which history (changes, shape index, plain checkpoints) is stored.

        The board document's: it is written after the archive and index rows of its version, and
        only moves forward (the archive may be ahead of it by up to the projector's board interval;
        BoardHistory answers those versions from the log).
        """
        return await self.head(board)

    async def plain_latest(self, board: str, at_or_before: int) -> tuple[int, PlainBoard] | None:
        """The newest plain checkpoint with version <= at_or_before."""
        found = await PlainCheckpointDocument.get_pymongo_collection().find_one(
            {"board": board, "version": {"$lte": at_or_before}}, sort=[("version", -1)]
        )
        if found is None:
            return None
        plain: PlainBoard = json.loads(found["plain"])
        return int(found["version"]), plain

    async def changes(self, board: str, after: int, upto: int) -> list[tuple[int, Changes]]:
        """Recorded changes of the versions after < v <= upto, in order."""
        cursor = UpdateRecord.get_pymongo_collection().find(
            {"board": board, "version": {"$gt": after, "$lte": upto}},
            {"version": 1, "changes": 1},
            sort=[("version", 1)],
        )
        return [(int(d["version"]), _changes(d)) async for d in cursor]

    async def versions(self, board: str, after: int | None, before: int | None, limit: int) -> list[VersionInfo]:
        """A page of versions with history: ascending after `after`, or descending below `before`."""
        query: dict[str, Any] = {"board": board}
        if before is not None:
            query["version"], order = {"$lt": before}, -1
        else:
            query["version"], order = {"$gt": after or 0}, 1
        cursor = UpdateRecord.get_pymongo_collection().find(
            query, {"data": 0, "partition": 0, "offset": 0}, sort=[("version", order)], limit=limit
        )
        return [
            VersionInfo(int(d["version"]), float(d["time"]), str(d["client"]), str(d["user"]), summary_of(_changes(d)))
            async for d in cursor
        ]

    async def shape_history(self, board: str, shape: str, after: int, limit: int) -> list[ShapeTouch]:
        """Versions that touched `shape`, ascending after `after` (two index range reads, then the pages)."""
        collection = ShapeVersions.get_pymongo_collection()
        docs: list[dict[str, Any]] = []
        earlier = await collection.find_one(
            {"board": board, "shape": shape, "first": {"$lte": after}}, sort=[("first", -1)]
        )
        if earlier is not None and int(earlier["last"]) > after:
            docs.append(earlier)
        touches: dict[int, ShapeTouch] = {}
        for doc in docs:
            _add_touches(touches, doc, after)
        cursor = collection.find({"board": board, "shape": shape, "first": {"$gt": after}}, sort=[("first", 1)])
        async for doc in cursor:
            if len(touches) >= limit and int(doc["first"]) > sorted(touches)[limit - 1]:
                break
            _add_touches(touches, doc, after)
        return [touches[v] for v in sorted(touches)[:limit]]


def _changes(doc: dict[str, Any]) -> Changes:
    text = doc.get("changes")
    return Changes.decode(text) if isinstance(text, str) else Changes()


def _add_touches(into: dict[int, ShapeTouch], doc: dict[str, Any], after: int) -> None:
    for version, when, client, user, kind, fields in doc["touches"]:
        if int(version) > after:
            into[int(version)] = ShapeTouch(int(version), float(when), str(client), str(user), str(kind), list(fields))
