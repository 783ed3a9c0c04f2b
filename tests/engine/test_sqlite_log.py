"""The embedded event log: dense versions, group commit, durability across reopen."""

import asyncio
from pathlib import Path

import pytest

from engine.adapters.sqlite_log import SqliteEventLog
from engine.errors import StorageUnavailable
from engine.events import Provenance


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
        assert await log.version_at("a", 1002.5) == 3
    finally:
        await log.close()


async def test_append_after_close_is_refused(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    await log.start()
    await log.close()
    with pytest.raises(StorageUnavailable):
        await log.append("a", b"x", _prov())
