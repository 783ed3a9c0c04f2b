"""The distributed event log: Kafka for appends, the Redis views for reads.

Append: produce to the topic (key = board id, idempotent producer, acks=all, provenance and trace
context in headers). The broker's ack makes the update durable (accepted); its version is assigned
by the view processor as it folds (versions are dense per board in partition order, see
engine.stream.records). The live WebSocket path returns at the ack (`wait_for_version=False`) and
learns the version when the update comes back on the board's Redis stream; otherwise `append`
waits until the processor has folded that record and returns the Event with its version. The
processor tells this gateway on its own pub/sub channel; if a message is missed (a Redis blip, a
processor restart that refolds without re-announcing), a sweeper finds the version in the board's
view. The wait is bounded (`fold_timeout`): past it the append fails with StorageUnavailable
(HTTP 503) -- the record is still in the log and will be folded; the client's retry is harmless
because CRDT updates are idempotent.

Reads by version come from the board's Redis stream and, for versions older than the stream
keeps, from an archive (the MongoDB projector's update archive) if one is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.adapters.redis_view import RedisViews
from engine.errors import StorageUnavailable, VersionNotFound
from engine.events import VERSION_PENDING, BoardHead, Event, Provenance
from engine.stream.records import encode_headers
from engine.stream.topic import ensure_topic
from engine.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_EARLY_ACKS = 100_000


class EventReader(Protocol):
    """Reads a board's events by version (the update archive behind the Redis view)."""

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """Events of `board` with after < version <= upto, in version order, at most `limit`."""


class ArchiveBackend(EventReader, Protocol):
    """An archive that must be connected before reading (e.g. projections.mongo_store)."""

    async def start(self) -> None:
        """Connect."""

    async def close(self) -> None:
        """Disconnect."""


class LazyReader:
    """An EventReader connecting its backend on first use, so an archive outage never stops a gateway."""

    def __init__(self, backend: ArchiveBackend) -> None:
        self.backend = backend
        self._started = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Nothing yet: the backend connects when first read."""

    async def close(self) -> None:
        """Disconnect the backend if it was connected."""
        if self._started:
            self._started = False
            await self.backend.close()

    async def connect(self) -> ArchiveBackend:
        """The backend, connected (once); StorageUnavailable if it cannot be reached."""
        async with self._lock:
            if not self._started:
                try:
                    await self.backend.start()
                except Exception as exc:
                    raise StorageUnavailable(f"the update archive is unreachable: {exc}") from exc
                self._started = True
        return self.backend

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """The backend's events; StorageUnavailable if it cannot be reached."""
        await self.connect()
        try:
            return await self.backend.read(board, after, upto, limit)
        except StorageUnavailable:
            raise
        except Exception as exc:
            raise StorageUnavailable(f"reading the update archive failed: {exc}") from exc


@dataclass(eq=False, slots=True)
class _Waiter:
    board: str
    future: asyncio.Future[int]
    since: float


def gateway_id() -> str:
    """A name for this process that is unique across restarts (its ack channel)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def producer_settings(linger_ms: int = 0, max_batch_bytes: int = 512 * 1024) -> dict[str, Any]:
    """The gateway producer's settings (also used by benchmarks that probe the same path)."""
    return {
        "enable_idempotence": True,
        "acks": "all",
        # No linger: with one request in flight per broker, what arrives during a round trip is
        # batched anyway. Measured at 500 updates/s, idle machine: ack p50 0.6-0.9 ms with 0 ms,
        # 2.2-3.0 ms with 1 ms, the broker's CPU the same.
        "linger_ms": linger_ms,
        # aiokafka keeps one open batch per partition and one request in flight per broker
        # (idempotence): when that batch is full every send waits for the round trip. 16 KB
        # (~60 updates) made a gateway's acks take seconds at 500 updates/s on a busy machine.
        "max_batch_size": max_batch_bytes,
    }


