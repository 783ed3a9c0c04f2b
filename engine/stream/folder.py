"""The view fold: records of the event log -> the Redis view of each board (see engine.adapters.redis_view).

One batch at a time: group the records by board, bring each board's Doc up to its view (a cached
Doc is reused only if the view still has the version and offset it was left at), apply the records
the view has not folded yet (offset > the view's offset: re-delivery changes nothing), and write
each board's new head and stream entries with one Lua script that only succeeds if the view is
still where we read it (compare-and-set on the offset; a conflict means another processor instance
wrote it, and we reload and retry). Then tell waiting gateways the versions of their records.

Views are rebuildable from the log. `{prefix}:partitions` records how far each partition is folded;
a batch that starts past that point (Redis was flushed, or restored from an older snapshot) first
replays the gap from the log, and a flushed Redis (no `{prefix}:views` marker) is rebuilt for every
partition before anything else is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycrdt import Doc
from redis.asyncio import Redis

from engine.adapters.redis_view import FOLD_SCRIPT, RedisViews, pack_entries
from engine.errors import InvalidUpdate
from engine.fold import EMPTY_STATE, apply_update, load_doc
from engine.model import ShapeTally, render_meta
from engine.stream.records import Record

log = logging.getLogger(__name__)

# Marks a partition whose folded position Redis does not know (never folded, or flushed).
UNKNOWN = -1


# KEYS: partitions. ARGV: partition, offset, ... Moves each partition's position forward (never back);
# returns the positions after.
ADVANCE_SCRIPT = """
local out = {}
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    cur = tonumber(ARGV[i + 1])
  end
  out[#out + 1] = tostring(cur)
end
return out
"""


class LogSource(Protocol):
    """Reads ranges of the event log directly (not through the consumer group), for rebuilding views."""

    async def partitions(self) -> list[int]:
        """Every partition of the topic."""

    async def end_offsets(self) -> dict[int, int]:
        """Partition -> offset of the next record to be written."""

    def read(self, ranges: dict[int, tuple[int, int]]) -> AsyncIterator[list[Record]]:
        """Batches of records with start <= offset < end per partition, in partition order."""


class ViewsLost(Exception):
    """Redis no longer has the views (flushed); they must be rebuilt before folding on."""


@dataclass(eq=False)
class _Folded:
    doc: Doc[Any]
    version: int
    offset: int
    state_version: int
    #: the board's shape count for its summary, by the rendering's rule, kept without re-reading every shape
    tally: ShapeTally = field(init=False)

    def __post_init__(self) -> None:
        self.tally = ShapeTally(self.doc)


@dataclass
class FoldStats:
    """Counters for metrics and the benchmark."""

    records: int = 0
    skipped: int = 0
    invalid: int = 0
    batches: int = 0
    conflicts: int = 0
    replayed: int = 0
    rebuilds: int = 0
    fold_seconds: float = 0.0
    write_seconds: float = 0.0
    gateways: set[str] = field(default_factory=set)


class ViewFolder:
    """Folds batches of event-log records into the Redis views. One per processor process."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        source: LogSource,
        compact_every: int = 500,
        keep: int = 2000,
        cache_boards: int = 2048,
    ) -> None:
        self.redis: Any = redis  # redis-py's command types are looser than its replies
        self.views = RedisViews(redis, prefix)
        self.keys = self.views.keys
        self.partitions_key = f"{prefix}:partitions"
        self.source = source
        self.compact_every = compact_every
        self.keep = keep
        self.cache_boards = cache_boards
        self.lock = asyncio.Lock()
        self.stats = FoldStats()
        self._script = redis.register_script(FOLD_SCRIPT)
        self._advance_script = redis.register_script(ADVANCE_SCRIPT)
        self._cache: OrderedDict[str, _Folded] = OrderedDict()
        self._positions: dict[int, int] = {}  # partition -> last offset folded, as this processor advanced it

    # -- public ----------------------------------------------------------------------------------

    async def fold(self, records: Sequence[Record]) -> None:
        """Fold one batch (records in partition order) into the views; return when Redis has it."""
        if records:
            async with self.lock:
                await self._fold(records, replaying=False)

    async def ensure_views(self) -> bool:
        """If the views were lost (no marker), rebuild every partition from the log; True if it did."""
        async with self.lock:
            if await self.views.views_ready():
                return False
            await self._rebuild_all()
            return True

    # -- folding ---------------------------------------------------------------------------------

    async def _fold(self, records: Sequence[Record], replaying: bool) -> None:
        by_board: dict[str, list[Record]] = {}
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for record in records:
            by_board.setdefault(record.board, []).append(record)
            first.setdefault(record.partition, record.offset)
            last[record.partition] = record.offset
        pending = set(by_board)
        expected = self._expected_positions(by_board, first) if not replaying else None
        if expected is not None:
            # Every board is cached where this processor left it, right after what it folded last: write
            # at once, each script checking that Redis still agrees (one round trip on the live path).
            heads = {board: (self._cache[board].version, self._cache[board].offset) for board in pending}
            pending = await self._write(by_board, pending, heads, replaying, expected)
            if not pending:
                await self._advance(last)
                self.stats.batches += 1
                return
            self.stats.conflicts += len(pending)
            self._positions.clear()
        for _attempt in range(20):
            heads, folded_upto, ready = await self._read_positions(list(pending), list(first))
            if not replaying:
                if not ready:
                    await self._rebuild_all()
                    continue
                gaps = {p: (folded_upto[p] + 1, start) for p, start in first.items() if folded_upto[p] + 1 < start}
                if gaps:
                    log.warning("views are behind the log %s; replaying the gap from the log", gaps)
                    await self._replay(gaps)
                    continue
            pending = await self._write(by_board, pending, heads, replaying)
            if not pending:
                await self._advance(last)
                self.stats.batches += 1
                return
            self.stats.conflicts += len(pending)
        raise RuntimeError(f"could not fold boards {sorted(pending)[:5]}: their views kept changing")

    def _expected_positions(self, by_board: dict[str, list[Record]], first: dict[int, int]) -> dict[int, int] | None:
        """How far each partition of the batch is folded, if this processor knows without asking Redis.

        Known when this processor advanced each partition last, the batch starts right after that,
        and every board of the batch is cached; else None (read the positions and heads first).
        """
        positions = self._positions
        if any(positions.get(p) != start - 1 for p, start in first.items()):
            return None
        if any(board not in self._cache for board in by_board):
            return None
        return {p: positions[p] for p in first}

    async def _read_positions(
        self, boards: list[str], partitions: list[int]
    ) -> tuple[dict[str, tuple[int, int]], dict[int, int], bool]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for board in boards:
                pipe.hmget(self.keys.view(board), ["version", "offset"])
            pipe.hmget(self.partitions_key, [str(p) for p in partitions])
            pipe.exists(self.keys.marker)
            results = await pipe.execute()
        heads = {
            board: (int(version or 0), int(offset) if offset is not None else UNKNOWN)
            for board, (version, offset) in zip(boards, results[: len(boards)], strict=True)
        }
        positions = results[len(boards)]
        folded_upto = {p: int(o) if o is not None else UNKNOWN for p, o in zip(partitions, positions, strict=True)}
        return heads, folded_upto, bool(results[-1])

    async def _board(self, board: str, version: int, offset: int) -> _Folded:
        cached = self._cache.get(board)
        if cached is not None and cached.version == version and cached.offset == offset:
            self._cache.move_to_end(board)
            return cached
        view = await self.views.load(board, require_ready=False)
        doc = load_doc(view.state, [e.update for e in view.events])
        folded = _Folded(doc, view.version, view.offset, view.state_version)
        self._cache[board] = folded
        while len(self._cache) > self.cache_boards:
            self._cache.popitem(last=False)
        return folded

    async def _write(
        self,
        by_board: dict[str, list[Record]],
        pending: set[str],
        heads: dict[str, tuple[int, int]],
        replaying: bool,
        positions: dict[int, int] | None = None,
    ) -> set[str]:
        started = time.perf_counter()
        calls: list[tuple[str, list[str], list[Any]]] = []
        acks: dict[str, list[str]] = {}
        for board in pending:
            version, offset = heads[board]
            folded = await self._board(board, version, offset)
            expected = folded.offset
            entries: list[tuple[bytes, ...]] = []
            with folded.doc.transaction():  # one transaction per board and batch: ~1.5x faster to integrate
                for record in by_board[board]:
                    if record.offset <= folded.offset:
                        self.stats.skipped += 1
                        continue
                    update = record.update
                    try:
                        apply_update(folded.doc, update)
                        folded.tally.saw(update)
                    except InvalidUpdate as exc:
                        # It still takes its version (versions count records), but folds as nothing.
                        log.error("board %s offset %d: %s; folded as an empty update", board, record.offset, exc)
                        self.stats.invalid += 1
                        update = EMPTY_STATE
                    folded.version += 1
                    folded.offset = record.offset
                    p = record.provenance
                    entries.append(
                        (
                            str(folded.version).encode(),
                            str(record.offset).encode(),
                            repr(p.time).encode(),
                            p.client_id.encode(),
                            p.user.encode(),
                            update,
                        )
                    )
                    if record.gateway:
                        ack = f"{record.partition}:{record.offset}:{folded.version}"
                        acks.setdefault(record.gateway, []).append(ack)
            count = len(entries)
            if not count:
                continue
            state: bytes | str = ""
            sv: bytes | str = ""
            if folded.version - folded.state_version >= self.compact_every:
                state, sv = bytes(folded.doc.get_update()), bytes(folded.doc.get_state())
                folded.state_version = folded.version
            title, shapes = str(render_meta(folded.doc).get("title", "")), folded.tally.count()
            updated = by_board[board][-1].provenance.time
            head = json.dumps({"v": folded.version, "t": updated, "title": title, "shapes": shapes})
            minid = max(1, folded.state_version - self.keep + 1)
            argv = [
                "0" if replaying else "1",
                expected,
                board,
                folded.version,
                folded.offset,
                repr(updated),
                head,
                state,
                folded.state_version,
                sv,
                f"{minid}-0",
                count,
                pack_entries(entries),
            ]
            partition = by_board[board][-1].partition
            argv += [partition, positions[partition] if positions is not None else ""]
            keys = [
                self.keys.view(board),
                self.keys.stream(board),
                self.keys.heads,
                self.keys.marker,
                self.partitions_key,
            ]
            calls.append((board, keys, argv))
            self.stats.records += count
        self.stats.fold_seconds += time.perf_counter() - started
        if not calls:
            return set()
        started = time.perf_counter()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for _board, keys, argv in calls:
                    await self._script(keys=keys, args=argv, client=pipe)  # queues EVALSHA on the pipeline
                for gateway, folded_acks in acks.items():
                    pipe.publish(self.keys.acks(gateway), " ".join(folded_acks))
                results = await pipe.execute()
        except BaseException:
            for board, _k, _a in calls:  # their cached Docs are ahead of Redis now
                self._cache.pop(board, None)
            self._positions.clear()
            raise
        self.stats.write_seconds += time.perf_counter() - started
        self.stats.gateways.update(acks)
        conflicts: set[str] = set()
        lost = False
        for (board, _keys, _argv), result in zip(calls, results[: len(calls)], strict=True):
            if result != 1:
                self._cache.pop(board, None)
                conflicts.add(board)
                lost = lost or result == -1
        if lost:
            log.warning("the Redis views were lost (flushed?); rebuilding them from the log")
        return conflicts

    async def _advance(self, last: dict[int, int]) -> None:
        args: list[Any] = []
        for partition, offset in last.items():
            args += [partition, offset]
        positions = await self._advance_script(keys=[self.partitions_key], args=args)
        for partition, position in zip(last, positions, strict=True):
            self._positions[partition] = int(position)

    # -- rebuilding ------------------------------------------------------------------------------

    async def _replay(self, ranges: dict[int, tuple[int, int]]) -> None:
        async for batch in self.source.read(ranges):
            self.stats.replayed += len(batch)
            await self._fold(batch, replaying=True)

    async def _rebuild_all(self) -> None:
        started = time.perf_counter()
        self.stats.rebuilds += 1
        self._cache.clear()
        self._positions.clear()
        partitions = await self.source.partitions()
        ends = await self.source.end_offsets()
        positions = await self.redis.hmget(self.partitions_key, [str(p) for p in partitions]) if partitions else []
        ranges = {
            p: (int(o) + 1 if o is not None else 0, ends.get(p, 0)) for p, o in zip(partitions, positions, strict=True)
        }
        ranges = {p: r for p, r in ranges.items() if r[0] < r[1]}
        before = self.stats.replayed
        await self._replay(ranges)
        await self.redis.set(self.keys.marker, repr(time.time()))
        log.info(
            "rebuilt the views of %d partitions from the log: %d records in %.1f s",
            len(partitions),
            self.stats.replayed - before,
            time.perf_counter() - started,
        )
