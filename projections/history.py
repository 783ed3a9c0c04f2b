"""History queries: versions, the board at any version, diff, shape history, restore, fork.

Everything here reads through `HistoryArchive`, the small port an archive implements (SQLite in
embedded mode: projections.sqlite_archive; MongoDB in distributed mode). Two ways to the board
at version V, both "nearest checkpoint <= V + what came after it, up to V":

- as JSON (`render_at`, `diff`, exports, restore): the plain checkpoint and the per-version
  changes the projector recorded (projections.changes). Cost follows what changed, not the
  board's tombstones, so it stays fast on boards with a million updates.
- as Yjs (`state_at`, fork): the Yjs checkpoint and the log's updates after it, applied to a Doc.

Versions not projected yet (the projector lags the log by a batch) are answered from the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from pycrdt import Doc, Map, merge_updates

from engine.board_id import validate_board_id
from engine.errors import BoardNotFound, InkstreamError, VersionNotFound
from engine.events import Event
from engine.fold import load_doc
from engine.model import meta_map, shapes_map
from engine.service import BoardService
from projections.changes import Changes, PlainBoard, apply_changes, jsonable, plain_board, render_plain
from projections.excalidraw import ImportedScene, from_scene, import_update

#: Shapes written per local transaction when building an update (bounded: see NOTES.md).
CHUNK = 256


class YjsCheckpoint(Protocol):
    """A compacted Yjs state after `version`."""

    @property
    def version(self) -> int:
        """The version the state includes."""

    @property
    def state(self) -> bytes:
        """The state as one Yjs update."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One row of a board's version list. `summary` is None for a version not projected yet."""

    version: int
    time: float
    client: str
    user: str
    summary: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ShapeTouch:
    """One version that touched a shape: how (added / changed / removed), which fields, by whom."""

    version: int
    time: float
    client: str
    user: str
    kind: str
    fields: list[str]


