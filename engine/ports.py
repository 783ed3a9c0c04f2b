"""Ports: the small interfaces the engine needs. Each backend is an adapter behind them.

| port           | embedded adapter            | distributed adapter           |
|----------------|-----------------------------|-------------------------------|
| EventLog       | engine.adapters.sqlite_log  | Kafka (aiokafka)              |
| SnapshotStore  | projections.sqlite_store    | Redis view / MongoDB          |
| FanOut         | none (single node)          | Redis Streams                 |
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from engine.events import BoardHead, Event, Provenance


class EventLog(Protocol):
    """The source of truth: an append-only, per-board ordered log of accepted updates."""

    async def start(self) -> None:
        """Open connections; after this, `append` and `read` work."""

    async def close(self) -> None:
        """Flush what is pending and release resources."""

    def append(
        self,
        board: str,
        update: bytes,
        provenance: Provenance,
        wait_for_version: bool = True,
        then: Callable[[asyncio.Future[Event]], None] | None = None,
    ) -> asyncio.Future[Event]:
        """Durably append one update; the future gives it back with its version. Only then is it accepted.

        A plain method returning a future (a task, for a log whose append is a coroutine), so the
        update is queued in call order and the live path needs no task per update where the log can
        avoid one (SQLite). `then(future)`, if given, runs once the future is settled: the SQLite
        log calls it in the very loop iteration of the commit, which is what puts a broadcast right
        after the commit rather than one loop iteration later.

        With `wait_for_version=False` it returns as soon as the update is durable (accepted), and the
        Event's version is VERSION_PENDING (0) if the log assigns versions later: the distributed log
        learns it when the view processor folds the record (the live WebSocket path broadcasts at
        the broker's ack and learns the version from the fan-out). A log that knows the version when
        it commits (SQLite) returns it either way.
        """

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """Events of `board` with after < version <= upto, in version order, at most `limit`."""

    async def head(self, board: str) -> int:
        """The latest version of `board`, 0 if it has none."""

    async def heads(self) -> list[BoardHead]:
        """Every board with its latest version and last update time."""

    async def writable(self) -> bool:
        """True when an append would be accepted right now (for readiness checks)."""


class Snapshot(Protocol):
    """A compacted board state at a version (read-only: frozen dataclasses implement it)."""

    @property
    def version(self) -> int: ...

    @property
    def state(self) -> bytes: ...


class SnapshotStore(Protocol):
    """Compacted states (checkpoints) of boards, used to load a board without replaying its whole log."""

    async def latest(self, board: str, at_or_before: int | None = None) -> Snapshot | None:
        """The newest snapshot of `board` whose version is <= at_or_before (any if None)."""


EventListener = Callable[[Event], Awaitable[None] | None]


class FanOut(Protocol):
    """Delivers accepted events between nodes. Only client updates travel, never per-peer replies."""

    async def publish(self, event: Event) -> None:
        """Make `event` visible to other nodes serving its board."""

    async def subscribe(self, board: str, after_version: int, listener: EventListener) -> None:
        """Call `listener` for every event of `board` after `after_version`, from any node."""

    async def unsubscribe(self, board: str) -> None:
        """Stop delivering events of `board` to this node."""
