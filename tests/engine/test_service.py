"""BoardService over the real embedded adapters: accept, load, unload, failures."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Map

from engine.adapters.sqlite_log import SqliteEventLog
from engine.errors import InvalidBoardId, InvalidUpdate, StorageUnavailable
from engine.events import Event, Provenance
from engine.fold import load_doc
from engine.model import board_json, dumps_json, render, render_shapes
from engine.service import BoardService
from projections.local_projector import LocalProjector
from projections.sqlite_store import SqliteProjectionStore


class Author:
    """A pycrdt client that produces one update per shape it draws."""

    def __init__(self) -> None:
        self.doc: Doc = Doc()
        self.shapes = self.doc.get("shapes", type=Map)

    def draw(self, shape_id: str, x: float = 0.0) -> bytes:
        before = self.doc.get_state()
        self.shapes[shape_id] = Map({"type": "rect", "x": x, "y": 0.0, "w": 10.0, "h": 10.0, "z": shape_id})
        return bytes(self.doc.get_update(before))


class Stack:
    def __init__(self, data: Path, checkpoint_every: int = 1000, idle: float = 60.0) -> None:
        self.log = SqliteEventLog(data / "events.db")
        self.store = SqliteProjectionStore(data / "projections.db")
        self.projector = LocalProjector(self.log, self.store, checkpoint_every=checkpoint_every)
        self.service = BoardService(self.log, self.store, idle_seconds=idle)

    async def __aenter__(self) -> "Stack":
        await self.log.start()
        await self.store.start()
        await self.service.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.projector.close()
        await self.service.close()
        await self.log.close()
        await self.store.close()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with Stack(tmp_path) as s:
        yield s


async def test_submit_logs_effective_delta_and_notifies_after_append(stack: Stack) -> None:
    seen: list[tuple[Event, object]] = []
    board = await stack.service.open("b1")
    stack.service.listen("b1", lambda e, origin: seen.append((e, origin)))
    author = Author()
    update = author.draw("s1")
    event = await stack.service.submit("b1", update, client_id="c1", user="ann", origin="conn-1")
    assert event is not None and event.version == 1 and event.provenance.user == "ann"
    assert seen == [(event, "conn-1")]
    assert board.version == 1
    # Re-sending the same update changes nothing: no new version, nothing logged, nobody told.
    assert await stack.service.submit("b1", update, client_id="c1") is None
    assert await stack.log.head("b1") == 1 and len(seen) == 1


async def test_invalid_input_is_never_logged(stack: Stack) -> None:
    with pytest.raises(InvalidUpdate):
        await stack.service.submit("b1", b"\x07not-yjs", client_id="c1")
    with pytest.raises(InvalidBoardId):
        await stack.service.submit("bad id", Author().draw("s1"), client_id="c1")
    assert await stack.log.head("b1") == 0


async def test_board_loads_from_checkpoint_plus_log_tail(tmp_path: Path) -> None:
    author = Author()
    async with Stack(tmp_path, checkpoint_every=10) as s:
        await s.projector.start()
        for i in range(25):
            await s.service.submit("b1", author.draw(f"s{i:02}", float(i)), client_id="c")
        await _wait(lambda: s.projector.cursor >= 25)
        checkpoint = await s.store.latest("b1")
        assert checkpoint is not None and checkpoint.version == 20
    async with Stack(tmp_path) as s:  # fresh process: load = checkpoint 20 + versions 21..25
        board = await s.service.open("b1")
        assert board.version == 25
        assert [sh["id"] for sh in render_shapes(board.doc)] == [f"s{i:02}" for i in range(25)]
        # The log alone folds to the same board.
        replayed = load_doc(None, [e.update for e in await s.log.read("b1")])
        assert render_shapes(replayed) == render_shapes(board.doc)


async def test_idle_boards_unload_only_when_unused(stack: Stack) -> None:
    stack.service.idle_seconds = 0
    await stack.service.submit("b1", Author().draw("s1"), client_id="c")
    await stack.service.open("b2")
    stack.service.retain("b2")
    assert sorted(stack.service.unload_idle()) == ["b1"]
    assert stack.service.loaded_board("b2") is not None
    stack.service.release("b2")
    assert stack.service.unload_idle() == ["b2"]
    board = await stack.service.open("b1")  # reloads from the log
    assert board.version == 1


async def test_concurrent_loads_share_one_board(stack: Stack) -> None:
    boards = await asyncio.gather(*(stack.service.open("b1") for _ in range(10)))
    assert all(b is boards[0] for b in boards)


class FailingLog:
    """An event log whose appends fail (disk full); everything else delegates to a real log."""

    def __init__(self, real: SqliteEventLog) -> None:
        self.real = real

    def append(
        self,
        board: str,
        update: bytes,
        provenance: Provenance,
        wait_for_version: bool = True,
        then: Callable[[asyncio.Future[Event]], None] | None = None,
    ) -> asyncio.Future[Event]:
        failed: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        failed.set_exception(StorageUnavailable("disk full"))
        if then is not None:
            failed.add_done_callback(then)
        return failed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_storage_failure_rejects_and_resets_the_board(stack: Stack) -> None:
    author = Author()
    await stack.service.submit("b1", author.draw("s1"), client_id="c")
    resets: list[str] = []
    stack.service.on_reset(lambda board, reason: resets.append(board))
    stack.service.log = FailingLog(stack.log)  # type: ignore[assignment]
    with pytest.raises(StorageUnavailable):
        await stack.service.submit("b1", author.draw("s2"), client_id="c")
    assert resets == ["b1"]
    stack.service.log = stack.log
    board = await stack.service.open("b1")  # reloaded from the log: the rejected update is not there
    assert [s["id"] for s in render_shapes(board.doc)] == ["s1"]


async def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


class _QuietFanOut:
    """Fan-out port that delivers nothing by itself: the test calls `apply_remote` as the stream would."""

    async def publish(self, event: Event) -> None:
        pass

    async def subscribe(self, board: str, after_version: int, listener: Any) -> None:
        pass

    async def unsubscribe(self, board: str) -> None:
        pass


async def test_own_updates_returning_through_the_fan_out_are_not_applied_twice(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    store = SqliteProjectionStore(tmp_path / "projections.db")
    service = BoardService(log, store, fanout=_QuietFanOut())
    await log.start()
    await store.start()
    await service.start()
    try:
        mine, theirs = Author(), Author()
        event = await service.submit("b", mine.draw("s1"), client_id="c")
        assert event is not None
        board = service.loaded_board("b")
        assert board is not None
        integrated: list[bytes] = []
        real_integrate = board.integrate
        board.integrate = lambda update, **kw: integrated.append(update) or real_integrate(update, **kw)  # type: ignore[method-assign]
        heard: list[Event] = []
        service.listen("b", lambda e, _origin: heard.append(e))

        service.apply_remote(Event("b", 7, event.update, event.provenance))  # our own, back from the stream
        assert integrated == [] and heard == [] and board.version == 7

        other = theirs.draw("s2")
        service.apply_remote(Event("b", 8, other, event.provenance))  # another node's: applied and heard
        assert integrated == [other] and [e.version for e in heard] == [8]
        assert sorted(s["id"] for s in render_shapes(board.doc)) == ["s1", "s2"]

        service.apply_remote(Event("b", 7, event.update, event.provenance))  # a re-delivery: applied, no effect
        assert integrated == [other, event.update] and len(heard) == 1
    finally:
        await service.close()
        await log.close()
        await store.close()


async def test_a_board_recovers_after_another_writer_took_its_next_version(stack: Stack) -> None:
    """Another writer of events.db (what `inkstream import --data-dir` next to a server used to be)
    took version 2: one submit fails and drops the board, the next reloads it from the log with the
    other writer's update and is numbered after it, instead of every submit failing until restart."""
    mine, theirs = Author(), Author()
    assert (await stack.service.submit("b1", mine.draw("s1"), client_id="c")).version == 1  # type: ignore[union-attr]
    foreign = sqlite3.connect(stack.log.path, isolation_level=None, timeout=10)
    try:
        foreign.execute(
            "INSERT INTO events (board, version, ts, client, user, data) VALUES ('b1', 2, 2000.0, 'x', 'other', ?)",
            (theirs.draw("s2"),),
        )
    finally:
        foreign.close()
    resets: list[str] = []
    stack.service.on_reset(lambda board, reason: resets.append(board))
    update = mine.draw("s3")
    with pytest.raises(StorageUnavailable):
        await stack.service.submit("b1", update, client_id="c")
    assert resets == ["b1"] and stack.service.loaded_board("b1") is None

    event = await stack.service.submit("b1", update, client_id="c")  # the client re-sends it
    assert event is not None and event.version == 3
    board = stack.service.loaded_board("b1")
    assert board is not None and board.version == 3
    assert sorted(s["id"] for s in render_shapes(board.doc)) == ["s1", "s2", "s3"]
    assert [e.version for e in await stack.log.read("b1")] == [1, 2, 3]
    replayed = load_doc(None, [e.update for e in await stack.log.read("b1")])
    assert render_shapes(replayed) == render_shapes(board.doc)


