"""The embedded event log: SQLite in WAL mode with group commit.

Every append waits until the transaction holding it has committed: that is when it is accepted.
Appends that arrive together (in one event-loop iteration, or while a commit is in flight on the
writer thread in fsync mode) are committed in one transaction, so durability costs one commit per
batch, not per update. In WAL mode with synchronous=NORMAL a
committed transaction survives `kill -9` of the process (it is in the WAL file); `fsync=True`
(synchronous=FULL) also makes it survive power loss, at the cost of an fsync per batch.

Versions are numbered from an in-memory head per board, and the global seq from an in-memory
counter, so one process appends to a log: a writer holds its data directory's lock
(engine.adapters.data_dir_lock) while open, and a second one is refused with DataDirInUse. Should
a row appear anyway (someone else wrote to the file), the commit that collides with it on
UNIQUE(board, version) or on seq fails, and the last seq and the heads of its boards are re-read
from the file, so the next append numbers after it instead of colliding forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.adapters.data_dir_lock import DataDirLock, lock_data_dir
from engine.errors import StorageUnavailable
from engine.events import BoardHead, Event, Provenance
from engine.priority import yield_to_live_work

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,          -- global log order
    board    TEXT    NOT NULL,
    version  INTEGER NOT NULL,             -- dense per board, from 1
    ts       REAL    NOT NULL,             -- accepted at, seconds since epoch
    client   TEXT    NOT NULL,
    user     TEXT    NOT NULL,
    data     BLOB    NOT NULL,
    UNIQUE (board, version)
);
DROP TABLE IF EXISTS heads;  -- older files: heads are derived from events now (_HEADS)
"""

#: Every board's latest version and its time, from the (board, version) index: one skip-scan step per
#: board, not a pass over the log (2,000 boards in 1M events: ~15 ms). A heads table written in every
#: commit cost a third of the commit (a third b-tree and WAL page per commit).
_HEADS = """
WITH RECURSIVE boards(board) AS (
    SELECT min(board) FROM events
    UNION ALL
    SELECT (SELECT min(board) FROM events WHERE board > boards.board) FROM boards WHERE boards.board IS NOT NULL
)
SELECT e.board, e.version, e.ts FROM boards JOIN events AS e
    ON e.board = boards.board AND e.version = (SELECT max(version) FROM events WHERE board = boards.board)
ORDER BY e.board
"""

MAX_BATCH = 2048
CHECKPOINT_SECONDS = 1.0  # default mode: how often the WAL is copied into the database file


@dataclass(slots=True)
class _Pending:
    board: str
    update: bytes
    provenance: Provenance
    future: asyncio.Future[Event]
    loop: asyncio.AbstractEventLoop
    then: Callable[[asyncio.Future[Event]], None] | None = None  # EventLog.append's `then`


