"""The distributed HistoryArchive: a gateway's event log for the newest versions, MongoDB for the rest.

The MongoDB projector trails the log by a batch and writes a board's document every few seconds,
so the latest version (`head`) and updates not archived yet come from the event log (the Redis
view, which falls back to the MongoDB archive for older versions); checkpoints, recorded changes,
version pages and shape history come from projections.mongo_store.MongoProjectionStore. The store
connects on first use (through the LazyReader the event log shares), so an unreachable MongoDB
makes history requests fail (503), never the gateway's start.
"""

from __future__ import annotations

from typing import Protocol

from engine.errors import StorageUnavailable
from engine.events import Event
from projections.changes import Changes, PlainBoard
from projections.history import ShapeTouch, VersionInfo, YjsCheckpoint, find_version_at
from projections.mongo_store import RETRYABLE, MongoProjectionStore
from projections.thumbnails import Thumbnail


class LiveLog(Protocol):
    """What the archive needs from the gateway's event log."""

    async def head(self, board: str) -> int:
        """The board's latest version."""

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """Updates with after < version <= upto."""


class StoreConnector(Protocol):
    """Hands out the MongoDB store, connected (engine.adapters.kafka_log.LazyReader)."""

    async def connect(self) -> object:
        """The connected store."""


class MongoArchive:
    """HistoryArchive over a gateway's event log and the MongoDB projections."""

    def __init__(self, log: LiveLog, store: MongoProjectionStore, connector: StoreConnector | None = None) -> None:
        self.log = log
        self._store = store
        self._connector = connector

    async def store(self) -> MongoProjectionStore:
        """The store, connected first if a connector manages it."""
        if self._connector is not None:
            await self._connector.connect()
        return self._store

    async def head(self, board: str) -> int:
        """The latest version, from the event log."""
        return await self.log.head(board)

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """Updates from the event log (recent ones from Redis, older ones from the MongoDB archive)."""
        return await self.log.read(board, after=after, upto=upto, limit=limit)

    async def version_at(self, board: str, when: float) -> int:
        """The last version accepted at or before `when` (binary search by version)."""
        return await find_version_at(self, board, when)

    async def latest(self, board: str, at_or_before: int | None = None) -> YjsCheckpoint | None:
        """The nearest Yjs checkpoint (or board document) at or before a version."""
        return await (await self.store()).latest(board, at_or_before)

    async def projected(self, board: str) -> int:
        """The version up to which MongoDB has the history rows."""
        return await (await self.store()).projected(board)

    async def plain_latest(self, board: str, at_or_before: int) -> tuple[int, PlainBoard] | None:
        """The nearest plain checkpoint at or before a version."""
        return await (await self.store()).plain_latest(board, at_or_before)

    async def changes(self, board: str, after: int, upto: int) -> list[tuple[int, Changes]]:
        """Recorded changes of a version range."""
        return await (await self.store()).changes(board, after, upto)

    async def versions(self, board: str, after: int | None, before: int | None, limit: int) -> list[VersionInfo]:
        """A page of projected versions."""
        return await (await self.store()).versions(board, after, before, limit)

    async def shape_history(self, board: str, shape: str, after: int, limit: int) -> list[ShapeTouch]:
        """Versions that touched one shape."""
        return await (await self.store()).shape_history(board, shape, after, limit)

    async def thumbnail(self, board: str) -> Thumbnail | None:
        """The board's thumbnail as the MongoDB projector stored it; StorageUnavailable if MongoDB cannot answer."""
        store = await self.store()
        try:
            return await store.thumbnail(board)
        except RETRYABLE as exc:
            raise StorageUnavailable(f"reading the thumbnail from MongoDB failed: {exc}") from exc
