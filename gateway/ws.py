"""The y-websocket endpoint: /ws/{board}.

Per connection: send sync step 1 and the room's awareness; answer the client's step 1 with a step 2
for that client only; accept step 2 / update messages through the engine (broadcast happens only
after the log has them); relay awareness. Bad input closes this one connection with a code and a
reason; nothing of it is logged and nothing else is disturbed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from engine.board_id import validate_board_id
from engine.errors import (
    BoardTooLarge,
    InkstreamError,
    InvalidBoardId,
    MissingDependencies,
    StorageUnavailable,
    UpdateTooLarge,
)
from engine.events import Event, author_name
from engine.live_board import LiveBoard
from gateway import protocol
from gateway.rooms import (
    CLOSE_BAD_REQUEST,
    CLOSE_INTERNAL,
    CLOSE_TOO_LARGE,
    CLOSE_UNSUPPORTED,
    Connection,
    Room,
)
from gateway.system import System
from gateway.ws_direct import DIRECT_LANE, MESSAGES_PER_TURN, DirectLane

log = logging.getLogger(__name__)

MAX_INFLIGHT = 1024  # appends one connection may have in flight before we wait for the log
CLOSE_GRACE_SECONDS = 5.0  # how long a closed client has to answer our close frame
PARK_SECONDS = 30.0  # how long an update may wait for the changes it builds on


def _user(websocket: WebSocket) -> str | None:
    return author_name(websocket.query_params.get("user"))


async def board_socket(websocket: WebSocket) -> None:
    """Serve one y-websocket client of one board."""
    system: System = websocket.app.state.system
    settings = system.settings
    board_id = websocket.path_params["board"]
    await websocket.accept()
    try:
        validate_board_id(board_id)
    except InvalidBoardId as exc:
        system.metrics.updates_rejected.labels(exc.reason).inc()
        await close_and_drain(websocket, CLOSE_BAD_REQUEST, f"invalid board id: {exc}")
        return
    # `token` is reserved for authentication; it is accepted and ignored until auth lands.
    try:
        board = await system.service.open(board_id)
    except InkstreamError as exc:
        await close_and_drain(websocket, CLOSE_INTERNAL, f"cannot load board: {exc}")
        return
    system.service.retain(board_id)

    lane: DirectLane | None = (websocket.scope.get("extensions") or {}).get(DIRECT_LANE)
    conn = Connection(
        board_id,
        _user(websocket),
        websocket.send_bytes,
        websocket.close,
        max_queue=settings.max_send_queue,
        max_queue_bytes=settings.max_send_queue_bytes,
        keepalive_seconds=settings.keepalive_seconds,
        write_now=lane.write if lane is not None else None,
    )
    room = system.rooms.get(board_id)
    if room is None:
        room = system.rooms[board_id] = Room(board_id)
        system.service.listen(board_id, room.on_event)
        if system.awareness is not None:
            system.awareness.attach(room)
    room.connections.add(conn)
    system.metrics.connections.inc()
    system.metrics.boards_loaded.set(system.service.loaded)
    conn.start()
    conn.send(protocol.sync_step1(board.state_vector()))
    present = room.awareness_frame()
    if present is not None:
        conn.send(present)
    try:
        await _receive_loop(websocket, system, conn, room, lane)
    finally:
        room.leave(conn)
        await conn.stop()
        if not room.connections:
            system.service.unlisten(board_id, room.on_event)
            if system.rooms.get(board_id) is room:
                del system.rooms[board_id]
            if system.awareness is not None:
                system.awareness.detach(room)
        system.service.release(board_id)
        system.metrics.connections.dec()


async def close_and_drain(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with a code and reason, then read until the client answers the close.

    Returning right after sending the close would let the kernel reset the connection when the
    client's next frames arrive (y-websocket sends sync step 1 at once), and the client would see
    1006 instead of our code and reason.
    """
    await websocket.close(code, reason[:120])
    try:
        async with asyncio.timeout(CLOSE_GRACE_SECONDS):
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
    except (TimeoutError, WebSocketDisconnect, RuntimeError):
        pass


