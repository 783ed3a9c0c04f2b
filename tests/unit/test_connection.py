"""gateway.rooms.Connection's outbound path: written at once when idle, queued (in order) while a
write waits, bounded, and closed after what was queued. The socket is a recording stand-in."""

from __future__ import annotations

import asyncio

from gateway import protocol
from gateway.rooms import CLOSE_TRY_AGAIN, Connection


class Socket:
    """Records frames; `hold()` makes the next writes wait until `release()`."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.gate: asyncio.Event | None = None
        self.fail: BaseException | None = None

    def hold(self) -> None:
        self.gate = asyncio.Event()

    def release(self) -> None:
        assert self.gate is not None
        gate, self.gate = self.gate, None
        gate.set()

    async def send(self, frame: bytes) -> None:
        if self.fail is not None:
            raise self.fail
        if self.gate is not None:
            await self.gate.wait()
        self.frames.append(frame)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def connection(sock: Socket, **kw: int) -> Connection:
    conn = Connection("b", "ann", sock.send, sock.close, keepalive_seconds=60, **kw)
    conn.start()
    return conn


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_idle_connection_writes_at_once() -> None:
    sock = Socket()
    conn = connection(sock)
    conn.send(b"\x01one")
    assert sock.frames == [b"\x01one"]  # no trip through the event loop
    await conn.stop()


async def test_frames_sent_while_a_write_waits_follow_it_in_order() -> None:
    sock = Socket()
    conn = connection(sock)
    sock.hold()
    conn.send(b"\x01first")  # has to wait: continues in a task
    conn.send(b"\x01second")
    conn.send(b"\x01third")
    await settle()
    assert sock.frames == []
    sock.release()
    await settle()
    assert sock.frames == [b"\x01first", b"\x01second", b"\x01third"]
    conn.send(b"\x01fourth")  # idle again: written at once
    assert sock.frames[-1] == b"\x01fourth"
    await conn.stop()


async def test_updates_queued_behind_a_waiting_write_go_out_merged() -> None:
    from pycrdt import Doc, Map

    doc = Doc()
    doc["shapes"] = shapes = Map()
    updates = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(3):
        shapes[f"s{i}"] = i
    sock = Socket()
    conn = connection(sock)
    sock.hold()
    for update in updates:
        conn.send(protocol.sync_update(update))
    sock.release()
    await settle()
    assert len(sock.frames) == 2  # the first, then the two queued behind it as one update
    replica = Doc()
    for frame in sock.frames:
        payload = protocol.update_payload(frame)
        assert payload is not None
        replica.apply_update(payload)
    assert replica.get("shapes", type=Map).to_py() == {"s0": 0.0, "s1": 1.0, "s2": 2.0}
    await conn.stop()


async def test_a_client_too_far_behind_is_closed_to_resync() -> None:
    sock = Socket()
    conn = connection(sock, max_queue=3)
    sock.hold()
    for i in range(5):
        conn.send(b"\x01%d" % i)
    assert conn.closed.is_set() and conn.close_code == CLOSE_TRY_AGAIN
    sock.release()
    await settle()
    assert sock.closed is not None and sock.closed[0] == CLOSE_TRY_AGAIN
    await conn.stop()


async def test_close_comes_after_what_was_queued() -> None:
    sock = Socket()
    conn = connection(sock)
    sock.hold()
    conn.send(b"\x01a")
    conn.send(b"\x01b")
    conn.close(4400, "bye")
    conn.send(b"\x01late")  # after close: dropped
    sock.release()
    await settle()
    assert sock.frames == [b"\x01a", b"\x01b"]
    assert sock.closed == (4400, "bye")
    await conn.stop()


async def test_a_failed_write_ends_the_connection() -> None:
    sock = Socket()
    conn = connection(sock)
    sock.fail = ConnectionResetError("peer went away")
    conn.send(b"\x01a")
    assert conn.closed.is_set()
    await settle()
    await conn.stop()


async def test_stop_cancels_a_write_that_never_finishes() -> None:
    sock = Socket()
    conn = connection(sock)
    sock.hold()
    conn.send(b"\x01stuck")
    await asyncio.wait_for(conn.stop(), 1)
