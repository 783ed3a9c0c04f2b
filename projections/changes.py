"""What one version changed, recorded as the projector folds it, and the plain board it applies to.

A *plain board* is the board's content as plain JSON values, before schema filtering:
``{"shapes": {shape id: raw value}, "meta": {raw meta}}``. `engine.model.render` of a Doc and
`render_plain` of the plain board of the same Doc are equal, so history can answer "the board
at version V" from a plain checkpoint plus the per-version changes after it, without loading a
Yjs Doc: loading a Doc costs time proportional to its tombstones (every overwritten field of a
long-lived board), replaying changes costs time proportional to what changed.

A version's `Changes` maps each touched shape id to one of:

- ``None``: the shape was removed;
- ``{"=": value}``: the shape was added (or replaced as a whole) with this value;
- ``{"~": {field: value}, "-": [field, ...]}``: these fields were set / deleted.

and ``meta`` to the whole new meta value when it changed.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Map

from engine.fold import apply_update
from engine.model import count_shapes, meta_map, plain, render_board, render_meta_plain, shapes_map

PlainBoard = dict[str, Any]
ShapeChange = dict[str, Any] | None

ADDED = "added"
CHANGED = "changed"
REMOVED = "removed"


def jsonable(value: Any) -> Any:
    """`value` as plain JSON: `engine.model.plain`, the one conversion every rendering road uses.

    It never raises on what a hostile client may write (XML types, subdocuments, binary, NaN), so
    it cannot stop history (or the projector) for a board.
    """
    return plain(value)


@dataclass(slots=True)
class Changes:
    """The effect of one version on shapes and meta."""

    shapes: dict[str, ShapeChange] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # shape id -> added / changed / removed
    meta: dict[str, Any] | None = None
    _encoded: str | None = field(default=None, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        """True when nothing a rendering shows was touched."""
        return not self.shapes and self.meta is None

    def ids(self, kind: str) -> list[str]:
        """Shape ids touched with `kind`, sorted."""
        return sorted(s for s, k in self.kinds.items() if k == kind)

    def fields(self, shape_id: str) -> list[str]:
        """Names of the fields of `shape_id` this version set or deleted (all fields if added)."""
        change = self.shapes.get(shape_id)
        if change is None:
            return []
        if "=" in change:
            value = change["="]
            return sorted(value) if isinstance(value, dict) else []
        return sorted([*change.get("~", {}), *change.get("-", [])])

    def encode(self) -> str:
        """Compact JSON for storage (computed once: the projector needs it twice)."""
        if self._encoded is not None:
            return self._encoded
        body: dict[str, Any] = {"s": self.shapes, "k": self.kinds}
        if self.meta is not None:
            body["m"] = self.meta
        self._encoded = json.dumps(body, separators=(",", ":"))
        return self._encoded

    @classmethod
    def decode(cls, text: str) -> Changes:
        """The inverse of `encode`."""
        body = json.loads(text)
        return cls(shapes=body.get("s", {}), kinds=body.get("k", {}), meta=body.get("m"))


_DELETED = object()
_READ = object()


class ChangeRecorder:
    """Observes a board Doc deeply and reports what each applied update changed.

    Usage: `recorder.take()` after each `apply_update`. Plain field values come from the events
    (observers run after the transaction, so they are final); shapes added whole and nested
    types are read from the Doc in `take`, which is slower through pycrdt's Python layer.
    """

    def __init__(self, doc: Doc[Any]) -> None:
        self.doc = doc
        self._shapes = shapes_map(doc)
        self._meta = meta_map(doc)
        self._top: dict[str, str] = {}  # shape id -> add / update / delete
        self._fields: dict[str, dict[str, Any]] = {}  # shape id -> field -> new value / _DELETED / _READ
        self._meta_touched = False
        self._subs = [self._shapes.observe_deep(self._on_shapes), self._meta.observe_deep(self._on_meta)]

    def _on_shapes(self, events: list[Any]) -> None:
        for event in events:
            path = list(getattr(event, "path", []))
            if not path:
                for key, change in getattr(event, "keys", {}).items():
                    self._top[str(key)] = str(change.get("action", "update"))
            elif len(path) == 1:
                fields = self._fields.setdefault(str(path[0]), {})
                for key, change in getattr(event, "keys", {}).items():
                    if change.get("action") == "delete":
                        fields[str(key)] = _DELETED
                    else:
                        value = change.get("newValue")
                        plain = value is None or isinstance(value, (bool, int, float, str, dict, list))
                        fields[str(key)] = value if plain else _READ
            else:  # a nested type inside a field changed: the whole field changed
                self._fields.setdefault(str(path[0]), {})[str(path[1])] = _READ

    def _on_meta(self, events: list[Any]) -> None:
        self._meta_touched = True

    def take(self) -> Changes:
        """What changed since the last `take`."""
        changes = Changes()
        for shape_id, action in self._top.items():
            if action == "delete":
                changes.shapes[shape_id] = None
                changes.kinds[shape_id] = REMOVED
            else:
                changes.shapes[shape_id] = {"=": jsonable(self._shapes.get(shape_id))}
                changes.kinds[shape_id] = ADDED if action == "add" else CHANGED
        for shape_id, names in self._fields.items():
            if shape_id in changes.shapes:
                continue
            set_: dict[str, Any] = {}
            deleted: list[str] = []
            for name, value in sorted(names.items()):
                if value is _DELETED:
                    deleted.append(name)
                elif value is _READ:
                    shape = self._shapes.get(shape_id)
                    if isinstance(shape, Map) and name in shape:
                        set_[name] = jsonable(shape[name])
                    else:
                        deleted.append(name)
                else:
                    set_[name] = jsonable(value)
            entry: dict[str, Any] = {"~": set_}
            if deleted:
                entry["-"] = deleted
            changes.shapes[shape_id] = entry
            changes.kinds[shape_id] = CHANGED
        if self._meta_touched:
            changes.meta = jsonable(self._meta) or {}
        self._top.clear()
        self._fields.clear()
        self._meta_touched = False
        return changes

    def record(self, update: bytes) -> Changes:
        """Apply one update to the observed Doc and return what it changed (raises InvalidUpdate).

        The one place both projectors (local and MongoDB) turn an update into a version's changes.
        """
        self.take()  # drop anything observed outside an update (there should be nothing)
        try:
            apply_update(self.doc, update)
        finally:
            changes = self.take()
        return changes

    def close(self) -> None:
        """Stop observing."""
        self._shapes.unobserve(self._subs[0])
        self._meta.unobserve(self._subs[1])


def plain_board(doc: Doc[Any]) -> PlainBoard:
    """The plain board of a Doc."""
    shapes = jsonable(shapes_map(doc))
    meta = jsonable(meta_map(doc))
    return {"shapes": shapes if isinstance(shapes, dict) else {}, "meta": meta if isinstance(meta, dict) else {}}


def plain_summary(board: PlainBoard) -> tuple[str, int]:
    """(title, number of shapes the rendering lists) of a plain board: the boards list's summary."""
    meta = render_meta_plain(board.get("meta", {}))
    return str(meta.get("title", "")), count_shapes(board.get("shapes", {}))


def apply_changes(plain: PlainBoard, changes: Changes) -> None:
    """Apply one version's changes to a plain board, in place."""
    shapes: dict[str, Any] = plain["shapes"]
    for shape_id, change in changes.shapes.items():
        if change is None:
            shapes.pop(shape_id, None)
        elif "=" in change:
            shapes[shape_id] = copy.deepcopy(change["="])
        else:
            shape = shapes.get(shape_id)
            if not isinstance(shape, dict):
                continue
            shape.update(copy.deepcopy(change.get("~", {})))
            for name in change.get("-", []):
                shape.pop(name, None)
    if changes.meta is not None:
        plain["meta"] = copy.deepcopy(changes.meta)


def render_plain(board: PlainBoard, board_id: str, version: int) -> dict[str, Any]:
    """The board as JSON: `engine.model.render_board`, as `engine.model.render` of the Doc it came from."""
    return render_board(board["shapes"], board.get("meta", {}), board_id, version)


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One version as history sees it: provenance plus what it changed."""

    board: str
    version: int
    time: float
    client: str
    user: str
    changes: Changes
