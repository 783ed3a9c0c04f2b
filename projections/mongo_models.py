"""MongoDB documents of the distributed projections (Beanie models).

Collections (one database, `settings.mongo_db`):

- ``boards``: one document per board, the compacted state with its JSON rendering (per
  engine.model), the version it includes and where in the topic that version came from.
- ``updates``: the archive, one document per accepted update with its provenance; unique on
  (board, version). Survives Kafka retention; history replays from it.
- ``checkpoints``: the compacted state every K versions; unique on (board, version).
- history (projections.history): each ``updates`` document also carries what its version changed
  (``changes``, projections.changes JSON, and counts); ``plain_checkpoints``: the board as plain
  JSON every K versions, unique on (board, version); ``shape_versions``: per (board, shape) and
  projector batch, the versions that touched the shape, unique on (board, shape, first version).
  History is complete up to the ``boards`` document's version (written after all of it).
- ``thumbnails``: per board, its thumbnail (projections.thumbnails) as JSON bytes, written with
  the board document (before it) and, like it, only moving forward.
- ``projector_cursors``: per topic partition, the offset folded into MongoDB (for lag and resume checks).

Every write is conditional on version, so a projection never goes backwards.
"""

from __future__ import annotations

from typing import Any

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel


class BoardDocument(Document):
    """The compacted board: state bytes, its JSON rendering, and the version it includes."""

    id: str = Field(alias="_id")  # type: ignore[assignment]  # the board id
    version: int
    updated: float  # provenance time of `version`, seconds since the epoch
    title: str
    shapes: int
    state: bytes  # the full Yjs state as one update (doc.get_update())
    content: dict[str, Any]  # engine.model.render(doc, id, version)
    partition: int  # topic partition of the board's records
    offset: int  # topic offset of the record that became `version`

    class Settings:
        name = "boards"
        indexes = [IndexModel([("updated", DESCENDING)])]


class UpdateRecord(Document):
    """One accepted update of one board, as archived: version, provenance and the Yjs bytes."""

    board: str
    version: int
    time: float  # seconds since the epoch, when the log accepted it
    client: str
    user: str
    data: bytes
    partition: int
    offset: int
    # history: what this version changed (projections.changes.Changes.encode) and its counts;
    # absent on updates archived before history existed.
    added: int = 0
    changed: int = 0
    removed: int = 0
    meta: bool = False
    changes: str | None = None

    class Settings:
        name = "updates"
        indexes = [
            # The only secondary index: each one costs every archived update a write (measured 5x on the
            # MongoDB-wire dev server). Lookups by time binary-search versions (MongoProjectionStore.version_at).
            IndexModel([("board", ASCENDING), ("version", ASCENDING)], unique=True, name="board_version"),
        ]


class CheckpointDocument(Document):
    """The compacted state of a board after `version` (every K versions)."""

    board: str
    version: int
    state: bytes

    class Settings:
        name = "checkpoints"
        indexes = [IndexModel([("board", ASCENDING), ("version", DESCENDING)], unique=True, name="board_version")]


class PlainCheckpointDocument(Document):
    """The plain board (projections.changes) after `version`, as JSON text (every K versions)."""

    board: str
    version: int
    plain: str

    class Settings:
        name = "plain_checkpoints"
        indexes = [IndexModel([("board", ASCENDING), ("version", DESCENDING)], unique=True, name="board_version")]


class ShapeVersions(Document):
    """The versions first..last of one board that touched one shape, as folded in one projector batch.

    `touches` = [[version, time, client, user, kind, [fields]], ...] ascending. Batches cut
    differently after a crash may store a version twice (in two documents); readers deduplicate.
    """

    board: str
    shape: str
    first: int
    last: int
    touches: list[list[Any]]

    class Settings:
        name = "shape_versions"
        indexes = [
            IndexModel([("board", ASCENDING), ("shape", ASCENDING), ("first", ASCENDING)], unique=True, name="bsf"),
        ]


class ThumbnailDocument(Document):
    """A board's thumbnail: the first shapes of its rendering as JSON (UTF-8), as of `version`."""

    id: str = Field(alias="_id")  # type: ignore[assignment]  # the board id
    version: int
    body: bytes

    class Settings:
        name = "thumbnails"


class PartitionCursor(Document):
    """How far into one partition of the topic MongoDB has folded (the next offset to read)."""

    id: str = Field(alias="_id")  # type: ignore[assignment]  # f"{group}:{topic}:{partition}"
    group: str
    topic: str
    partition: int
    next_offset: int
    updated: float

    class Settings:
        name = "projector_cursors"


DOCUMENT_MODELS: list[type[Document]] = [
    BoardDocument,
    UpdateRecord,
    CheckpointDocument,
    PlainCheckpointDocument,
    ShapeVersions,
    ThumbnailDocument,
    PartitionCursor,
]
