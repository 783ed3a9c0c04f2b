"""Embedded projections in SQLite: board checkpoints (compacted states), board summaries and thumbnails."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from projections.changes import VersionRecord
from projections.thumbnails import Thumbnail

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
-- history (projections/history.py): one row per version, a (board, shape, version) index for
-- shape history, and plain-JSON checkpoints that the per-version changes apply to.
CREATE TABLE IF NOT EXISTS versions (
    board    TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    ts       REAL    NOT NULL,
    client   TEXT    NOT NULL,
    user     TEXT    NOT NULL,
    added    INTEGER NOT NULL,
    changed  INTEGER NOT NULL,
    removed  INTEGER NOT NULL,
    meta     INTEGER NOT NULL,
    changes  TEXT    NOT NULL,
    PRIMARY KEY (board, version)
);
CREATE TABLE IF NOT EXISTS shape_versions (
    board    TEXT    NOT NULL,
    shape    TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    fields   TEXT    NOT NULL,
    PRIMARY KEY (board, shape, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plain_checkpoints (
    board    TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    plain    TEXT    NOT NULL,
    PRIMARY KEY (board, version)
);
-- thumbnails (projections.thumbnails): per board, the first shapes of its rendering as JSON (UTF-8).
CREATE TABLE IF NOT EXISTS thumbnails (
    board    TEXT PRIMARY KEY,
    version  INTEGER NOT NULL,
    body     BLOB    NOT NULL
);
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
class PlainCheckpoint:
    """The plain board (projections.changes) after `version`, as JSON text."""

    board: str
    version: int
    plain: str


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
        #: True when this file was projected before history existed: the projector must refold from 0.
        self.history_backfill = False

    async def start(self) -> None:
        """Open the database and create the schema."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
        had_history = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'versions'").fetchone() is not None
        had_cursor = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'cursors'").fetchone() is not None
        if had_cursor and not had_history:
            # Projected before history existed: move the cursor back before creating the history
            # tables, so a crash before the refold finishes repeats it rather than skipping it.
            self.history_backfill = conn.execute("SELECT count(*) FROM cursors").fetchone()[0] > 0
            conn.execute("UPDATE cursors SET seq = 0")
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
        self,
        cursor_name: str,
        cursor: int,
        summaries: list[BoardSummary],
        checkpoints: list[Checkpoint],
        versions: list[VersionRecord] | None = None,
        plain_checkpoints: list[PlainCheckpoint] | None = None,
        rewind: bool = False,
        thumbnails: list[Thumbnail] | None = None,
    ) -> None:
        """Store summaries, checkpoints, history rows and thumbnails and advance the cursor, all in one transaction.

        Every write is idempotent (rows are keyed by version; re-writes are ignored; summaries and
        thumbnails never go back to an older version) and the cursor only moves forward unless
        `rewind` (a history backfill) says otherwise.
        """
        await asyncio.to_thread(
            self._write,
            cursor_name,
            cursor,
            summaries,
            checkpoints,
            versions or [],
            plain_checkpoints or [],
            rewind,
            thumbnails or [],
        )

    def _write(
        self,
        cursor_name: str,
        cursor: int,
        summaries: list[BoardSummary],
        checkpoints: list[Checkpoint],
        versions: list[VersionRecord],
        plain_checkpoints: list[PlainCheckpoint],
        rewind: bool,
        thumbnails: list[Thumbnail] | None = None,
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
                if versions:
                    _write_versions(conn, versions)
                conn.executemany(
                    "INSERT OR IGNORE INTO plain_checkpoints (board, version, plain) VALUES (?, ?, ?)",
                    [(c.board, c.version, c.plain) for c in plain_checkpoints],
                )
                if thumbnails:
                    conn.executemany(
                        "INSERT INTO thumbnails (board, version, body) VALUES (?, ?, ?) "
                        "ON CONFLICT(board) DO UPDATE SET version = excluded.version, body = excluded.body "
                        "WHERE excluded.version >= thumbnails.version",
                        [(t.board, t.version, t.body) for t in thumbnails],
                    )
                conn.execute(
                    "INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET seq = "
                    + ("excluded.seq" if rewind else "max(cursors.seq, excluded.seq)"),
                    (cursor_name, cursor),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    async def thumbnail(self, board: str) -> Thumbnail | None:
        """The board's stored thumbnail (projections.thumbnails), None if it has none (yet)."""
        rows = await asyncio.to_thread(self._run, "SELECT version, body FROM thumbnails WHERE board = ?", (board,))
        if not rows:
            return None
        version, body = rows[0]
        return Thumbnail(board, int(version), bytes(body))

    async def stale_thumbnails(self) -> dict[str, int]:
        """Board -> summary version, for boards whose thumbnail is missing or older than their summary."""
        rows = await asyncio.to_thread(
            self._run,
            "SELECT b.board, b.version FROM boards b LEFT JOIN thumbnails t ON t.board = b.board "
            "WHERE t.version IS NULL OR t.version < b.version",
        )
        return {str(board): int(version) for board, version in rows}

    # -- history reads (projections.sqlite_archive) ----------------------------------------------

    async def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only statement off the event loop."""
        return await asyncio.to_thread(self._run, sql, params)


def _write_versions(conn: sqlite3.Connection, versions: list[VersionRecord]) -> None:
    rows = []
    shape_rows: list[tuple[str, str, int, str, str]] = []
    for v in versions:
        c = v.changes
        kinds = list(c.kinds.values())
        rows.append(
            (
                v.board,
                v.version,
                v.time,
                v.client,
                v.user,
                kinds.count("added"),
                kinds.count("changed"),
                kinds.count("removed"),
                int(c.meta is not None),
                c.encode(),
            )
        )
        shape_rows.extend((v.board, s, v.version, k, ",".join(c.fields(s))) for s, k in c.kinds.items())
    conn.executemany(
        "INSERT OR IGNORE INTO versions (board, version, ts, client, user, added, changed, removed, meta, changes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany(
        "INSERT OR IGNORE INTO shape_versions (board, shape, version, kind, fields) VALUES (?, ?, ?, ?, ?)", shape_rows
    )
