"""The composition root: builds the engine, projections and rooms for one process, and owns their lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from engine.adapters.sqlite_log import SqliteEventLog
from engine.events import BoardHead
from engine.service import BoardService
from gateway.membership import build_membership
from gateway.metrics import Metrics
from gateway.rooms import CLOSE_INTERNAL, Room
from gateway.settings import Settings
from projections.local_projector import LocalProjector
from projections.projector_process import ProjectorProcess
from projections.sqlite_store import BoardSummary, SqliteProjectionStore

log = logging.getLogger(__name__)


@dataclass(eq=False)
class System:
    """Everything one gateway process runs, wired together."""

    settings: Settings
    event_log: Any
    store: Any
    service: BoardService
    metrics: Metrics
    projector: Any = None
    membership: Any = None  # engine.routing.Membership: this node alone, or etcd (gateway.membership)
    background: list[Any] = field(default_factory=list)  # more start()/close() parts, e.g. the fan-out
    awareness: Any = None  # distributed mode: relays presence between nodes (gateway.awareness_bus)
    #: Where board thumbnails are read (`async thumbnail(board) -> projections.thumbnails.Thumbnail | None`):
    #: the SQLite projection store, or MongoDB through projections.mongo_archive.MongoArchive.
    thumbnails: Any = None
    rooms: dict[str, Room] = field(default_factory=dict)

    async def start(self) -> None:
        """Open storage and start background work."""
        await self.event_log.start()
        await self.store.start()
        await self.service.start()
        for part in self.background:
            await part.start()
        if self.projector is not None:
            await self.projector.start()
        self.service.on_reset(self._board_reset)
        if self.membership is not None:
            await self.membership.start()  # join the cluster last: only a ready node is routed to

    async def close(self) -> None:
        """Close every connection, then stop background work and storage (pending appends are committed).

        Every step is bounded, so SIGTERM always ends the process (a gateway under load once took
        50 s): a step that hangs (an etcd or Redis call on a starved machine) is logged and skipped.
        Nothing accepted is lost by that: an append is accepted only once the log has it, and the
        event log gets the longest bound to flush what its producer still holds.
        """
        if self.membership is not None:
            await _bounded("leaving the cluster", self.membership.close())  # first: no new clients routed here
        for room in list(self.rooms.values()):
            for conn in list(room.connections):
                conn.close(1001, "server shutting down")
        await asyncio.sleep(0)
        if self.projector is not None:
            await _bounded("the projector", self.projector.close(), 15.0)
        for part in reversed(self.background):
            await _bounded(type(part).__name__, part.close())
        await _bounded("the board service", self.service.close())
        await _bounded("the event log", self.event_log.close(), 15.0)
        await _bounded("the projection store", self.store.close())

    async def close_connections(self, grace: float = 3.0) -> None:
        """Close every WebSocket connection (1001) and wait up to `grace` seconds for them to end."""
        for room in list(self.rooms.values()):
            for conn in list(room.connections):
                conn.close(1001, "server shutting down")
        deadline = asyncio.get_running_loop().time() + grace
        while self.rooms and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110 (rooms empty as handlers end)
            await asyncio.sleep(0.05)

    def _board_reset(self, board_id: str, reason: str) -> None:
        room = self.rooms.get(board_id)
        if room is not None:
            for conn in list(room.connections):
                conn.close(CLOSE_INTERNAL, "storage failure; reconnect to resync")

    async def board_list(self) -> list[tuple[BoardHead, BoardSummary | None]]:
        """Every board in the log with its latest projected summary (None if not projected yet)."""
        heads = await self.event_log.heads()
        summaries = await self.store.summaries()
        return [(head, summaries.get(head.board)) for head in heads]


async def _bounded(what: str, step: Awaitable[None], seconds: float = 5.0) -> None:
    """Await one shutdown step for at most `seconds`; log (never raise) if it fails or hangs."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        log.warning("shutdown: %s did not finish within %.0f s; going on", what, seconds)
    except Exception:
        log.exception("shutdown: closing %s failed; going on", what)


def build_embedded(settings: Settings) -> System:
    """The embedded system: SQLite event log, in-process views, SQLite projections, one process."""
    metrics = Metrics()
    data_dir = settings.data_dir
    event_log = SqliteEventLog(
        data_dir / "events.db", fsync=settings.fsync, on_commit=lambda n, _s: metrics.commit_batch.observe(n)
    )
    store = SqliteProjectionStore(data_dir / "projections.db", fsync=settings.fsync)
    service = BoardService(event_log, store, limits=settings.limits, idle_seconds=settings.idle_unload_seconds)
    projector: LocalProjector | ProjectorProcess
    if settings.projector_process:
        projector = ProjectorProcess(event_log, store, checkpoint_every=settings.checkpoint_every)
    else:
        projector = LocalProjector(event_log, store, checkpoint_every=settings.checkpoint_every)
    system = System(settings, event_log, store, service, metrics, projector, build_membership(settings, False))
    system.thumbnails = store

    def accepted(_event: object, seconds: float) -> None:
        metrics.updates_accepted.inc()
        metrics.append_seconds.observe(seconds)

    service.on_accepted = accepted
    return system


def build_distributed(settings: Settings) -> System:
    """A distributed gateway: Kafka event log, Redis views and fan-out, MongoDB archive, etcd membership."""
    from redis.asyncio import Redis

    from engine.adapters.kafka_log import KafkaEventLog, LazyReader
    from engine.adapters.redis_fanout import RedisFanOut
    from engine.adapters.redis_view import RedisSnapshotStore, RedisViews
    from projections.mongo_store import MongoProjectionStore

    metrics = Metrics()
    redis = Redis.from_url(settings.redis_url)
    mongo = MongoProjectionStore(settings.mongo_url, settings.mongo_db, topic=settings.kafka_topic)
    archive = LazyReader(mongo)
    event_log = KafkaEventLog(
        settings.kafka_bootstrap,
        settings.kafka_topic,
        redis,
        settings.redis_prefix,
        partitions=settings.kafka_partitions,
        fold_timeout=settings.fold_timeout_seconds,
        archive=archive,
        gateway=settings.gateway_id or None,
    )
    # The fan-out's blocking XREAD gets a client (connection pool) of its own.
    fanout = RedisFanOut(Redis.from_url(settings.redis_url), settings.redis_prefix)
    store = RedisSnapshotStore(RedisViews(redis, settings.redis_prefix))
    service = BoardService(
        event_log, store, limits=settings.limits, idle_seconds=settings.idle_unload_seconds, fanout=fanout
    )
    system = System(settings, event_log, store, service, metrics, None, build_membership(settings, True))
    from gateway.awareness_bus import RedisAwarenessBus

    system.awareness = RedisAwarenessBus(Redis.from_url(settings.redis_url), settings.redis_prefix)
    system.background = [fanout, archive, system.awareness]
    from projections.history import BoardHistory
    from projections.mongo_archive import MongoArchive

    # History (gateway.history_api.history_for): the event log for the newest versions, MongoDB for the rest.
    mongo_archive = MongoArchive(event_log, mongo, archive)
    system.history = BoardHistory(mongo_archive)  # type: ignore[attr-defined]
    system.thumbnails = mongo_archive

    def accepted(_event: object, seconds: float) -> None:
        metrics.updates_accepted.inc()
        metrics.append_seconds.observe(seconds)

    service.on_accepted = accepted
    return system