async def _receive_loop(
    websocket: WebSocket, system: System, conn: Connection, room: Room, lane: DirectLane | None
) -> None:
    inflight: deque[asyncio.Future[Event | None]] = deque()
    conn.retry_parked = lambda: _retry_parked(system, conn, inflight)
    loop = asyncio.get_running_loop()
    waiting = False  # the loop below holds a message (a step 1's reply, backpressure, a turn): the next ones queue

    def direct(frame: bytes) -> bool:
        """A message straight from the socket (gateway.ws_direct), handled now; False: the ASGI way."""
        if waiting:
            return False  # behind the one the loop holds: keep the order
        if conn.closed.is_set():
            return True  # closing: ignored, as in the loop below
        if not _never_waits(frame):
            return False  # e.g. sync step 1: the loop waits for the log before it reads on
        if _in_flight(inflight) >= MAX_INFLIGHT:
            return False  # the loop reads it and then waits for the log
        try:
            _on_frame(system, conn, room, frame, inflight)
        except Exception:  # a bug, not bad input: this connection ends (as an ASGI app crash would end it)
            log.exception("closing %s on board %s: handling a frame failed", conn.id, conn.board_id)
            conn.close(CLOSE_INTERNAL, "internal error")
        return True

    if lane is not None:
        lane.deliver_to(direct)
    try:
        async with asyncio.timeout(None) as deadline:
            # Once we close the connection, the client has CLOSE_GRACE_SECONDS to answer the close
            # (so it reads our code and reason); a client that never reads is dropped then.
            conn.on_closing = lambda: deadline.reschedule(loop.time() + CLOSE_GRACE_SECONDS)
            handled = 0
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if conn.closed.is_set():
                    continue  # closing: ignore what the client still sends until it answers the close
                handled += 1
                waiting = True
                try:
                    step1_reply = _on_frame(system, conn, room, message.get("bytes"), inflight)
                    if step1_reply is not None:
                        await step1_reply
                    if _in_flight(inflight) >= MAX_INFLIGHT:  # backpressure: wait for the log before reading more
                        await asyncio.wait([inflight[0]])
                    elif handled % MESSAGES_PER_TURN == 0:
                        # receive() does not suspend while messages are queued: let other connections
                        # have the loop between every MESSAGES_PER_TURN of this one's.
                        await asyncio.sleep(0)
                finally:
                    waiting = False
    except (WebSocketDisconnect, TimeoutError):
        return
    finally:
        if lane is not None:
            lane.deliver_to(None)
        # Let accepted-but-not-yet-durable updates finish: their broadcast happens when they do.
        for future in inflight:
            if not future.done():
                try:
                    await future
                except InkstreamError:
                    pass


def _in_flight(inflight: deque[asyncio.Future[Event | None]]) -> int:
    """How many of the connection's appends the log has not settled yet (settled ones are dropped)."""
    while inflight and inflight[0].done():
        inflight.popleft()
    return len(inflight)


def _never_waits(frame: bytes) -> bool:
    """Whether `_on_frame` handles `frame` without waiting: sync step 2, update, awareness, query
    awareness (and garbage starting like them: rejected at once). Everything else -- a sync step 1,
    whose reply waits for the log -- goes through the receive loop."""
    head = frame[:2]
    return head == b"\x00\x01" or head == b"\x00\x02" or frame[:1] == b"\x01" or frame[:1] == b"\x03"


def _on_frame(
    system: System,
    conn: Connection,
    room: Room,
    frame: bytes | None,
    inflight: deque[asyncio.Future[Event | None]],
) -> Coroutine[Any, Any, None] | None:
    """Handle one client frame; bad input closes the connection with a code and a reason.

    Returns what is left to await for a sync step 1 (its reply, once the log has what it read),
    None for every other frame, which is handled completely here.
    """
    limits = system.service.limits  # built once (Settings.limits makes a new one per call)
    if frame is None:
        _reject(system, conn, "text_frame", CLOSE_UNSUPPORTED, "binary frames only (y-websocket protocol)")
        return None
    if len(frame) > limits.max_frame_bytes:
        detail = f"frame of {len(frame)} bytes exceeds {limits.max_frame_bytes}"
        _reject(system, conn, "too_large", CLOSE_TOO_LARGE, detail)
        return None
    if frame[:1] == b"\x01" and len(frame) > limits.max_awareness_bytes:  # checked before decoding it
        _reject(system, conn, "too_large", CLOSE_TOO_LARGE, "awareness message too large")
        return None
    try:
        decoded = protocol.decode(frame)
    except protocol.ProtocolError as exc:
        _reject(system, conn, "protocol", CLOSE_BAD_REQUEST, f"malformed message: {exc}")
        return None
    if isinstance(decoded, protocol.SyncMessage):
        return _on_sync(system, conn, decoded, inflight)
    if isinstance(decoded, protocol.AwarenessMessage):
        room.apply_awareness(conn, decoded)
    elif decoded.kind == protocol.MSG_QUERY_AWARENESS:
        present = room.awareness_frame()
        if present is not None:
            conn.send(present)
    return None