async def test_durable_gives_the_version_of_what_was_read_when_it_was_called(stack: Stack) -> None:
    """The read point is the call: updates applied after it (even in the same group commit) do not
    raise the version a reader labels what it read with (GET /api/boards/{id} renders in between)."""
    board = await stack.service.open("b1")
    author = Author()
    first = stack.service.submit_loaded(board, author.draw("s1"), client_id="c")
    read = render_shapes(board.doc)
    durable = stack.service.durable("b1")
    second = stack.service.submit_loaded(board, author.draw("s2"), client_id="c")  # same commit as the first
    assert not durable.done()
    assert await durable == 1 and [s["id"] for s in read] == ["s1"]
    assert (await first).version == 1 and (await second).version == 2  # type: ignore[union-attr]
    assert await stack.service.durable("b1") == 2


async def test_a_board_renders_off_the_event_loop_and_caches_only_what_is_current(stack: Stack) -> None:
    board = await stack.service.open("big")
    author = Author()
    with author.doc.transaction():
        for i in range(3000):
            shape = {"type": "rect", "x": float(i), "y": 0.0, "w": 1.0, "h": 1.0, "z": f"s{i:04d}"}
            author.shapes[f"s{i:04d}"] = Map(shape)
    await stack.service.submit("big", bytes(author.doc.get_update()), client_id="c")
    assert board.cached_body() is None
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        reading = board.read_for_render()
        before = ticks
        body = await board.render(reading)
        assert ticks - before > 1, "the event loop stood still while the board rendered"
    finally:
        ticking.cancel()
    assert board_json("big", 1, body) == dumps_json(render(board.doc, "big", 1)).encode()
    assert board.cached_body() == body
    reading = board.read_for_render()
    await stack.service.submit("big", author.draw("late"), client_id="c")  # the Doc changes while it renders
    stale = await board.render(reading)
    assert board.cached_body() is None and b'"late"' not in stale
