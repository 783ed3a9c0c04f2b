"""The embedded projector: tails the local event log and keeps summaries and checkpoints current.

It mirrors the distributed projector (a separate consumer of the log with its own cursor): it folds
every event into a per-board Doc[Any], writes the board's summary after each batch, and a checkpoint
every `checkpoint_every` versions and whenever a board goes quiet, so loading a board or
reconstructing a past version replays at most that many updates. It is idempotent: events at or
below a board's folded version are skipped, and the cursor only moves forward.

History: while folding it records what each version changed (projections.changes) and writes a
row per version, a (board, shape, version) index row per touched shape, and plain-JSON
checkpoints, in the same transaction as the cursor. Both kinds of checkpoint are spaced by
versions *and* bytes: a new one is written once `checkpoint_every` versions have passed and the
updates (or changes) since the last one add up to a quarter of its size. Replaying is then never
much costlier than loading the checkpoint, and a board whose state is dominated by tombstones (a
million moves) gets a few dozen checkpoints instead of a thousand copies of a large state.

Thumbnails (projections.thumbnails, served by GET /api/boards/{id}/thumbnail): taken from the
same plain board, written with the summaries but at most every `thumbnail_interval` seconds per
board while it changes, and once more when it goes quiet (within that interval of its last
update), so a busy board is not re-rendered every step. A board whose thumbnail is missing or older
than its summary (a data dir from before thumbnails, a crash inside the interval) gets one when
the projector starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from engine.adapters.sqlite_log import SqliteEventLog
from engine.events import Event
from engine.fold import load_doc
from engine.tasks import cancel_and_wait
from projections.changes import (
    ChangeRecorder,
    PlainBoard,
    VersionRecord,
    apply_changes,
    plain_board,
    plain_summary,
)
from projections.history import BoardHistory
from projections.sqlite_archive import SqliteArchive
from projections.sqlite_store import BoardSummary, Checkpoint, PlainCheckpoint, SqliteProjectionStore
from projections.thumbnails import INTERVAL_SECONDS as THUMBNAIL_SECONDS
from projections.thumbnails import Thumbnail, from_plain

log = logging.getLogger(__name__)

CURSOR = "local-projector"
YIELD_EVERY_SECONDS = 0.002  # longest stretch the projector folds before letting the event loop run
#: Shortest time between two folding steps. Waking on every commit meant a read, a fold and a write
#: transaction per group commit (hundreds a second under load); folding what accumulated over 100 ms
#: does the same work in a few large batches. Projections (board list, history) lag by at most that.
STEP_INTERVAL_SECONDS = 0.1
#: A checkpoint is due when the bytes to replay since the last one reach 1/REPLAY_FRACTION of its size.
REPLAY_FRACTION = 4
#: A cursor row marking that the stored summaries count shapes by the rendering's rule
#: (engine.model.is_shape). Summaries written before counted every entry of `shapes`, non-shapes too.
SUMMARY_RULE = "summaries-count-rendered-shapes"


@dataclass(eq=False)
class _Folded:
    doc: Doc[Any]
    version: int
    checkpointed: int
    updated: float
    touched: float  # monotonic time of the last event
    recorder: ChangeRecorder
    plain: PlainBoard  # the same board as plain JSON, kept current from the recorded changes
    checkpoint_bytes: int = 0  # size of the last Yjs checkpoint
    tail_bytes: int = 0  # update bytes folded since it
    plain_version: int = 0  # version of the last plain checkpoint
    plain_bytes: int = 0  # its size
    plain_tail: int = 0  # encoded change bytes since it
    checkpoint_due: bool = False
    plain_due: bool = False
    thumbnail_version: int = -1  # version of the last thumbnail written (-1: none by this projector)
    thumbnail_at: float = float("-inf")  # monotonic time it was written

    def close(self) -> None:
        self.recorder.close()


class LocalProjector:
    """Folds the SQLite event log into the SQLite projection store."""

    def __init__(
        self,
        event_log: SqliteEventLog,
        store: SqliteProjectionStore,
        checkpoint_every: int = 1000,
        quiet_seconds: float = 2.0,
        cache_boards: int = 64,
        batch: int = 2000,
        step_interval: float = STEP_INTERVAL_SECONDS,
        thumbnail_interval: float = THUMBNAIL_SECONDS,
    ) -> None:
        self.log = event_log
        self.store = store
        self.checkpoint_every = checkpoint_every
        self.quiet_seconds = quiet_seconds
        self.cache_boards = cache_boards
        self.batch = batch
        self.step_interval = step_interval
        self.thumbnail_interval = thumbnail_interval
        self.thumbnails_written = 0
        self.poll_seconds = quiet_seconds / 2  # longest wait for a commit notification before looking anyway
        self._docs: OrderedDict[str, _Folded] = OrderedDict()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.cursor = 0
        self._rewind = False  # refolding the log from the start (history backfill); set by start()

    async def start(self) -> None:
        """Resume from the stored cursor and follow the log in the background."""
        self.cursor = await self.store.cursor(CURSOR)
        self._rewind = self.store.history_backfill
        if self._rewind:  # projected before history existed: refold the log once to fill it in
            log.info("history rows missing: refolding the event log from the start")
            self.cursor = 0
        loop = asyncio.get_running_loop()

        def committed(_seq: int) -> None:
            loop.call_soon_threadsafe(self._wake.set)

        self.log.on_committed(committed)
        self._task = asyncio.create_task(self._run(), name="inkstream-local-projector")

    async def close(self) -> None:
        """Stop following the log (what is folded but unwritten is refolded on restart)."""
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        try:
            await self.recount_summaries()
        except Exception:
            log.exception("recounting old board summaries failed; each is corrected by its board's next update")
        if not self._rewind:  # a refold writes every board's thumbnail anyway
            try:
                await self.backfill_thumbnails()
            except Exception:
                log.exception("writing missing thumbnails failed; each is written with its board's next update")
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                caught_up = await self.step()
            except Exception:
                log.exception("local projector step failed; retrying")
                caught_up = True
            if caught_up:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                self._wake.clear()
                await asyncio.sleep(max(0.0, started + self.step_interval - loop.time()))

    async def recount_summaries(self) -> int:
        """Once per data dir: recount the shapes of summaries written before the count followed the rendering.

        Each board's count is taken from its plain board at the summary's version (history's plain
        checkpoint + recorded changes, or the log where history has no rows yet); returns how many
        summaries changed. A history backfill (`_rewind`) rewrites every summary anyway.
        """
        if await self.store.cursor(SUMMARY_RULE) >= 1:
            return 0
        fixed: list[BoardSummary] = []
        if not self._rewind:
            history = BoardHistory(SqliteArchive(self.log, self.store))
            for board, old in (await self.store.summaries()).items():
                try:
                    _title, shapes = plain_summary(await history.plain_at(board, old.version))
                except Exception:
                    log.exception("cannot recount the summary of board %s; its next update corrects it", board)
                    continue
                if shapes != old.shapes:
                    fixed.append(BoardSummary(board, old.version, old.updated, old.title, shapes))
        await self.store.write(SUMMARY_RULE, 1, fixed, [])
        if fixed:
            log.info("recounted the shapes of %d board summaries (non-shape entries are no longer counted)", len(fixed))
        return len(fixed)

    async def backfill_thumbnails(self) -> int:
        """Write the thumbnail of every projected board whose thumbnail is missing or older than its summary.

        From the plain board at the summary's version (history's plain checkpoint + recorded
        changes); returns how many were written.
        """
        stale = await self.store.stale_thumbnails()
        if not stale:
            return 0
        history = BoardHistory(SqliteArchive(self.log, self.store))
        written = 0
        for board, version in stale.items():
            try:
                thumbnail = from_plain(board, version, await history.plain_at(board, version))
            except Exception:
                log.exception("cannot write the thumbnail of board %s; its next update does", board)
                continue
            await self.store.write(CURSOR, self.cursor, [], [], thumbnails=[thumbnail])
            written += 1
        log.info("wrote the missing thumbnails of %d boards", written)
        return written

    async def step(self) -> bool:
        """Fold one batch of the log (or write quiet checkpoints and thumbnails); return True if caught up."""
        rows = await self.log.read_seq(self.cursor, self.batch)
        if not rows:
            await self._checkpoint_quiet()
            return True
        touched: dict[str, _Folded] = {}
        checkpoints: list[Checkpoint] = []
        plains: list[PlainCheckpoint] = []
        versions: list[VersionRecord] = []
        slice_started = time.perf_counter()
        for _seq, event in rows:
            if time.perf_counter() - slice_started > YIELD_EVERY_SECONDS:
                # Folding shares the gateway's event loop: never hold it for a whole batch.
                await asyncio.sleep(0)
                slice_started = time.perf_counter()
            folded = await self._fold(event, versions)
            touched[event.board] = folded
            if folded.checkpoint_due:
                state = bytes(folded.doc.get_update())
                checkpoints.append(Checkpoint(event.board, folded.version, state))
                folded.checkpointed, folded.checkpoint_bytes, folded.tail_bytes = folded.version, len(state), 0
                folded.checkpoint_due = False
            if folded.plain_due:
                # From the incrementally kept plain board: walking the Doc through pycrdt is ~1 s per
                # 2,000 shapes, json.dumps of the dict a few ms.
                text = json.dumps(folded.plain, separators=(",", ":"))
                plains.append(PlainCheckpoint(event.board, folded.version, text))
                folded.plain_version, folded.plain_bytes, folded.plain_tail = folded.version, len(text), 0
                folded.plain_due = False
        summaries = [self._summary(board, f) for board, f in touched.items()]
        thumbnails = self._due_thumbnails()
        await self.store.write(
            CURSOR, rows[-1][0], summaries, checkpoints, versions, plains, rewind=self._rewind, thumbnails=thumbnails
        )
        self._thumbnails_written(thumbnails)
        self._rewind = False
        self.cursor = rows[-1][0]
        self._evict()
        return len(rows) < self.batch

    async def _fold(self, event: Event, versions: list[VersionRecord]) -> _Folded:
        folded = self._docs.get(event.board)
        if folded is None:
            # At or before the event, not the newest: after a rewind the newest may be ahead of it.
            checkpoint = await self.store.latest(event.board, at_or_before=max(0, event.version - 1))
            base = checkpoint.version if checkpoint else 0
            doc = load_doc(checkpoint.state if checkpoint else None)
            recorder = ChangeRecorder(doc)
            folded = _Folded(doc, base, base, event.provenance.time, time.monotonic(), recorder, plain_board(doc))
            folded.checkpoint_bytes = len(checkpoint.state) if checkpoint else 0
            folded.plain_version = base  # conservative: a plain checkpoint is due K versions from here
            self._docs[event.board] = folded
        self._docs.move_to_end(event.board)
        if event.version <= folded.version:
            return folded  # already folded: re-delivery changes nothing
        if event.version > folded.version + 1:  # fill a gap (e.g. the doc was evicted mid-run)
            for missing in await self.log.read(event.board, after=folded.version, upto=event.version - 1):
                self._apply(folded, missing, versions)
        self._apply(folded, event, versions)
        folded.touched = time.monotonic()
        return folded

    def _apply(self, folded: _Folded, event: Event, versions: list[VersionRecord]) -> None:
        changes = folded.recorder.record(event.update)
        p = event.provenance
        versions.append(VersionRecord(event.board, event.version, p.time, p.client_id, p.user, changes))
        folded.version = event.version
        folded.updated = p.time
        folded.tail_bytes += len(event.update)
        if not changes.empty:
            apply_changes(folded.plain, changes)
            folded.plain_tail += len(changes.encode())
        k = self.checkpoint_every
        if folded.version - folded.checkpointed >= k and folded.tail_bytes * REPLAY_FRACTION >= folded.checkpoint_bytes:
            folded.checkpoint_due = True
        if folded.version - folded.plain_version >= k and folded.plain_tail * REPLAY_FRACTION >= folded.plain_bytes:
            folded.plain_due = True

    def _summary(self, board: str, folded: _Folded) -> BoardSummary:
        # From the plain board kept current for history: the same rule as the rendering
        # (engine.model.is_shape), without reading the Doc again.
        title, shapes = plain_summary(folded.plain)
        return BoardSummary(board, folded.version, folded.updated, title, shapes)

    def _due_thumbnails(self) -> list[Thumbnail]:
        """Thumbnails of boards changed since their last one, written at least `thumbnail_interval` ago.

        Called every step (folding or caught up), so a board that went quiet gets its final
        thumbnail within that interval of its last update, and one that changes after a quiet
        spell gets it at the next step.
        """
        now = time.monotonic()
        due = [
            (b, f)
            for b, f in self._docs.items()
            if f.version > f.thumbnail_version and now - f.thumbnail_at >= self.thumbnail_interval
        ]
        if not due:
            return []
        return [from_plain(b, f.version, f.plain) for b, f in due]

    def _thumbnails_written(self, thumbnails: list[Thumbnail]) -> None:
        now = time.monotonic()
        for t in thumbnails:
            folded = self._docs.get(t.board)
            if folded is not None:
                folded.thumbnail_version, folded.thumbnail_at = t.version, now
        self.thumbnails_written += len(thumbnails)

    async def _checkpoint_quiet(self) -> None:
        now = time.monotonic()
        quiet = [
            (b, f)
            for b, f in self._docs.items()
            if f.version > f.checkpointed and now - f.touched >= self.quiet_seconds
        ]
        thumbnails = self._due_thumbnails()
        if not quiet and not thumbnails:
            return
        checkpoints = [Checkpoint(b, f.version, bytes(f.doc.get_update())) for b, f in quiet]
        await self.store.write(CURSOR, self.cursor, [], checkpoints, thumbnails=thumbnails)
        for (_b, f), c in zip(quiet, checkpoints, strict=True):
            f.checkpointed, f.checkpoint_bytes, f.tail_bytes = f.version, len(c.state), 0
        self._thumbnails_written(thumbnails)

    def _evict(self) -> None:
        """Drop least recently used docs beyond the cache size; keep those with unwritten checkpoints or thumbnails."""
        excess = len(self._docs) - self.cache_boards
        if excess <= 0:
            return
        clean = [b for b, f in self._docs.items() if f.version == f.checkpointed == f.thumbnail_version][:excess]
        for board in clean:
            self._docs.pop(board).close()
