"""The Redis materialized view of each board: the read model the processor writes and gateways read.

Per board (keys share the `{board}` hash tag, so one Lua script may touch them all on a cluster):

- `{prefix}:view:{board}` hash — `version` (latest folded), `offset` (Kafka offset of the board's
  last folded record; a board lives in one partition), `updated`, and the compacted `state` at
  `state_version` with its state vector `sv`. The state is compacted every few hundred versions,
  not on every update: the updates after it are in the stream.
- `{prefix}:stream:{board}` stream — one entry per version with id `{version}-0` and fields
  v (version), o (offset), t (time), c (client), u (user), d (the update). It always holds every
  version after `state_version` plus `keep` before it, so a reader resuming from a version it has
  seen (a gateway after a blip) finds the next one by id.
- `{prefix}:heads` hash — board → JSON {v, t, title, shapes}: the boards list without scanning.
- `{prefix}:views` string — present while the views are complete. FLUSHALL (or a Redis restart
  without persistence) removes it; the processor then rebuilds every view from the log and sets
  it again, and gateways refuse to load boards they cannot find meanwhile instead of serving an
  empty board.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from engine.errors import StorageUnavailable
from engine.events import BoardHead, Event, Provenance

# KEYS: view, stream, heads, marker, partitions (how far each partition is folded)
# ARGV: check_marker, expected_offset, board, version, offset, updated, head_json,
#       state ('' keeps the current one), state_version, sv, trim_minid, n, entries,
#       partition, expected_position ('' = do not check how far the partition is folded)
# `entries` packs n x (version, offset, t, c, u, d), each field a 4-byte big-endian length + bytes
# (see pack_entries): one argument instead of 6n, because redis-py's command packing copies its
# buffer per argument and dominated the fold's cost with thousands of arguments.
# Returns 1 written, 0 the view or the partition's position moved on (another processor instance
# wrote it, or Redis lost recent writes), -1 the views were lost.
FOLD_SCRIPT = """
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[4]) == 0 then return -1 end
local current = redis.call('HGET', KEYS[1], 'offset') or '-1'
if current ~= ARGV[2] then return 0 end
if ARGV[15] ~= '' and (redis.call('HGET', KEYS[5], ARGV[14]) or '-1') ~= ARGV[15] then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[4], 'offset', ARGV[5], 'updated', ARGV[6])
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[1], 'state', ARGV[8], 'state_version', ARGV[9], 'sv', ARGV[10])
end
local n = tonumber(ARGV[12])
local blob = ARGV[13]
local pos = 1
local f = {}
for _ = 1, n do
  for j = 1, 6 do
    local len
    len, pos = struct.unpack('>I4', blob, pos)
    f[j] = string.sub(blob, pos, pos + len - 1)
    pos = pos + len
  end
  redis.call('XADD', KEYS[2], f[1] .. '-0', 'v', f[1], 'o', f[2], 't', f[3], 'c', f[4], 'u', f[5], 'd', f[6])
end
redis.call('XTRIM', KEYS[2], 'MINID', '~', ARGV[11])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[7])
return 1
"""


# KEYS: view, stream, marker. Returns state, state_version, version, offset, [entries after the state], ready.
LOAD_SCRIPT = """
local v = redis.call('HMGET', KEYS[1], 'state', 'state_version', 'version', 'offset')
local base = tonumber(v[2] or '0')
local entries = redis.call('XRANGE', KEYS[2], (base + 1) .. '-0', '+')
return {v[1], v[2], v[3], v[4], entries, redis.call('EXISTS', KEYS[3])}
"""


@dataclass(frozen=True, slots=True)
class ViewKeys:
    """Key names under one prefix (tests and side-by-side deployments use their own prefix)."""

    prefix: str

    def view(self, board: str) -> str:
        """The board's view hash."""
        return f"{self.prefix}:view:{{{board}}}"

    def stream(self, board: str) -> str:
        """The board's update stream."""
        return f"{self.prefix}:stream:{{{board}}}"

    @property
    def heads(self) -> str:
        """The hash of every board's head."""
        return f"{self.prefix}:heads"

    @property
    def marker(self) -> str:
        """Present while the views are complete (not lost by a flush)."""
        return f"{self.prefix}:views"

    def acks(self, gateway: str) -> str:
        """The pub/sub channel telling one gateway which of its records are folded, at which version."""
        return f"{self.prefix}:acks:{gateway}"


@dataclass(frozen=True, slots=True)
class ViewState:
    """A board's view as one consistent read: compacted state, the updates after it, the head."""

    state: bytes | None
    state_version: int
    version: int
    offset: int
    events: list[Event]


def pack_entries(entries: list[tuple[bytes, ...]]) -> bytes:
    """Stream entries as one FOLD_SCRIPT argument: every field length-prefixed (4 bytes, big-endian)."""
    return b"".join([b"".join([len(v).to_bytes(4, "big") + v for v in fields]) for fields in entries])