def _connect(path: Path, fsync: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SqliteEventLog:
    """EventLog adapter over one SQLite database file."""

    def __init__(
        self,
        path: Path,
        fsync: bool = False,
        on_commit: Callable[[int, float], None] | None = None,
        reader_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.reader_only = reader_only  # another process appends (the embedded projector's view of the log)
        self._on_commit = on_commit  # (batch size, seconds) -> None, for metrics
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # fsync mode: the writer thread
        self._writer: sqlite3.Connection | None = None  # default mode: committed on the event loop
        self._batch: list[_Pending] = []
        self._flush_scheduled = False
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._heads: dict[str, int] = {}  # writer: every board's latest version...
        self._updated: dict[str, float] = {}  # ...and when it was accepted
        self._seq = 0  # the last seq committed (numbered here like versions: no max(seq) query per commit)
        self._dir_lock: DataDirLock | None = None  # writers only: this process's lock on the data dir
        self._failed: BaseException | None = None
        self._listeners: list[Callable[[int], None]] = []

    async def start(self) -> None:
        """Create the schema, load board heads and start committing.

        Default durability (synchronous=NORMAL): a commit only writes to the WAL file (no fsync), so
        it takes ~0.1 ms and runs on the event loop, once per loop iteration for every append queued
        in it. A writer thread cost more than the commit: a cross-thread wake-up per batch, and the
        GIL ping-pong between the loop and the thread (up to the 5 ms switch interval per hand-over)
        delayed commits, hence deliveries, whenever the loop was busy. WAL checkpoints (which fsync)
        move off the loop to a checkpointer thread. With `fsync=True` every commit fsyncs, which must
        not block the loop: commits then run on a dedicated writer thread.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.reader_only:
            # Before anything is opened: a second writer is refused (DataDirInUse), not half-started.
            self._dir_lock = lock_data_dir(self.path.parent)
        try:
            self._reader = _connect(self.path, self.fsync)
            if self.reader_only:
                return
            writer = _connect(self.path, self.fsync)
            writer.executescript(_SCHEMA)
            for board, version, ts in writer.execute(_HEADS):
                self._heads[board] = version
                self._updated[board] = ts
            self._seq = writer.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        except BaseException:
            self._unlock()
            raise
        if self.fsync:
            self._thread = threading.Thread(
                target=self._write_loop, args=(writer,), name="inkstream-log-writer", daemon=True
            )
            self._thread.start()
            return
        writer.execute("PRAGMA wal_autocheckpoint=0")
        self._writer = writer
        self._stop_checkpoints.clear()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="inkstream-log-checkpointer", daemon=True
        )
        self._checkpointer.start()

    async def close(self) -> None:
        """Commit what is queued, then stop committing."""
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._writer is not None:
            self._flush()
            self._stop_checkpoints.set()
            if self._checkpointer is not None:
                await asyncio.to_thread(self._checkpointer.join)
                self._checkpointer = None
            self._writer.close()
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._unlock()

    def _unlock(self) -> None:
        if self._dir_lock is not None:
            self._dir_lock.release()
            self._dir_lock = None

    def on_committed(self, listener: Callable[[int], None]) -> None:
        """Call `listener(last_seq)` after every commit (from the writer thread in fsync mode)."""
        self._listeners.append(listener)

    def append(
        self,
        board: str,
        update: bytes,
        provenance: Provenance,
        wait_for_version: bool = True,
        then: Callable[[asyncio.Future[Event]], None] | None = None,
    ) -> asyncio.Future[Event]:
        """Queue the update for the next group commit; the future resolves once it is durable (with its version).

        A plain method returning a future, not a coroutine: the live path then needs no task per update.
        `then(future)` runs right after the commit settles it, in the same loop iteration (a done
        callback would run one iteration later, behind whatever else is ready by then).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Event] = loop.create_future()
        pending = _Pending(board, update, provenance, future, loop, then)
        if self._writer is not None:
            self._batch.append(pending)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        elif self._thread is not None:
            self._queue.put(pending)
        else:
            raise StorageUnavailable("the event log is not open")
        return future

    # -- committing ------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Commit every append queued since the last flush (default mode, on the event loop)."""
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        if self._writer is None:
            _settle([(item, None) for item in batch], StorageUnavailable("the event log is closed"))
            return
        for i in range(0, len(batch), MAX_BATCH):
            part = batch[i : i + MAX_BATCH]
            events, error = self._commit(self._writer, part)
            _settle(list(zip(part, _outcomes(events, part), strict=True)), error)

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database file every CHECKPOINT_SECONDS, off the event loop.

        PASSIVE never waits for (or blocks) the writer or readers; the WAL is reused from its start
        once a checkpoint caught up, so it stays small.
        """
        yield_to_live_work()  # this thread only: commits and deliveries on the event loop come first
        conn = _connect(self.path, self.fsync)
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_SECONDS):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed (will retry): %s", exc)
        finally:
            conn.close()

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            events, error = self._commit(conn, batch)
            _settle_batch(list(zip(batch, _outcomes(events, batch), strict=True)), error)
        conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Pending]) -> tuple[list[Event] | None, Exception | None]:
        """Write `batch` in one transaction; return its events, or the error that failed them all."""
        started = time.perf_counter()
        assigned: dict[str, int] = {}
        rows = []
        events = []
        seq = self._seq
        for item in batch:
            version = assigned.get(item.board, self._heads.get(item.board, 0)) + 1
            assigned[item.board] = version
            p = item.provenance
            seq += 1
            rows.append((seq, item.board, version, p.time, p.client_id, p.user, item.update))
            events.append(Event(item.board, version, item.update, p))
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO events (seq, board, version, ts, client, user, data) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
            conn.execute("COMMIT")
        except Exception as exc:
            log.exception("event log commit of %d updates failed", len(batch))
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            error = StorageUnavailable(f"event log commit failed: {exc}")
            self._failed = error
            if isinstance(exc, sqlite3.IntegrityError):
                self._reload_heads(conn, list(assigned))
            return None, error
        self._heads.update(assigned)
        self._updated.update((item.board, item.provenance.time) for item in batch)
        self._seq = seq
        self._failed = None
        if self._on_commit is not None:
            self._on_commit(len(batch), time.perf_counter() - started)
        for listener in self._listeners:
            listener(seq)
        return events, None

    def _reload_heads(self, conn: sqlite3.Connection, boards: list[str]) -> None:
        """Re-read the heads of `boards` and the last seq from the file after a commit collided on
        (board, version) or on seq.

        Only another writer of the file makes the in-memory head fall behind (the data-dir lock
        keeps them out; this is the defence behind it). The highest version in `events` is the
        truth, whatever the other writer did to `heads`: the next append numbers after it, and the
        gateway, which dropped the board when its commit failed, reloads it from the log with the
        other writer's updates included.
        """
        try:
            self._seq = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            for board in boards:
                row = conn.execute(
                    "SELECT version, ts FROM events WHERE board = ? ORDER BY version DESC LIMIT 1", (board,)
                ).fetchone()
                found = int(row[0]) if row else 0
                if found != self._heads.get(board, 0):
                    log.warning(
                        "board %s: the log has version %d, this process expected %d (another process wrote "
                        "to %s); continuing after it",
                        board,
                        found,
                        self._heads.get(board, 0),
                        self.path,
                    )
                    self._heads[board] = found
                    if row:
                        self._updated[board] = float(row[1])
        except sqlite3.Error as exc:
            log.warning("could not re-read board heads after a failed commit: %s", exc)

    # -- reads -----------------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        if self._reader is None:
            raise StorageUnavailable("the event log is not open")
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """Events of `board` with after < version <= upto, in version order."""
        sql = "SELECT version, ts, client, user, data FROM events WHERE board = ? AND version > ?"
        params: tuple[object, ...] = (board, after)
        if upto is not None:
            sql += " AND version <= ?"
            params += (upto,)
        sql += " ORDER BY version"
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        rows = await asyncio.to_thread(self._query, sql, params)
        return [Event(board, int(v), bytes(d), Provenance(float(t), str(c), str(u))) for v, t, c, u, d in rows]

    async def read_seq(self, after_seq: int, limit: int) -> list[tuple[int, Event]]:
        """Events of all boards in global log order after `after_seq` (for local projections)."""
        rows = await asyncio.to_thread(
            self._query,
            "SELECT seq, board, version, ts, client, user, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            (int(s), Event(str(b), int(v), bytes(d), Provenance(float(t), str(c), str(u))))
            for s, b, v, t, c, u, d in rows
        ]

    async def head(self, board: str) -> int:
        """The latest committed version of `board` (0 if none)."""
        if self.reader_only:
            rows = await asyncio.to_thread(self._query, "SELECT max(version) FROM events WHERE board = ?", (board,))
            return int(rows[0][0] or 0)
        return self._heads.get(board, 0)

    async def heads(self) -> list[BoardHead]:
        """Every board with its latest version and last update time."""
        if self.reader_only:
            rows = await asyncio.to_thread(self._query, _HEADS, ())
            return [BoardHead(str(b), int(v), float(t)) for b, v, t in rows]
        versions, updated = dict(self._heads), dict(self._updated)  # copies: fsync mode commits on a thread
        return [BoardHead(b, versions[b], updated[b]) for b in sorted(versions)]

    async def writable(self) -> bool:
        """True when the log is open for appends, the last commit succeeded and the file is writable."""
        alive = self._writer is not None or (self._thread is not None and self._thread.is_alive())
        return alive and self._failed is None and os.access(self.path, os.W_OK)


def _outcomes(events: list[Event] | None, batch: list[_Pending]) -> list[Event | None]:
    """One entry per pending append: its event, or None when the commit failed."""
    return list(events) if events is not None else [None] * len(batch)


def _settle_batch(done: list[tuple[_Pending, Event | None]], error: BaseException | None) -> None:
    """From the writer thread: resolve a commit's futures with one wake-up of each waiting loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, Event | None]]] = {}
    for item, event in done:
        by_loop.setdefault(item.loop, []).append((item, event))
    for loop, items in by_loop.items():
        loop.call_soon_threadsafe(_settle, items, error)


def _settle(done: list[tuple[_Pending, Event | None]], error: BaseException | None) -> None:
    """Resolve each append's future, then run its `then` (on the loop that appended it)."""
    for item, event in done:
        future = item.future
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            assert event is not None
            future.set_result(event)
        if item.then is not None:
            try:
                item.then(future)
            except Exception:
                log.exception("event log: a commit callback failed")