class HistoryArchive(Protocol):
    """What history needs from an archive (the event log plus the history projections)."""

    async def head(self, board: str) -> int:
        """The latest version of `board` (0 if it has none)."""

    async def read(self, board: str, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[Event]:
        """Archived updates with after < version <= upto, in version order."""

    async def version_at(self, board: str, when: float) -> int:
        """The last version accepted at or before `when` (0 if none)."""

    async def latest(self, board: str, at_or_before: int | None = None) -> YjsCheckpoint | None:
        """The newest Yjs checkpoint with version <= at_or_before."""

    async def projected(self, board: str) -> int:
        """The version up to which per-version history rows exist (contiguous from 1)."""

    async def plain_latest(self, board: str, at_or_before: int) -> tuple[int, PlainBoard] | None:
        """The newest plain checkpoint with version <= at_or_before, as (version, plain board)."""

    async def changes(self, board: str, after: int, upto: int) -> list[tuple[int, Changes]]:
        """Recorded changes of the versions after < v <= upto, in order."""

    async def versions(self, board: str, after: int | None, before: int | None, limit: int) -> list[VersionInfo]:
        """Projected versions: ascending after `after`, or descending below `before`."""

    async def shape_history(self, board: str, shape: str, after: int, limit: int) -> list[ShapeTouch]:
        """Versions that touched `shape`, ascending after `after`."""


def empty_plain() -> PlainBoard:
    """The plain board before version 1."""
    return {"shapes": {}, "meta": {}}


async def find_version_at(archive: HistoryArchive, board: str, when: float) -> int:
    """The last version accepted at or before `when`: a binary search by version (log times only grow).

    ~log2(versions) point reads on the (board, version) key instead of a scan of the board's rows.
    """
    lo, hi = 0, await archive.head(board)  # invariant: time(lo) <= when (lo=0: before everything)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        events = await archive.read(board, after=mid - 1, upto=mid)
        if events and events[0].provenance.time <= when:
            lo = mid
        else:
            hi = mid - 1
    return lo


def summary_of(changes: Changes, ids_per_kind: int = 50) -> dict[str, Any]:
    """The summary shown for one version: counts and (some of) the shape ids per kind."""
    out: dict[str, Any] = {}
    for kind in ("added", "changed", "removed"):
        ids = changes.ids(kind)
        out[kind] = len(ids)
        out[f"{kind}_ids"] = ids[:ids_per_kind]
    out["meta"] = changes.meta is not None
    return out


class BoardHistory:
    """History queries over one archive."""

    def __init__(self, archive: HistoryArchive) -> None:
        self.archive = archive

    async def resolve(self, board: str, version: int | None = None, at: float | None = None) -> int:
        """The version a request means: `version`, the last one at or before `at`, else the latest.

        Version 0 is the empty board (before version 1), as everywhere a version is accepted.
        Raises BoardNotFound for a board without versions, VersionNotFound outside 0..latest.
        """
        head = await self.archive.head(board)
        if head == 0:
            raise BoardNotFound(f"board {board} does not exist")
        if at is not None:
            # ISO times carry microseconds: a time covers its whole microsecond, so a version's own
            # (rounded) time finds that version.
            found = await self.archive.version_at(board, at + 1e-6)
            if found == 0:
                raise VersionNotFound(f"board {board} has no version at or before that time")
            return found
        if version is None:
            return head
        if version < 0 or version > head:
            raise VersionNotFound(f"board {board} has versions 1..{head}; there is no version {version}")
        return version

    async def doc_at(self, board: str, version: int) -> Doc[Any]:
        """A Doc holding the board exactly as it was after `version` (Yjs checkpoint + the log)."""
        checkpoint = await self.archive.latest(board, at_or_before=version)
        base = checkpoint.version if checkpoint else 0
        events = await self.archive.read(board, after=base, upto=version)
        return await asyncio.to_thread(load_doc, checkpoint.state if checkpoint else None, [e.update for e in events])

    async def state_at(self, board: str, version: int) -> bytes:
        """The board after `version` as one Yjs update."""
        doc = await self.doc_at(board, version)
        return bytes(doc.get_update())

    async def plain_at(self, board: str, version: int) -> PlainBoard:
        """The plain board after `version` (plain checkpoint + recorded changes; the Doc if not projected)."""
        if version == 0:
            return empty_plain()
        if version > await self.archive.projected(board):
            return plain_board(await self.doc_at(board, version))
        found = await self.archive.plain_latest(board, at_or_before=version)
        base, plain = found if found is not None else (0, empty_plain())
        for _v, changes in await self.archive.changes(board, after=base, upto=version):
            apply_changes(plain, changes)
        return plain

    async def render_at(self, board: str, version: int) -> dict[str, Any]:
        """The board as JSON (engine.model schema) after `version`."""
        return render_plain(await self.plain_at(board, version), board, version)

    async def diff(self, board: str, from_version: int, to_version: int) -> dict[str, Any]:
        """Shapes added, removed and changed (with the fields that changed) from one version to another."""
        before = await self.render_at(board, from_version)
        after = await self.render_at(board, to_version)
        return {"id": board, "from": from_version, "to": to_version, **diff_boards(before, after)}

    async def versions(
        self, board: str, after: int | None = None, before: int | None = None, limit: int = 100
    ) -> list[VersionInfo]:
        """A page of versions. Ascending from `after` (default 0), or descending below `before`."""
        head = await self.archive.head(board)
        if head == 0:
            raise BoardNotFound(f"board {board} does not exist")
        projected = await self.archive.projected(board)
        if before is not None:
            before = min(before, head + 1)
            rows: list[VersionInfo] = []
            if before - 1 > projected:  # the newest versions may not be projected yet
                lo = max(projected, before - 1 - limit)
                rows = [_unprojected(e) for e in reversed(await self.archive.read(board, after=lo, upto=before - 1))]
            if len(rows) < limit:
                rows += await self.archive.versions(board, None, min(before, projected + 1), limit - len(rows))
            return rows
        start = after or 0
        rows = await self.archive.versions(board, start, None, limit) if start < projected else []
        last = rows[-1].version if rows else start
        if len(rows) < limit and last < head:
            events = await self.archive.read(board, after=max(last, projected), limit=limit - len(rows))
            rows += [_unprojected(e) for e in events]
        return rows

    async def shape_history(self, board: str, shape: str, after: int = 0, limit: int = 100) -> list[ShapeTouch]:
        """Every projected version that touched `shape`, by whom, in order."""
        if await self.archive.head(board) == 0:
            raise BoardNotFound(f"board {board} does not exist")
        return await self.archive.shape_history(board, shape, after, limit)


def _unprojected(event: Event) -> VersionInfo:
    p = event.provenance
    return VersionInfo(event.version, p.time, p.client_id, p.user, None)


# -- pure functions ------------------------------------------------------------------------------


def diff_boards(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Compare two renderings: shapes added / removed (full), changed (per field {"from", "to"}), meta."""
    old = {s["id"]: s for s in before["shapes"]}
    new = {s["id"]: s for s in after["shapes"]}
    changed = []
    for shape_id in sorted(old.keys() & new.keys()):
        fields = _field_diff(old[shape_id], new[shape_id])
        if fields:
            changed.append({"id": shape_id, "fields": fields})
    return {
        "added": [new[i] for i in sorted(new.keys() - old.keys())],
        "removed": [old[i] for i in sorted(old.keys() - new.keys())],
        "changed": changed,
        "meta": _field_diff(before.get("meta", {}), after.get("meta", {})),
    }


def _field_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: {"from": a.get(k), "to": b.get(k)} for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def edit_update(state: bytes, edit: Callable[[Doc[Any]], list[Callable[[], object]]]) -> bytes | None:
    """Apply local edits to a copy of `state` in bounded transactions; return them as ONE update.

    `edit(doc)` returns the operations to run. The result holds only what the edits changed
    (transaction updates, merged), never the whole delete set; None if nothing changed.
    """
    doc = load_doc(state)
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(bytes(event.update)))
    try:
        ops = edit(doc)
        for start in range(0, len(ops), CHUNK):
            with doc.transaction(origin="inkstream-history"):
                for op in ops[start : start + CHUNK]:
                    op()
    finally:
        doc.unobserve(sub)
    updates = [u for u in updates if u != b"\x00\x00"]
    if not updates:
        return None
    return updates[0] if len(updates) == 1 else bytes(merge_updates(*updates))


def restore_ops(doc: Doc[Any], target: PlainBoard, known: PlainBoard | None = None) -> list[Callable[[], object]]:
    """Operations that make `doc`'s shapes and meta equal to the plain board `target`.

    Shapes added since are deleted, deleted ones are recreated (same id, same fields), changed
    fields are set back and fields that did not exist are deleted. Other root types are untouched.
    `known` is `doc`'s plain board if the caller has it (reading it through pycrdt costs ~20 us a
    field); the Doc is still consulted for every shape that differs.
    """
    shapes = shapes_map(doc)
    ops: list[Callable[[], object]] = []
    current = known["shapes"] if known is not None else (jsonable(shapes) or {})
    wanted: dict[str, Any] = target.get("shapes", {})
    for shape_id in current.keys() - wanted.keys():
        ops.append(partial(shapes.pop, shape_id, None))
    for shape_id, value in wanted.items():
        if shape_id not in current:
            ops.append(partial(_put, shapes, shape_id, value))
        elif current[shape_id] != value:
            live = shapes.get(shape_id)
            if isinstance(live, Map) and isinstance(value, dict) and isinstance(current[shape_id], dict):
                ops.extend(_map_ops(live, current[shape_id], value))
            else:
                ops.append(partial(_put, shapes, shape_id, value))
    meta = meta_map(doc)
    current_meta = jsonable(meta) or {}  # small: always read from the Doc
    ops.extend(_map_ops(meta, current_meta, target.get("meta", {})))
    return ops


def _map_ops(live: Map[Any], current: dict[str, Any], wanted: dict[str, Any]) -> list[Callable[[], object]]:
    ops: list[Callable[[], object]] = []
    for key in current.keys() - wanted.keys():
        ops.append(partial(live.pop, key))
    for key, value in wanted.items():
        if key not in current or current[key] != value:
            ops.append(partial(live.__setitem__, key, value))
    return ops


def _put(shapes: Map[Any], shape_id: str, value: Any) -> None:
    shapes[shape_id] = Map(value) if isinstance(value, dict) else value


def restore_update(state: bytes, target: PlainBoard, known: PlainBoard | None = None) -> bytes | None:
    """One update that, applied to a board at `state`, makes it look like `target`; None if it already does."""
    return edit_update(state, lambda doc: restore_ops(doc, target, known))


# -- commands: they append through the BoardService, so connected clients see them live ----------


class BoardExists(InkstreamError):
    """A fork target id that already has versions."""

    reason = "board_exists"


async def restore(service: BoardService, history: BoardHistory, board: str, version: int, user: str) -> Event | None:
    """Append ONE update that makes `board` look like `version` again; None if it already does."""
    target = await history.plain_at(board, version)
    live = await service.open(board)
    at, state = live.version, live.state()
    known = await history.plain_at(board, at) if at <= await history.archive.projected(board) else None
    update = await asyncio.to_thread(restore_update, state, target, known)
    if update is None:
        return None
    return await service.submit(board, update, client_id=f"restore:{version}", user=user)


async def fork(
    service: BoardService, history: BoardHistory, board: str, version: int, new_id: str, user: str
) -> Event | None:
    """Start board `new_id` with the state of `board` at `version` as its first update."""
    validate_board_id(new_id)
    async with _FORKS:  # one fork at a time per process: the exists-check and the first append are one step
        if service.loaded_board(new_id) is not None or await service.log.head(new_id) > 0:
            raise BoardExists(f"board {new_id} already exists")
        state = await history.state_at(board, version)
        return await service.submit(new_id, state, client_id=f"fork:{board}@{version}", user=user)


async def import_scene(service: BoardService, board: str, scene: Any, user: str) -> tuple[Event | None, ImportedScene]:
    """Add an Excalidraw scene's shapes to `board` as one update; report what was skipped."""
    imported = from_scene(scene)
    if not imported.shapes:
        return None, imported
    live = await service.open(validate_board_id(board))
    update = await asyncio.to_thread(import_update, live.state(), imported, user)
    if update is None:
        return None, imported
    return await service.submit(board, update, client_id="import:excalidraw", user=user), imported


_FORKS = asyncio.Lock()
