"""The embedded event log: dense versions, group commit, durability across reopen, one writer process."""

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine.adapters.sqlite_log import SqliteEventLog
from engine.errors import DataDirInUse, StorageUnavailable
from engine.events import Provenance

ROOT = Path(__file__).resolve().parents[2]


def _prov(i: int = 0) -> Provenance:
    return Provenance(time=1000.0 + i, client_id=f"c{i}", user="ann")


async def test_versions_are_dense_per_board_in_log_order(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    await log.start()
    try:
        events = await asyncio.gather(
            *(log.append("a" if i % 3 else "b", str(i).encode(), _prov(i)) for i in range(300))
        )
        by_board: dict[str, list[int]] = {}
        for e in events:
            by_board.setdefault(e.board, []).append(e.version)
        for versions in by_board.values():
            assert versions == list(range(1, len(versions) + 1))  # in submission order, no gaps
        assert await log.head("a") == 200
        assert await log.head("b") == 100
        assert await log.head("nope") == 0
        read = await log.read("a", after=10, upto=20)
        assert [e.version for e in read] == list(range(11, 21))
        assert read[0].provenance.user == "ann"
        assert [e.version for e in await log.read("b", limit=5)] == [1, 2, 3, 4, 5]
        heads = {h.board: h.version for h in await log.heads()}
        assert heads == {"a": 200, "b": 100}
    finally:
        await log.close()


async def test_concurrent_appends_are_group_committed(tmp_path: Path) -> None:
    batches: list[int] = []
    log = SqliteEventLog(tmp_path / "events.db", on_commit=lambda n, _s: batches.append(n))
    await log.start()
    try:
        await asyncio.gather(*(log.append("a", b"x", _prov()) for _ in range(2000)))
    finally:
        await log.close()
    assert sum(batches) == 2000
    assert len(batches) < 2000 / 4  # many appends share a commit


async def test_log_survives_reopen_and_continues_versions(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path, fsync=True)
    await log.start()
    for i in range(5):
        await log.append("a", bytes([i]), _prov(i))
    await log.close()
    log = SqliteEventLog(path)
    await log.start()
    try:
        event = await log.append("a", b"z", _prov(10))
        assert event.version == 6
        assert [e.update for e in await log.read("a")] == [bytes([i]) for i in range(5)] + [b"z"]
    finally:
        await log.close()


async def test_heads_agree_between_the_writer_a_reader_process_and_a_reopen(tmp_path: Path) -> None:
    """The writer answers heads from memory, readers derive them from the events index; the same
    (board, version, time) either way, in board order, and after a restart."""
    path = tmp_path / "events.db"
    legacy = sqlite3.connect(path)  # a file from before heads were derived: its heads table goes
    legacy.execute("CREATE TABLE heads (board TEXT PRIMARY KEY, version INTEGER NOT NULL, ts REAL NOT NULL)")
    legacy.close()
    log = SqliteEventLog(path)
    await log.start()
    for i, board in enumerate(["b", "a", "c", "a", "b", "a"]):
        await log.append(board, bytes([i]), _prov(i))
    expected = [("a", 3, 1005.0), ("b", 2, 1004.0), ("c", 1, 1002.0)]
    reader = SqliteEventLog(path, reader_only=True)
    await reader.start()
    try:
        assert [(h.board, h.version, h.updated) for h in await log.heads()] == expected
        assert [(h.board, h.version, h.updated) for h in await reader.heads()] == expected
        assert [await reader.head(b) for b in ("a", "b", "c", "nope")] == [3, 2, 1, 0]
    finally:
        await reader.close()
        await log.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'heads'").fetchall() == []
    log = SqliteEventLog(path)
    await log.start()
    try:
        assert [(h.board, h.version, h.updated) for h in await log.heads()] == expected
        assert (await log.append("c", b"c2", _prov(9))).version == 2
    finally:
        await log.close()


async def test_append_after_close_is_refused(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    await log.start()
    await log.close()
    with pytest.raises(StorageUnavailable):
        await log.append("a", b"x", _prov())


def _foreign_insert(path: Path, board: str, version: int, data: bytes) -> None:
    """Another writer of the same file (what `inkstream import` next to a server used to be)."""
    foreign = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        foreign.execute(
            "INSERT INTO events (board, version, ts, client, user, data) VALUES (?, ?, 2000.0, 'x', 'other', ?)",
            (board, version, data),
        )
    finally:
        foreign.close()


@pytest.mark.parametrize("fsync", [False, True], ids=["default", "fsync"])
async def test_a_foreign_row_fails_one_commit_then_the_log_numbers_after_it(tmp_path: Path, fsync: bool) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path, fsync=fsync)
    await log.start()
    try:
        assert [(await log.append("a", bytes([i]), _prov(i))).version for i in range(2)] == [1, 2]
        await log.append("b", b"b1", _prov())
        _foreign_insert(path, "a", 3, b"foreign")

        with pytest.raises(StorageUnavailable, match="UNIQUE"):  # it numbered the append 3 too
            await log.append("a", b"mine", _prov(3))
        assert not await log.writable()
        assert await log.head("a") == 3  # re-read from the file

        event = await log.append("a", b"mine", _prov(4))  # recovered: not failing forever
        assert event.version == 4
        assert (await log.append("b", b"b2", _prov())).version == 2  # other boards unaffected
        assert await log.writable()
        assert [(e.version, e.update) for e in await log.read("a")] == [
            (1, b"\x00"),
            (2, b"\x01"),
            (3, b"foreign"),
            (4, b"mine"),
        ]
        assert {h.board: h.version for h in await log.heads()} == {"a": 4, "b": 2}
    finally:
        await log.close()


@pytest.mark.parametrize("fsync", [False, True], ids=["default", "fsync"])
async def test_a_foreign_row_of_another_board_fails_one_commit_on_seq_then_the_log_continues(
    tmp_path: Path, fsync: bool
) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path, fsync=fsync)
    await log.start()
    try:
        await log.append("a", b"a1", _prov())
        _foreign_insert(path, "c", 1, b"foreign")  # takes seq 2, which this log numbers next

        with pytest.raises(StorageUnavailable, match="UNIQUE"):
            await log.append("a", b"a2", _prov())
        assert (await log.append("a", b"a2", _prov())).version == 2  # seq re-read from the file: no collision
        rows = [(s, e.board, e.update) for s, e in await log.read_seq(0, 10)]
        assert rows == [(1, "a", b"a1"), (2, "c", b"foreign"), (3, "a", b"a2")]
    finally:
        await log.close()


