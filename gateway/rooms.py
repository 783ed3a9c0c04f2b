"""Rooms: the live connections of each board, awareness (presence), and broadcasting.

Each connection has a bounded outbound queue drained by its own sender task, so one slow client
never delays the others; a client that falls too far behind is closed (1013) and resyncs on
reconnect. Awareness entries are owned by the connection that sent them and removed for everyone
when that connection ends, cleanly or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycrdt import merge_updates

from engine.events import Event, author_name
from engine.tasks import cancel_and_wait, start_eagerly
from gateway import protocol

log = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_TOO_LARGE = 4413
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
CLOSE_UNSUPPORTED = 1003

_ids = itertools.count(1)

MAX_MERGED_UPDATES = 256
MAX_PARKED = 256  # updates one connection may have waiting for their dependencies
MAX_PARKED_BYTES = 8 * 1024 * 1024  # queued updates one outbound frame may merge


_KEEPALIVE = protocol.awareness([])  # an empty awareness update: harmless, resets client timeouts


@dataclass(eq=False)
class Connection:
    """One WebSocket client of one board."""

    board_id: str
    user: str | None
    send_frame: Callable[[bytes], Any]  # async: send one binary frame
    close_socket: Callable[[int, str], Any]  # async: close with code and reason
    max_queue: int = 4096
    max_queue_bytes: int = 64 * 1024 * 1024
    keepalive_seconds: float = 10.0
    id: str = field(default_factory=lambda: f"c{next(_ids)}")
    yjs_client_id: int | None = None
    awareness_ids: set[int] = field(default_factory=set)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    on_closing: Callable[[], None] | None = None  # set by the receive loop: start the close deadline
    close_code: int | None = None
    close_reason: str = ""
    _frames: deque[bytes] = field(default_factory=deque)
    _queued_bytes: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _sender: asyncio.Task[None] | None = None
    _busy: bool = False  # a frame is being written by `send` itself, not the sender task
    _writing: asyncio.Task[Any] | None = None  # that write, once it had to wait
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    _last_sent: float = 0.0  # loop time of the last frame handed to the socket
    _keepalive: asyncio.TimerHandle | None = None
    #: Write one frame now if the socket can take it, else False (gateway.ws_direct); None: ASGI only.
    write_now: Callable[[bytes], bool] | None = None
    parked: list[tuple[bytes, float]] = field(default_factory=list)  # updates waiting for their dependencies
    retry_parked: Callable[[], None] | None = None  # set by the endpoint: retry them when the board changes

    def park(self, update: bytes, now: float) -> bool:
        """Keep an update whose dependencies have not arrived; False if too much is waiting already."""
        if len(self.parked) >= MAX_PARKED or sum(len(u) for u, _ in self.parked) + len(update) > MAX_PARKED_BYTES:
            return False
        self.parked.append((update, now))
        return True

    @property
    def client_id(self) -> str:
        """Provenance client id: the Yjs client id once known, else the connection id."""
        return str(self.yjs_client_id) if self.yjs_client_id is not None else self.id

    def adopt_display_name(self, state: Any) -> None:
        """Take the author name for provenance from the awareness state's `user.name` (y-websocket
        convention, also what the web app sets), so a name chosen or changed after connecting counts."""
        user = state.get("user") if isinstance(state, dict) else None
        name = author_name(user.get("name") if isinstance(user, dict) else None)
        if name is not None:
            self.user = name

    def start(self) -> None:
        """Start draining the outbound queue, and the keep-alive timer."""
        loop = self._loop
        self._last_sent = loop.time()
        self._sender = asyncio.create_task(self._send_forever(), name=f"inkstream-send-{self.id}")
        self._keepalive = loop.call_later(self.keepalive_seconds, self._keep_alive)

    def _keep_alive(self) -> None:
        """Send an empty awareness update on a connection idle for `keepalive_seconds` (y-websocket
        clients reconnect after 30 s of silence); one timer per connection, re-armed from the last send
        rather than a timeout on every wait of the sender."""
        if self.closed.is_set():
            return
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._last_sent
        if idle >= self.keepalive_seconds and not self._frames:
            self.send(_KEEPALIVE)
            idle = 0.0
        self._keepalive = loop.call_later(max(0.01, self.keepalive_seconds - idle), self._keep_alive)

    def send(self, frame: bytes) -> None:
        """Queue a frame; close the connection if the client is too far behind (by frames or bytes)."""
        if self.closed.is_set():
            return
        if len(self._frames) >= self.max_queue or self._queued_bytes + len(frame) > self.max_queue_bytes:
            log.warning("closing %s on board %s: client too slow", self.id, self.board_id)
            self._frames.clear()  # it cannot keep up: close now, it resyncs on reconnect
            self._queued_bytes = 0
            self.close(CLOSE_TRY_AGAIN, "client too slow; reconnect to resync")
            return
        if not self._frames and not self._busy:
            # Nothing queued: write it now, in the caller, instead of waking the sender task for it
            # (measured: ~6 % of a gateway's CPU at 1,000 updates/s in), straight to the socket where
            # the server offers that. Only a write that has to wait (a full socket buffer) continues
            # in a task; frames sent meanwhile queue up behind it.
            self._busy = True
            try:
                if self.write_now is not None and self.write_now(frame):
                    self._busy = False
                    self._last_sent = self._loop.time()
                    return
                rest = start_eagerly(self.send_frame(frame), name=f"inkstream-write-{self.id}")
            except Exception as exc:
                log.debug("send to %s failed: %r", self.id, exc)
                self._busy = False
                self.closed.set()
                self._wake.set()
                return
            if rest is None:
                self._busy = False
                self._last_sent = self._loop.time()
                return
            self._writing = rest  # keep a reference: the loop holds tasks only weakly
            rest.add_done_callback(self._eager_done)
            return
        self._frames.append(frame)
        self._queued_bytes += len(frame)
        self._wake.set()

    def _eager_done(self, task: asyncio.Task[Any]) -> None:
        self._busy = False
        self._writing = None
        if task.cancelled() or task.exception() is not None:
            self.closed.set()
        else:
            self._last_sent = self._loop.time()
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued are sent."""
        if self.closed.is_set():
            return
        self.close_code = code
        self.close_reason = reason
        self.closed.set()
        self._wake.set()
        if self.on_closing is not None:
            self.on_closing()

    async def _close_now(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.close_socket(code, reason[:120])

    def _next_frame(self) -> bytes:
        """The next frame to send; consecutive queued updates go out merged, as one update.

        Under backlog this sends one frame where there were many (fewer syscalls and WebSocket frames
        per update), which is what lets a busy gateway catch up instead of falling further behind.
        """
        frame = self._frames.popleft()
        self._queued_bytes -= len(frame)
        if not self._frames:
            return frame
        first = protocol.update_payload(frame)
        if first is None:
            return frame
        payloads = [first]
        while self._frames and len(payloads) < MAX_MERGED_UPDATES:
            payload = protocol.update_payload(self._frames[0])
            if payload is None:
                break
            self._queued_bytes -= len(self._frames.popleft())
            payloads.append(payload)
        if len(payloads) == 1:
            return frame
        return protocol.sync_update(bytes(merge_updates(*payloads)))

    async def _send_forever(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self._busy:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self._frames:
                    await self.send_frame(self._next_frame())
                    self._last_sent = loop.time()
                    continue
                if self.closed.is_set():
                    await self._close_now(self.close_code or 1000, self.close_reason)
                    return
                self._wake.clear()
                await self._wake.wait()
        except Exception as exc:
            log.debug("sender of %s stopped: %r", self.id, exc)
            self.closed.set()
        finally:
            if self._keepalive is not None:
                self._keepalive.cancel()

    async def stop(self, grace: float = 2.0) -> None:
        """Stop the sender task, first letting it send what is queued and the close frame if we are closing."""
        if self._sender is not None:
            if self.close_code is not None and not self._sender.done():
                with contextlib.suppress(TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(self._sender), grace)
            await cancel_and_wait(self._sender)
        await cancel_and_wait(self._writing)


@dataclass(eq=False)
class Room:
    """The connections and awareness states of one board on this node."""

    board_id: str
    connections: set[Connection] = field(default_factory=set)
    awareness: dict[int, tuple[int, Any, Connection | None]] = field(default_factory=dict)
    share: Callable[[bytes], None] | None = None  # distributed mode: send awareness frames to other nodes

    def broadcast(self, frame: bytes, exclude: Connection | None = None) -> None:
        """Queue `frame` to every connection but `exclude`."""
        for conn in self.connections:
            if conn is not exclude:
                conn.send(frame)

    def on_event(self, event: Event, origin: object | None) -> None:
        """An update was accepted: send it to everyone but the connection it came from."""
        self.broadcast(protocol.sync_update(event.update), exclude=origin if isinstance(origin, Connection) else None)
        for conn in self.connections:
            if conn.parked and conn is not origin and conn.retry_parked is not None:
                conn.retry_parked()  # the board changed: what they waited for may be here now

    def awareness_frame(self) -> bytes | None:
        """All present awareness states as one frame, or None if nobody is present."""
        entries = [(cid, clock, state) for cid, (clock, state, _c) in self.awareness.items() if state is not None]
        return protocol.awareness(entries) if entries else None

    def apply_awareness(self, conn: Connection, message: protocol.AwarenessMessage) -> None:
        """Record the sender's awareness entries and relay the frame to the others."""
        for client_id, clock, state in message.entries:
            current = self.awareness.get(client_id)
            if current is None or clock > current[0] or (clock == current[0] and state is None):
                self.awareness[client_id] = (clock, state, conn)
            if state is not None:
                conn.awareness_ids.add(client_id)
                if conn.yjs_client_id is None:
                    conn.yjs_client_id = client_id
                if client_id == conn.yjs_client_id:
                    conn.adopt_display_name(state)
        self.broadcast(message.raw, exclude=conn)
        if self.share is not None:
            self.share(message.raw)

    def apply_remote_awareness(self, message: protocol.AwarenessMessage) -> None:
        """Awareness from clients of this board on another node: record it and relay it to ours."""
        for client_id, clock, state in message.entries:
            current = self.awareness.get(client_id)
            if current is None or clock > current[0] or (clock == current[0] and state is None):
                self.awareness[client_id] = (clock, state, None)
        self.broadcast(message.raw)

    def leave(self, conn: Connection) -> None:
        """Remove a connection and tell the others its awareness states are gone."""
        self.connections.discard(conn)
        removed = []
        for client_id in conn.awareness_ids:
            current = self.awareness.get(client_id)
            if current is not None and current[2] is conn:
                del self.awareness[client_id]
                if current[1] is not None:
                    removed.append((client_id, current[0] + 1, None))
        if removed:
            frame = protocol.awareness(removed)
            self.broadcast(frame)
            if self.share is not None:
                self.share(frame)
