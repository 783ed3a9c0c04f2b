"""Fan-out between gateways over the boards' Redis streams (the FanOut port).

The processor appends every folded update to its board's stream with id `{version}-0`, so the
stream *is* the bus: a gateway with clients on a board reads that stream from the version it
loaded, with one blocking XREAD over all its boards. The cursor is a version, so a blip (Redis
reconnect, a slow loop) resumes exactly where it stopped and nothing is missed; if the entries
it needs were trimmed meanwhile, it resyncs from the view's compacted state (applying a state a
Doc already has is a no-op, CRDTs are idempotent). Only accepted client updates travel on this
bus, never a reply computed for one peer (sync step 2).

`publish` is a no-op here: the processor publishes by folding (an update is visible to other
gateways exactly when it has a version).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.adapters.redis_view import RedisViews, decode_entry, stream_id
from engine.errors import StorageUnavailable
from engine.events import ANONYMOUS, Event, Provenance
from engine.ports import EventListener
from engine.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Subscription:
    board: str
    cursor: int  # the last version delivered
    listener: EventListener


class RedisFanOut:
    """Delivers each subscribed board's folded updates to a listener, in version order."""

    def __init__(self, redis: Redis, prefix: str, block_ms: int = 100, count: int = 1000) -> None:
        self.redis: Any = redis  # blocking reads: give it a client (pool) of its own
        self.views = RedisViews(redis, prefix)
        self.block_ms = block_ms
        self.count = count
        self.delivered = 0
        self.resyncs = 0
        self._subs: dict[str, _Subscription] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the reader."""
        self._task = asyncio.create_task(self._read_forever(), name="inkstream-fanout")

    async def close(self) -> None:
        """Stop the reader."""
        await cancel_and_wait(self._task)
        self._task = None
        await self.redis.aclose()

    async def publish(self, event: Event) -> None:
        """Nothing to do: the processor puts every folded update on its board's stream."""

    async def subscribe(self, board: str, after_version: int, listener: EventListener) -> None:
        """Deliver every update of `board` after `after_version` to `listener` (replaces a previous one)."""
        self._subs[board] = _Subscription(board, after_version, listener)
        self._changed.set()

    async def unsubscribe(self, board: str) -> None:
        """Stop delivering `board`."""
        self._subs.pop(board, None)

    @property
    def boards(self) -> int:
        """How many boards this node follows."""
        return len(self._subs)

    async def _read_forever(self) -> None:
        delay = 0.05
        while True:
            if not self._subs:
                self._changed.clear()
                await self._changed.wait()
                continue
            subs = list(self._subs.values())
            streams: dict[bytes | str, bytes | str | int] = {
                self.views.keys.stream(s.board): stream_id(s.cursor) for s in subs
            }
            by_key = {self.views.keys.stream(s.board): s for s in subs}
            try:
                response = await self.redis.xread(streams, count=self.count, block=self.block_ms)
                for key, entries in response or ():
                    sub = by_key[key.decode() if isinstance(key, bytes) else key]
                    await self._deliver(sub, entries)
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, StorageUnavailable) as exc:
                log.warning("fan-out read failed (%s); resuming from the same versions", exc)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)

    async def _deliver(self, sub: _Subscription, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for _entry_id, fields in entries:
            if self._subs.get(sub.board) is not sub:
                return  # unsubscribed or replaced meanwhile
            event = decode_entry(sub.board, fields)
            if event.version <= sub.cursor:
                continue
            if event.version > sub.cursor + 1:
                await self._resync(sub)
                return
            sub.cursor = event.version
            await self._call(sub, event)

    async def _resync(self, sub: _Subscription) -> None:
        """The stream no longer has the next version: deliver the view's state, then the rest."""
        self.resyncs += 1
        view = await self.views.load(sub.board)
        log.info("board %s: fan-out resync from version %d to %d", sub.board, sub.cursor, view.version)
        if view.state is not None and view.state_version > sub.cursor:
            sub.cursor = view.state_version
            state = Event(sub.board, view.state_version, view.state, Provenance(time.time(), "resync", ANONYMOUS))
            await self._call(sub, state)
        for event in view.events:
            if event.version > sub.cursor and self._subs.get(sub.board) is sub:
                sub.cursor = event.version
                await self._call(sub, event)

    async def _call(self, sub: _Subscription, event: Event) -> None:
        self.delivered += 1
        try:
            result = sub.listener(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("fan-out listener failed for board %s version %d", sub.board, event.version)