class KafkaEventLog:
    """EventLog adapter: Kafka topic for appends, Redis views for reads."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        redis: Redis,
        prefix: str,
        partitions: int = 3,
        fold_timeout: float = 30.0,
        archive: EventReader | None = None,
        gateway: str | None = None,
        linger_ms: int = 0,
        max_batch_bytes: int = 512 * 1024,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.views = RedisViews(redis, prefix)
        self.redis: Any = redis  # redis-py's command types are looser than its replies
        self.partitions = partitions
        self.fold_timeout = fold_timeout
        self.archive = archive
        self.gateway = gateway or gateway_id()
        self.linger_ms = linger_ms
        self.max_batch_bytes = max_batch_bytes
        self._producer: AIOKafkaProducer | None = None
        self._waiters: dict[tuple[int, int], _Waiter] = {}
        self._early: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        """Create the topic if needed, start the producer and listen for fold acks."""
        try:
            await ensure_topic(self.bootstrap, self.topic, self.partitions)
            producer = AIOKafkaProducer(
                **producer_settings(self.linger_ms, self.max_batch_bytes),
                bootstrap_servers=self.bootstrap,
                client_id=f"inkstream-gateway-{self.gateway}",
            )
            await producer.start()
        except KafkaError as exc:
            raise StorageUnavailable(f"cannot reach Kafka at {self.bootstrap}: {exc}") from exc
        self._producer = producer
        self._tasks = [
            asyncio.create_task(self._listen_acks(), name="inkstream-fold-acks"),
            asyncio.create_task(self._sweep(), name="inkstream-fold-sweeper"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def close(self) -> None:
        """Flush pending produces, stop listening."""
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        await self.redis.aclose()

    # -- append ----------------------------------------------------------------------------------

    def append(
        self,
        board: str,
        update: bytes,
        provenance: Provenance,
        wait_for_version: bool = True,
        then: Callable[[asyncio.Future[Event]], None] | None = None,
    ) -> asyncio.Future[Event]:
        """Produce the update (a task, started now: call order is produce order); `then` runs when it is settled."""
        task = asyncio.ensure_future(self._append(board, update, provenance, wait_for_version))
        if then is not None:
            task.add_done_callback(then)
        return task

    async def _append(self, board: str, update: bytes, provenance: Provenance, wait_for_version: bool) -> Event:
        """Once the broker acked the update and the processor folded it, its Event.

        With `wait_for_version=False`, return at the broker's ack (the update is accepted then) with
        version VERSION_PENDING; the record then names no waiting gateway, so the processor sends no
        fold report for it.
        """
        if self._producer is None:
            raise StorageUnavailable("the event log is not open")
        headers = encode_headers(provenance, self.gateway if wait_for_version else None)
        try:
            sent = await self._producer.send_and_wait(self.topic, update, key=board.encode(), headers=headers)
        except KafkaError as exc:
            raise StorageUnavailable(f"Kafka did not accept the update: {exc}") from exc
        if not wait_for_version:
            return Event(board, VERSION_PENDING, update, provenance)
        key = (sent.partition, sent.offset)
        version = self._early.pop(key, None)
        if version is None:
            waiter = _Waiter(board, asyncio.get_running_loop().create_future(), time.monotonic())
            self._waiters[key] = waiter
            try:
                version = await asyncio.wait_for(asyncio.shield(waiter.future), self.fold_timeout)
            except TimeoutError:
                raise StorageUnavailable(
                    f"the update is in the log (partition {key[0]}, offset {key[1]}) but no view processor folded "
                    f"it within {self.fold_timeout:.0f} s; is `inkstream processor` running?"
                ) from None
            finally:
                self._waiters.pop(key, None)
        return Event(board, version, update, provenance)

    def _acked(self, key: tuple[int, int], version: int) -> None:
        waiter = self._waiters.get(key)
        if waiter is not None:
            if not waiter.future.done():
                waiter.future.set_result(version)
            return
        self._early[key] = version  # the ack beat send_and_wait's return
        if len(self._early) > MAX_EARLY_ACKS:
            self._early.popitem(last=False)

    async def _listen_acks(self) -> None:
        channel = self.views.keys.acks(self.gateway)
        delay = 0.05
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(channel)
                self._subscribed.set()
                delay = 0.05
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    for entry in message["data"].split():
                        partition, offset, version = entry.split(b":")
                        self._acked((int(partition), int(offset)), int(version))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("fold-ack subscription lost (%s); resubscribing", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _sweep(self) -> None:
        """Resolve waiters whose ack message was missed, from the board's view."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            stale: dict[str, list[tuple[int, int]]] = {}
            for key, waiter in list(self._waiters.items()):
                if now - waiter.since >= 1.0:
                    stale.setdefault(waiter.board, []).append(key)
            for board, keys in stale.items():
                try:
                    await self._resolve_from_view(board, keys)
                except (RedisError, OSError) as exc:
                    log.debug("sweeper could not read the view of %s: %s", board, exc)

    async def _resolve_from_view(self, board: str, keys: list[tuple[int, int]]) -> None:
        folded = await self.redis.hget(self.views.keys.view(board), "offset")
        if folded is None:
            return
        wanted = {offset: key for key in keys if (offset := key[1]) <= int(folded)}
        if not wanted:
            return
        high = "+"
        for _page in range(50):  # the stream keeps thousands of recent versions; look back that far
            entries = await self.redis.xrevrange(self.views.keys.stream(board), max=high, min="-", count=500)
            for entry_id, fields in entries:
                key = wanted.pop(int(fields[b"o"]), None)
                if key is not None:
                    self._acked(key, int(fields[b"v"]))
                high = f"({entry_id.decode()}"
            if not wanted or len(entries) < 500:
                return

    # -- reads -----------------------------------------------------------------------------------

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """Events of `board` with after < version <= upto: the Redis stream, then the archive for older ones."""
        events = await self.views.range(board, after, upto, limit)
        if events and events[0].version == after + 1:
            return events
        head = await self.views.head(board)
        end = min(head, upto) if upto is not None else head
        if end <= after:
            return []
        first_kept = events[0].version if events else end + 1
        if self.archive is None:
            raise VersionNotFound(
                f"versions {after + 1}..{first_kept - 1} of board {board} are older than the Redis view keeps "
                "and no update archive is configured"
            )
        older = await self.archive.read(board, after, first_kept - 1, limit)
        combined = older + events
        return combined[:limit] if limit is not None else combined

    async def head(self, board: str) -> int:
        """The board's latest folded version (0 if none)."""
        return await self.views.head(board)

    async def heads(self) -> list[BoardHead]:
        """Every board with its latest version and last update time."""
        return [head for head, _raw in await self.views.heads()]

    async def writable(self) -> bool:
        """True when the producer has a broker and the views are complete (a processor built them)."""
        if self._producer is None or not self._producer.client.cluster.brokers():
            return False
        try:
            return await asyncio.wait_for(self.views.views_ready(), timeout=1.0)
        except (RedisError, OSError, TimeoutError):
            return False