def _on_sync(
    system: System, conn: Connection, message: protocol.SyncMessage, inflight: deque[asyncio.Future[Event | None]]
) -> Coroutine[Any, Any, None] | None:
    """Handle one sync message (a step 1: its reply, still to be awaited)."""
    board = system.service.loaded_board(conn.board_id)
    if board is None:
        conn.close(CLOSE_INTERNAL, "board was reset; reconnect to resync")
        return None
    if message.step == protocol.SYNC_STEP1:
        started = time.perf_counter()
        try:
            reply = protocol.sync_step2(board.state(message.payload))
        except BaseException as exc:  # pycrdt rejects a malformed state vector (possibly with a panic)
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            _reject(system, conn, "invalid_state_vector", CLOSE_BAD_REQUEST, "sync step 1 has an invalid state vector")
            return None
        system.metrics.join_seconds.observe(time.perf_counter() - started)
        return _reply_when_durable(system, conn, reply)
    # STEP2 and UPDATE both carry an update to accept.
    if _submit(system, conn, board, message.payload, inflight) and conn.parked:
        _retry_parked(system, conn, inflight)
    return None


async def _reply_when_durable(system: System, conn: Connection, reply: bytes) -> None:
    """Send `reply` (read from the live board) once the log has everything it includes: never serve
    what a crash could still take back. The receive loop awaits this before it reads on, so one
    client's sync step 1 messages are answered one at a time (each reply is a whole board state)."""
    try:
        await system.service.durable(conn.board_id)
    except StorageUnavailable as exc:
        conn.close(CLOSE_INTERNAL, str(exc))
        return
    conn.send(reply)


def _submit(
    system: System, conn: Connection, board: LiveBoard, update: bytes, inflight: deque[asyncio.Future[Event | None]]
) -> bool:
    """Accept one update from `conn`; park it if it builds on changes not here yet; False if closed."""
    try:
        future = system.service.submit_loaded(board, update, conn.client_id, conn.user, origin=conn)
    except MissingDependencies as exc:
        # A client's edit can race ahead of the sync step 2 that carries what it builds on (or, in
        # distributed mode, of the fan-out). Keep it outside the Doc — never served, never logged —
        # and retry it as the board changes; give up with 4400 if its dependencies never come.
        if conn.park(update, time.monotonic()):
            return True
        _reject(system, conn, exc.reason, CLOSE_BAD_REQUEST, f"{exc} (waited too long)")
        return False
    except (UpdateTooLarge, BoardTooLarge) as exc:
        _reject(system, conn, exc.reason, CLOSE_TOO_LARGE, str(exc))
        return False
    except StorageUnavailable as exc:
        conn.close(CLOSE_INTERNAL, str(exc))
        return False
    except InkstreamError as exc:
        _reject(system, conn, exc.reason, CLOSE_BAD_REQUEST, str(exc))
        return False
    if not future.done():
        inflight.append(future)
        future.add_done_callback(lambda f: _append_failed(conn, f))
    return True


def _retry_parked(system: System, conn: Connection, inflight: deque[asyncio.Future[Event | None]]) -> None:
    """Apply parked updates whose dependencies have arrived (in order, until no more progress)."""
    board = system.service.loaded_board(conn.board_id)
    if board is None or conn.closed.is_set():
        return
    progress = True
    while progress and conn.parked:
        progress = False
        waiting, conn.parked = conn.parked, []
        for update, since in waiting:
            before = len(conn.parked)
            if not _submit(system, conn, board, update, inflight):
                return
            if len(conn.parked) == before:  # it went in (or changed nothing)
                progress = True
            else:
                conn.parked[-1] = (update, since)  # still waiting: keep its original time
    if conn.parked and time.monotonic() - conn.parked[0][1] > PARK_SECONDS:
        _reject(
            system,
            conn,
            "missing_dependencies",
            CLOSE_BAD_REQUEST,
            "update builds on changes this board never received; resync",
        )


def _append_failed(conn: Connection, future: asyncio.Future[Event | None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        conn.close(CLOSE_INTERNAL, "update could not be stored; reconnect to resync")


def _reject(system: System, conn: Connection, reason: str, code: int, detail: str) -> None:
    system.metrics.updates_rejected.labels(reason).inc()
    log.info("closing %s on board %s: %s (%s)", conn.id, conn.board_id, detail, code)
    conn.close(code, detail)
