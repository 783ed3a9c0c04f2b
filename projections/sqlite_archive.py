"""The embedded HistoryArchive: the SQLite event log plus the history rows of the SQLite projection store.

Every query is a range or point lookup on a primary key ((board, version) or (board, shape,
version)), so paging and "nearest checkpoint <= V" never scan a board's history; see
`explain` and tests/test_history_unit.py, which assert the query plans.
"""

from __future__ import annotations

import json
from typing import Any

from engine.adapters.sqlite_log import SqliteEventLog
from engine.events import Event
from projections.changes import Changes, PlainBoard
from projections.history import ShapeTouch, VersionInfo, find_version_at, summary_of
from projections.sqlite_store import Checkpoint, SqliteProjectionStore

_VERSIONS_ASC = (
    "SELECT version, ts, client, user, changes FROM versions WHERE board = ? AND version > ? ORDER BY version LIMIT ?"
)
_VERSIONS_DESC = (
    "SELECT version, ts, client, user, changes FROM versions WHERE board = ? AND version < ? "
    "ORDER BY version DESC LIMIT ?"
)
_PROJECTED = "SELECT version FROM versions WHERE board = ? ORDER BY version DESC LIMIT 1"
_PLAIN = "SELECT version, plain FROM plain_checkpoints WHERE board = ? AND version <= ? ORDER BY version DESC LIMIT 1"
_CHANGES = "SELECT version, changes FROM versions WHERE board = ? AND version > ? AND version <= ? ORDER BY version"
_SHAPE = (
    "SELECT sv.version, v.ts, v.client, v.user, sv.kind, sv.fields FROM shape_versions sv "
    "JOIN versions v ON v.board = sv.board AND v.version = sv.version "
    "WHERE sv.board = ? AND sv.shape = ? AND sv.version > ? ORDER BY sv.version LIMIT ?"
)

#: The statements history runs, for plan checks (parameters are placeholders).
QUERIES = {
    "versions_asc": (_VERSIONS_ASC, ("b", 0, 10)),
    "versions_desc": (_VERSIONS_DESC, ("b", 10, 10)),
    "projected": (_PROJECTED, ("b",)),
    "plain_checkpoint": (_PLAIN, ("b", 10)),
    "changes": (_CHANGES, ("b", 0, 10)),
    "shape_history": (_SHAPE, ("b", "s", 0, 10)),
    "checkpoint": (
        "SELECT version, state FROM checkpoints WHERE board = ? AND version <= ? ORDER BY version DESC LIMIT 1",
        ("b", 10),
    ),
}


class SqliteArchive:
    """HistoryArchive over the embedded event log and projection store."""

    def __init__(self, event_log: SqliteEventLog, store: SqliteProjectionStore) -> None:
        self.log = event_log
        self.store = store

    async def head(self, board: str) -> int:
        """The latest version of `board` in the log."""
        return await self.log.head(board)

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """Updates from the log."""
        return await self.log.read(board, after=after, upto=upto, limit=limit)

    async def version_at(self, board: str, when: float) -> int:
        """The last version accepted at or before `when` (binary search by version)."""
        return await find_version_at(self, board, when)

    async def latest(self, board: str, at_or_before: int | None = None) -> Checkpoint | None:
        """The nearest Yjs checkpoint at or before a version."""
        return await self.store.latest(board, at_or_before)

    async def projected(self, board: str) -> int:
        """The last version with a history row."""
        rows = await self.store.query(_PROJECTED, (board,))
        return int(rows[0][0]) if rows else 0

    async def plain_latest(self, board: str, at_or_before: int) -> tuple[int, PlainBoard] | None:
        """The nearest plain checkpoint at or before a version."""
        rows = await self.store.query(_PLAIN, (board, at_or_before))
        if not rows:
            return None
        plain: PlainBoard = json.loads(rows[0][1])
        return int(rows[0][0]), plain

    async def changes(self, board: str, after: int, upto: int) -> list[tuple[int, Changes]]:
        """Recorded changes of a version range."""
        rows = await self.store.query(_CHANGES, (board, after, upto))
        return [(int(v), Changes.decode(c)) for v, c in rows]

    async def versions(self, board: str, after: int | None, before: int | None, limit: int) -> list[VersionInfo]:
        """A page of projected versions."""
        if before is not None:
            rows = await self.store.query(_VERSIONS_DESC, (board, before, limit))
        else:
            rows = await self.store.query(_VERSIONS_ASC, (board, after or 0, limit))
        return [
            VersionInfo(int(v), float(t), str(c), str(u), summary_of(Changes.decode(ch))) for v, t, c, u, ch in rows
        ]

    async def shape_history(self, board: str, shape: str, after: int, limit: int) -> list[ShapeTouch]:
        """Versions that touched one shape."""
        rows = await self.store.query(_SHAPE, (board, shape, after, limit))
        return [
            ShapeTouch(int(v), float(t), str(c), str(u), str(k), [f for f in str(fs).split(",") if f])
            for v, t, c, u, k, fs in rows
        ]

    async def explain(self) -> dict[str, list[str]]:
        """SQLite's query plan for every history statement (for tests and the benchmark)."""
        plans: dict[str, list[str]] = {}
        for name, (sql, params) in QUERIES.items():
            rows: list[tuple[Any, ...]] = await self.store.query("EXPLAIN QUERY PLAN " + sql, params)
            plans[name] = [str(r[-1]) for r in rows]
        return plans