def stream_id(version: int) -> str:
    """The stream entry id of a version."""
    return f"{version}-0"


def decode_entry(board: str, fields: dict[bytes, bytes]) -> Event:
    """One stream entry as an Event."""
    return Event(
        board,
        int(fields[b"v"]),
        fields[b"d"],
        Provenance(float(fields[b"t"]), fields[b"c"].decode(), fields[b"u"].decode()),
    )


def _int(value: Any, default: int = 0) -> int:
    return int(value) if value is not None else default


class RedisViews:
    """Reads of the views, shared by the gateway's event log, snapshot store and fan-out."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis: Any = redis  # redis-py's command types are looser than its replies
        self.keys = ViewKeys(prefix)
        self._load = redis.register_script(LOAD_SCRIPT)

    async def views_ready(self) -> bool:
        """False while the views are lost (flushed) and not yet rebuilt."""
        return bool(await self.redis.exists(self.keys.marker))

    async def load(self, board: str, require_ready: bool = True) -> ViewState:
        """State + version + the stream after the state, read atomically (one Lua script)."""
        keys = [self.keys.view(board), self.keys.stream(board), self.keys.marker]
        state, state_version, version, offset, entries, ready = await self._load(keys=keys)
        if version is None:
            if require_ready and not ready:
                raise StorageUnavailable("the board views are being rebuilt from the log; retry shortly")
            return ViewState(None, 0, 0, -1, [])
        events = [decode_entry(board, dict(zip(flat[::2], flat[1::2], strict=True))) for _id, flat in entries]
        base = _int(state_version)
        if not _dense(events, base, _int(version)):
            raise StorageUnavailable(f"the view of board {board} is missing updates after its state; retry")
        return ViewState(state, base, _int(version), _int(offset, -1), events)

    async def range(self, board: str, after: int, upto: int | None, limit: int | None) -> list[Event]:
        """Stream entries with after < version <= upto (possibly missing a trimmed prefix)."""
        entries = await self.redis.xrange(
            self.keys.stream(board),
            min=stream_id(after + 1),
            max=stream_id(upto) if upto is not None else "+",
            count=limit,
        )
        return [decode_entry(board, fields) for _id, fields in entries]

    async def head(self, board: str) -> int:
        """The board's latest folded version (0 if none)."""
        return _int(await self.redis.hget(self.keys.view(board), "version"))

    async def heads(self) -> list[tuple[BoardHead, dict[str, Any]]]:
        """Every board's head with its summary fields (title, shapes)."""
        raw = await self.redis.hgetall(self.keys.heads)
        result = []
        for board, value in raw.items():
            head = json.loads(value)
            result.append((BoardHead(board.decode(), int(head["v"]), float(head["t"])), head))
        result.sort(key=lambda item: item[0].board)
        return result


def _dense(events: list[Event], base: int, version: int) -> bool:
    """True if `events` are exactly versions base+1 .. >= version (nothing trimmed in between)."""
    if not events:
        return version <= base
    dense = events[-1].version - events[0].version == len(events) - 1
    return dense and events[0].version == base + 1 and events[-1].version == version


@dataclass(frozen=True, slots=True)
class ViewSummary:
    """What the boards list shows of a board, as the processor last folded it."""

    board: str
    version: int
    updated: float
    title: str
    shapes: int


@dataclass(frozen=True, slots=True)
class ViewSnapshot:
    """A compacted board state at a version (the engine's Snapshot)."""

    version: int
    state: bytes


class RedisSnapshotStore:
    """The SnapshotStore of a distributed gateway: the compacted state in the board's Redis view."""

    def __init__(self, views: RedisViews) -> None:
        self.views = views

    async def start(self) -> None:
        """Nothing to open: the Redis client is shared."""

    async def close(self) -> None:
        """Nothing to close: the Redis client is shared."""

    async def latest(self, board: str, at_or_before: int | None = None) -> ViewSnapshot | None:
        """The view's compacted state (the view keeps only the latest one)."""
        async with self.views.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(self.views.keys.view(board), ["state", "state_version", "version"])
            pipe.exists(self.views.keys.marker)
            (state, state_version, version), ready = await pipe.execute()
        if version is None and not ready:
            raise StorageUnavailable("the board views are being rebuilt from the log; retry shortly")
        if state is None:
            return None
        snapshot = ViewSnapshot(_int(state_version), bytes(state))
        if at_or_before is not None and snapshot.version > at_or_before:
            return None
        return snapshot

    async def summaries(self) -> dict[str, ViewSummary]:
        """Board summaries (title, shape count) as the processor last folded them."""
        return {
            head.board: ViewSummary(
                head.board, head.version, head.updated, str(raw.get("title", "")), int(raw.get("shapes", 0))
            )
            for head, raw in await self.views.heads()
        }
