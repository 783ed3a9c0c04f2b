"""Presence (awareness) between gateways: Redis pub/sub, one channel per board.

Awareness is ephemeral — a cursor position is worthless a second later and clients renew their
state every 15 s — so it goes over pub/sub, not the durable stream, and a message lost in a blip
is simply superseded by the next renewal. Each node tags what it publishes with its own id and
ignores its own messages. A client of a crashed node disappears from the others when its state
times out (y-protocols drops states not renewed within 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.tasks import cancel_and_wait
from gateway import protocol
from gateway.rooms import Room

log = logging.getLogger(__name__)

_SEP = b"\n"


class RedisAwarenessBus:
    """Shares each room's awareness frames with the same board's rooms on other gateways."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis: Any = redis
        self.prefix = prefix
        self.node = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}".encode()
        self._rooms: dict[str, Room] = {}
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[Any]] = set()

    def channel(self, board: str) -> str:
        """The board's awareness channel."""
        return f"{self.prefix}:awareness:{{{board}}}"

    async def start(self) -> None:
        """Start listening."""
        self._pubsub = self.redis.pubsub()
        self._task = asyncio.create_task(self._listen(), name="inkstream-awareness-bus")

    async def close(self) -> None:
        """Stop listening."""
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self.redis.aclose()

    def attach(self, room: Room) -> None:
        """Relay `room`'s awareness to other nodes and theirs to it."""
        self._rooms[room.board_id] = room
        channel = self.channel(room.board_id)
        room.share = lambda frame: self._publish(channel, frame)
        self._spawn(self._pubsub.subscribe(channel))

    def detach(self, room: Room) -> None:
        """Stop relaying for `room` (its last connection left)."""
        if self._rooms.get(room.board_id) is room:
            del self._rooms[room.board_id]
            self._spawn(self._pubsub.unsubscribe(self.channel(room.board_id)))
        room.share = None

    def _publish(self, channel: str, frame: bytes) -> None:
        self._spawn(self.redis.publish(channel, self.node + _SEP + frame))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._sends.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[Any]) -> None:
        self._sends.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("awareness relay failed: %s", task.exception())

    async def _listen(self) -> None:
        delay = 0.05
        while True:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)  # nothing subscribed yet: get_message would return at once
                    continue
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                delay = 0.05
                if message is None or message.get("type") != "message":
                    continue
                self._deliver(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("awareness bus lost its subscription (%s); resubscribing", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _deliver(self, channel: bytes, data: bytes) -> None:
        sender, _, frame = data.partition(_SEP)
        if sender == self.node:
            return
        board = channel.decode().rsplit(":", 1)[-1].strip("{}")
        room = self._rooms.get(board)
        if room is None:
            return
        try:
            message = protocol.decode(frame)
        except protocol.ProtocolError as exc:
            log.warning("dropping a malformed awareness frame for board %s: %s", board, exc)
            return
        if isinstance(message, protocol.AwarenessMessage):
            room.apply_remote_awareness(message)
