"""Embedded projections in SQLite: board checkpoints (compacted states) and board summaries."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    board    TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    state    BLOB    NOT NULL,
    PRIMARY KEY (board, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS boards (
    board    TEXT PRIMARY KEY,
    version  INTEGER NOT NULL,
    updated  REAL    NOT NULL,
    title    TEXT    NOT NULL,
    shapes   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
    name     TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The compacted state of a board after `version`."""

    board: str
    version: int
    state: bytes


@dataclass(frozen=True, slots=True)
class BoardSummary:
    """What the boards list shows, as of `version`."""

    board: str
    version: int
    updated: float
    title: str
    shapes: int


class SqliteProjectionStore:
    """Checkpoints and summaries in one SQLite file; also the engine's SnapshotStore."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def start(self) -> None:
        """Open the database and create the schema."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
        conn.executescript(_SCHEMA)
        self._conn = conn

    async def close(self) -> None:
        """Close the database."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        assert self._conn is not None, "projection store is not open"
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    async def latest(self, board: str, at_or_before: int | None = None) -> Checkpoint | None:
        """The newest checkpoint of `board` with version <= at_or_before (any if None)."""
        sql = "SELECT version, state FROM checkpoints WHERE board = ?"
        params: tuple[object, ...] = (board,)
        if at_or_before is not None:
            sql += " AND version <= ?"
            params += (at_or_before,)
        rows = await asyncio.to_thread(self._run, sql + " ORDER BY version DESC LIMIT 1", params)
        if not rows:
            return None
        version, state = rows[0]
        return Checkpoint(board, int(version), bytes(state))

    async def summaries(self) -> dict[str, BoardSummary]:
        """Every projected board's summary, by board id."""
        rows = await asyncio.to_thread(self._run, "SELECT board, version, updated, title, shapes FROM boards")
        return {str(b): BoardSummary(str(b), int(v), float(u), str(t), int(s)) for b, v, u, t, s in rows}

    async def cursor(self, name: str) -> int:
        """The log position (global seq) a projector has folded up to."""
        rows = await asyncio.to_thread(self._run, "SELECT seq FROM cursors WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    async def write(
        self, cursor_name: str, cursor: int, summaries: list[BoardSummary], checkpoints: list[Checkpoint]
    ) -> None:
        """Store summaries and checkpoints and advance the cursor, all in one transaction."""
        await asyncio.to_thread(self._write, cursor_name, cursor, summaries, checkpoints)

    def _write(
        self, cursor_name: str, cursor: int, summaries: list[BoardSummary], checkpoints: list[Checkpoint]
    ) -> None:
        assert self._conn is not None, "projection store is not open"
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT INTO boards (board, version, updated, title, shapes) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(board) DO UPDATE SET version = excluded.version, updated = excluded.updated, "
                    "title = excluded.title, shapes = excluded.shapes WHERE excluded.version >= boards.version",
                    [(s.board, s.version, s.updated, s.title, s.shapes) for s in summaries],
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO checkpoints (board, version, state) VALUES (?, ?, ?)",
                    [(c.board, c.version, c.state) for c in checkpoints],
                )
                conn.execute(
                    "INSERT INTO cursors (name, seq) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET seq = max(cursors.seq, excluded.seq)",
                    (cursor_name, cursor),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