def _hold_lock(data_dir: Path) -> subprocess.Popen[str]:
    """Another process holding the data dir's writer lock until its stdin closes."""
    code = (
        "import sys; from pathlib import Path; from engine.adapters.data_dir_lock import lock_data_dir; "
        f"lock_data_dir(Path({str(data_dir)!r}), 'a test', 'http://127.0.0.1:1'); print('locked', flush=True); "
        "sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


async def test_a_second_writer_process_is_refused_and_readers_are_not(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path)
    await log.start()
    await log.append("a", b"x", _prov())
    await log.close()  # releases the lock

    holder = _hold_lock(tmp_path)
    try:
        second = SqliteEventLog(path)
        with pytest.raises(DataDirInUse) as refused:
            await second.start()
        message = str(refused.value)
        assert str(tmp_path) in message and f"pid {holder.pid}" in message and "a test" in message
        assert "--url http://127.0.0.1:1" in message
        with pytest.raises(StorageUnavailable):
            await second.append("a", b"y", _prov())  # nothing was opened

        reader = SqliteEventLog(path, reader_only=True)  # reading next to the writer needs no lock
        await reader.start()
        try:
            assert await reader.head("a") == 1 and len(await reader.read("a")) == 1
        finally:
            await reader.close()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)

    # The holder exited: the lock went with it, and in this process it is re-entrant (one writer process).
    first, again = SqliteEventLog(path), SqliteEventLog(path)
    await first.start()
    await again.start()
    await again.close()
    assert (await first.append("a", b"z", _prov())).version == 2
    await first.close()
    holder = _hold_lock(tmp_path)  # released by the last close: another process can take it
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=10)


@pytest.mark.parametrize("fsync", [False, True])
async def test_then_runs_as_the_commit_settles_not_a_loop_iteration_later(tmp_path: Path, fsync: bool) -> None:
    """`then` is what the live path broadcasts from: it runs when the commit settles the future, before
    anything scheduled on the loop by then (a done callback of the same future, say), with the event."""
    log = SqliteEventLog(tmp_path / "events.db", fsync=fsync)
    await log.start()
    order: list[str] = []
    try:
        futures = []
        for i in range(3):
            future = log.append("a", bytes([i]), _prov(i), then=lambda f: order.append(f"then v{f.result().version}"))
            future.add_done_callback(lambda f: order.append(f"done v{f.result().version}"))
            futures.append(future)
        await asyncio.gather(*futures)
        assert order == ["then v1", "then v2", "then v3", "done v1", "done v2", "done v3"]
    finally:
        await log.close()


async def test_then_hears_of_a_failed_commit(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    await log.start()
    await log.append("a", b"x", _prov())
    _foreign_insert(tmp_path / "events.db", "a", 2, b"theirs")  # the next commit collides on (board, version)
    errors: list[BaseException | None] = []
    try:
        with pytest.raises(StorageUnavailable):
            await log.append("a", b"mine", _prov(1), then=lambda f: errors.append(f.exception()))
        assert len(errors) == 1 and isinstance(errors[0], StorageUnavailable)
    finally:
        await log.close()
