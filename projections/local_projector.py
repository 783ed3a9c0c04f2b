"""The embedded projector: tails the local event log and keeps summaries and checkpoints current.

It mirrors the distributed projector (a separate consumer of the log with its own cursor): it folds
every event into a per-board Doc[Any], writes the board's summary after each batch, and a checkpoint
every `checkpoint_every` versions and whenever a board goes quiet, so loading a board or
reconstructing a past version replays at most that many updates. It is idempotent: events at or
below a board's folded version are skipped, and the cursor only moves forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from engine.adapters.sqlite_log import SqliteEventLog
from engine.events import Event
from engine.fold import apply_update, load_doc
from engine.model import summarize
from projections.sqlite_store import BoardSummary, Checkpoint, SqliteProjectionStore

log = logging.getLogger(__name__)

CURSOR = "local-projector"


@dataclass(eq=False)
class _Folded:
    doc: Doc[Any]
    version: int
    checkpointed: int
    updated: float
    touched: float  # monotonic time of the last event


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
    ) -> None:
        self.log = event_log
        self.store = store
        self.checkpoint_every = checkpoint_every
        self.quiet_seconds = quiet_seconds
        self.cache_boards = cache_boards
        self.batch = batch
        self._docs: OrderedDict[str, _Folded] = OrderedDict()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.cursor = 0

    async def start(self) -> None:
        """Resume from the stored cursor and follow the log in the background."""
        self.cursor = await self.store.cursor(CURSOR)
        loop = asyncio.get_running_loop()

        def committed(_seq: int) -> None:
            loop.call_soon_threadsafe(self._wake.set)

        self.log.on_committed(committed)
        self._task = asyncio.create_task(self._run(), name="inkstream-local-projector")

    async def close(self) -> None:
        """Stop following the log (what is folded but unwritten is refolded on restart)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                caught_up = await self.step()
            except Exception:
                log.exception("local projector step failed; retrying")
                caught_up = True
            if caught_up:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.quiet_seconds / 2)
                self._wake.clear()

    async def step(self) -> bool:
        """Fold one batch of the log (or write quiet checkpoints); return True if caught up."""
        rows = await self.log.read_seq(self.cursor, self.batch)
        if not rows:
            await self._checkpoint_quiet()
            return True
        touched: dict[str, _Folded] = {}
        checkpoints: list[Checkpoint] = []
        for _seq, event in rows:
            folded = await self._fold(event)
            touched[event.board] = folded
            if folded.version - folded.checkpointed >= self.checkpoint_every:
                checkpoints.append(Checkpoint(event.board, folded.version, bytes(folded.doc.get_update())))
                folded.checkpointed = folded.version
        summaries = [self._summary(board, f) for board, f in touched.items()]
        await self.store.write(CURSOR, rows[-1][0], summaries, checkpoints)
        self.cursor = rows[-1][0]
        self._evict()
        return len(rows) < self.batch

    async def _fold(self, event: Event) -> _Folded:
        folded = self._docs.get(event.board)
        if folded is None:
            checkpoint = await self.store.latest(event.board)
            base = checkpoint.version if checkpoint else 0
            folded = _Folded(
                load_doc(checkpoint.state if checkpoint else None), base, base, event.provenance.time, time.monotonic()
            )
            self._docs[event.board] = folded
        self._docs.move_to_end(event.board)
        if event.version <= folded.version:
            return folded  # already folded: re-delivery changes nothing
        if event.version > folded.version + 1:  # fill a gap (e.g. the doc was evicted mid-run)
            for missing in await self.log.read(event.board, after=folded.version, upto=event.version - 1):
                apply_update(folded.doc, missing.update)
        apply_update(folded.doc, event.update)
        folded.version = event.version
        folded.updated = event.provenance.time
        folded.touched = time.monotonic()
        return folded

    def _summary(self, board: str, folded: _Folded) -> BoardSummary:
        title, shapes = summarize(folded.doc)
        return BoardSummary(board, folded.version, folded.updated, title, shapes)

    async def _checkpoint_quiet(self) -> None:
        now = time.monotonic()
        quiet = [
            (b, f)
            for b, f in self._docs.items()
            if f.version > f.checkpointed and now - f.touched >= self.quiet_seconds
        ]
        if not quiet:
            return
        checkpoints = [Checkpoint(b, f.version, bytes(f.doc.get_update())) for b, f in quiet]
        await self.store.write(CURSOR, self.cursor, [], checkpoints)
        for _b, f in quiet:
            f.checkpointed = f.version

    def _evict(self) -> None:
        """Drop least recently used docs beyond the cache size; keep those with unwritten checkpoints."""
        excess = len(self._docs) - self.cache_boards
        if excess <= 0:
            return
        clean = [b for b, f in self._docs.items() if f.version == f.checkpointed][:excess]
        for board in clean:
            del self._docs[board]
