"""A tiny y-websocket client in Python: pycrdt for the CRDT, `websockets` for the transport.

Speaks the same protocol as the JavaScript `WebsocketProvider`: on open it sends sync step 1,
answers the server's step 1 with step 2, applies step 2 / update messages, sends every local
change as a sync update, and relays awareness. Used by the interop tests and by
benchmarks/join_time.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pycrdt import (
    Awareness,
    Doc,
    TransactionEvent,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    read_message,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class YWebsocketClient:
    """One pycrdt `Doc` kept in sync with a y-websocket room at `url` (e.g. ws://h:p/ws/board)."""

    def __init__(self, url: str, doc: Doc | None = None) -> None:
        self.url = url
        self.doc = doc if doc is not None else Doc()
        self.awareness = Awareness(self.doc)
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.step1_sent_at: float | None = None
        self.step2_received_at: float | None = None
        self.step2_applied_at: float | None = None
        self.step2_bytes = 0
        self.updates_received = 0
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._applying_remote = False
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._sub: Any = None

    async def __aenter__(self) -> YWebsocketClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the socket, send sync step 1 and start the receive loop."""
        self._ws = await connect(self.url, max_size=None, proxy=None, open_timeout=10)
        self._sub = self.doc.observe(self._on_local_change)
        self.step1_sent_at = time.perf_counter()
        await self._ws.send(create_sync_message(self.doc))
        self._task = asyncio.create_task(self._receive())
        self._sender = asyncio.create_task(self._send_loop())

    async def stop(self) -> None:
        """Close the socket cleanly and stop the background tasks."""
        if self._sub is not None:
            self.doc.unobserve(self._sub)
            self._sub = None
        if self._ws is not None:
            await self._ws.close()
        for task in (self._task, self._sender):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, ConnectionClosed):
                    pass

    async def wait_synced(self, within: float = 15.0) -> None:
        """Wait until the server's sync step 2 has been applied."""
        await asyncio.wait_for(self.synced.wait(), within)

    async def flush(self, within: float = 15.0) -> None:
        """Wait until every local update has been handed to the socket."""
        deadline = time.monotonic() + within
        while not self._outbox.empty():
            if time.monotonic() > deadline:
                raise TimeoutError("outgoing updates not flushed")
            await asyncio.sleep(0.01)

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        """Set the local awareness state and send it."""
        self.awareness.set_local_state(state)
        payload = self.awareness.encode_awareness_update([self.doc.client_id])
        self._outbox.put_nowait(create_awareness_message(payload))

    def _on_local_change(self, event: TransactionEvent) -> None:
        if self._applying_remote:
            return  # do not echo what the server just sent us
        self._outbox.put_nowait(create_update_message(event.update))

    async def _send_loop(self) -> None:
        assert self._ws is not None
        while True:
            message = await self._outbox.get()
            await self._ws.send(message)

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                if isinstance(message, str):
                    continue
                self._handle(message)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.close_reason = self._ws.close_reason
            self.closed.set()

    def _handle(self, message: bytes) -> None:
        msg_type = message[0]
        if msg_type == YMessageType.SYNC:
            sub_type = message[1]
            if sub_type == YSyncMessageType.SYNC_STEP2 and self.step2_received_at is None:
                self.step2_received_at = time.perf_counter()  # on arrival, before applying it
                self.step2_bytes = len(message)
            self._applying_remote = True
            try:
                reply = handle_sync_message(message[1:], self.doc)
            finally:
                self._applying_remote = False
            if reply is not None:
                self._outbox.put_nowait(reply)
            if sub_type == YSyncMessageType.SYNC_STEP2 and not self.synced.is_set():
                self.step2_applied_at = time.perf_counter()
                self.synced.set()
            elif sub_type == YSyncMessageType.SYNC_UPDATE:
                self.updates_received += 1
        elif msg_type == YMessageType.AWARENESS:
            self.awareness.apply_awareness_update(read_message(message[1:]), "remote")
