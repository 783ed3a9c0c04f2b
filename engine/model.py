"""The board model: the one schema shared by the web app, the HTTP API, projections and exports.

A board is a Yjs document with two root types:

- ``shapes``: Y.Map of shape id -> Y.Map of plain-valued fields (see SHAPE_FIELDS).
- ``meta``: Y.Map of board-level settings; ``title`` is the board's name.

One rendering, whichever road leads to it. A board reaches JSON two ways: from a live Doc
(`render`: the board API, MongoDB's board documents) and from a *plain board* kept by history
(`projections.changes`: the board at a version, diff, export, restore). Both go through the same
two functions here, so the same state always renders to the same JSON text:

- `plain`: a value read from a Doc as plain JSON -- the JSON the CRDT core writes for it (`str()`
  of a shared type), with every number a float (Yjs numbers are IEEE doubles: the core writes 1.0
  as ``1``, pycrdt reads it back as ``1.0``; the rendering always says ``1.0``) and non-finite
  numbers as null;
- `render_board`: a plain board as the API's JSON, keeping only schema fields of the right types
  (a Doc is whatever clients wrote, so values of unexpected types are skipped, never trusted).

`is_shape` is the one rule for what the rendering lists, and the boards list counts with it
(`count_shapes`, `summarize`, `ShapeTally`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

SHAPE_TYPES = frozenset({"stroke", "rect", "ellipse", "line", "arrow", "text", "sticky", "image"})

#: Field name -> JSON types allowed. `points` is a flat [x0, y0, x1, y1, ...] relative to (x, y).
SHAPE_FIELDS: dict[str, tuple[type, ...]] = {
    "type": (str,),
    "x": (int, float),
    "y": (int, float),
    "w": (int, float),
    "h": (int, float),
    "points": (list,),
    "rotation": (int, float),
    "stroke": (str,),
    "fill": (str,),
    "width": (int, float),
    "opacity": (int, float),
    "font": (str, int, float),
    "text": (str,),
    "z": (str,),
    "createdBy": (str,),
    "createdAt": (int, float),
    "src": (str,),  # image shapes: a URL or data URI
}

META_FIELDS: dict[str, tuple[type, ...]] = {"title": (str,)}

_XML = (XmlFragment, XmlElement, XmlText)


def shapes_map(doc: Doc[Any]) -> Map[Any]:
    """The `shapes` root map of a board Doc."""
    shapes: Map[Any] = doc.get("shapes", type=Map)
    return shapes


def meta_map(doc: Doc[Any]) -> Map[Any]:
    """The `meta` root map of a board Doc."""
    meta: Map[Any] = doc.get("meta", type=Map)
    return meta


# -- a Doc's values as plain JSON -----------------------------------------------------------------


def _no_constant(_constant: str) -> None:
    return None


def plain_json(text: str) -> Any:
    """`plain` of a shared map or array from its JSON text (`str(value)`): no Doc involved, so any
    thread may do it."""
    return json.loads(text, parse_int=float, parse_constant=_no_constant)


def plain(value: Any) -> Any:
    """A value read from a board Doc as plain JSON: THE conversion every rendering road uses.

    Shared maps and arrays are converted in one call into the Rust core (much faster than
    `to_py`, and it never raises on XML types inside); text and XML types become their string;
    plain values (what pycrdt returns for Yjs "any" content, e.g. in observer events) are
    converted the way the core writes them, so reading a field on its own or as part of its
    shape gives the same JSON: numbers as floats, NaN and infinities as None, binary as a list
    of byte values, a subdocument as {"guid"}.
    """
    if isinstance(value, (Map, Array)):
        return plain_json(str(value))
    if isinstance(value, (Text, *_XML)):
        return str(value)
    return _plain_any(value)


def _plain_any(value: Any) -> Any:
    if value is None or value is True or value is False or isinstance(value, str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return float(value) if abs(value) <= 2**1023 else None
    if isinstance(value, (bytes, bytearray)):
        return [float(b) for b in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Doc):
        return {"guid": str(value.guid)}
    return None


# -- the one rendering ----------------------------------------------------------------------------


def shape_type_ok(kind: Any) -> bool:
    """True if `kind` (a shape's `type` as plain JSON) is a shape type the rendering lists."""
    return type(kind) is str and kind in SHAPE_TYPES


def is_shape(raw: Any) -> bool:
    """True if the plain value `raw` (one entry of `shapes`) is listed by the rendering."""
    return isinstance(raw, dict) and shape_type_ok(raw.get("type"))


def count_shapes(shapes: Any) -> int:
    """How many shapes the rendering lists for a plain `shapes` map (shape id -> plain value)."""
    if not isinstance(shapes, dict):
        return 0
    return sum(1 for value in shapes.values() if is_shape(value))


def _finite(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    return kind is int and abs(value) <= 2**1023


def _of(value: Any, kinds: tuple[type, ...]) -> bool:
    # Not isinstance() inline: with a runtime tuple of types mypy would narrow `value` to `object`.
    return isinstance(value, kinds)


def _points(field: list[Any]) -> list[float]:
    if {type(p) for p in field} <= {float}:  # the usual case: plain finite floats
        out = [p + 0.0 for p in field]  # + 0.0: -0.0 -> 0.0 (the core writes -0.0 as 0)
        if math.isfinite(sum(out)):
            return out
    return [float(p) + 0.0 for p in field if _finite(p)]


def render_shape(shape_id: str, raw: Any) -> dict[str, Any] | None:
    """One shape (its fields as plain JSON) keeping only schema fields of the right types; None if not a shape.

    Numbers are always floats (and -0.0 is 0.0), so every road to the same state gives the same text.
    """
    if not is_shape(raw):
        return None
    shape: dict[str, Any] = {"id": shape_id}
    for name, kinds in SHAPE_FIELDS.items():
        field = raw.get(name)
        if field is None or field is True or field is False or not _of(field, kinds):
            continue
        if name == "points":
            shape[name] = _points(field)
        elif isinstance(field, str):
            shape[name] = field
        elif _finite(field):
            shape[name] = float(field) + 0.0
    return shape


def _z_key(shape: dict[str, Any]) -> tuple[str, str]:
    return (str(shape.get("z", "")), str(shape["id"]))


def render_shapes_plain(shapes: Any) -> list[dict[str, Any]]:
    """The shapes of a plain `shapes` map, rendered, in stacking order (z ascending, ties by id)."""
    out = []
    for shape_id, value in shapes.items() if isinstance(shapes, dict) else ():
        shape = render_shape(str(shape_id), value)
        if shape is not None:
            out.append(shape)
    out.sort(key=_z_key)
    return out


def render_meta_plain(meta: Any) -> dict[str, Any]:
    """Board-level settings (title and friends) of a plain `meta` map, schema fields only."""
    out: dict[str, Any] = {}
    if isinstance(meta, dict):
        for name, kinds in META_FIELDS.items():
            value = meta.get(name)
            if isinstance(value, kinds) and not isinstance(value, bool):
                out[name] = value
    return out


def render_board(shapes: Any, meta: Any, board_id: str, version: int) -> dict[str, Any]:
    """The board as JSON, {"id", "version", "meta", "shapes"}, from its plain `shapes` and `meta` maps."""
    return {"id": board_id, "version": version, "meta": render_meta_plain(meta), "shapes": render_shapes_plain(shapes)}


# -- from a Doc -----------------------------------------------------------------------------------


def render_shapes(doc: Doc[Any]) -> list[dict[str, Any]]:
    """All valid shapes of a board, in stacking order (z ascending, ties by id)."""
    return render_shapes_plain(plain(shapes_map(doc)))


def render_meta(doc: Doc[Any]) -> dict[str, Any]:
    """Board-level settings (title and friends), schema fields only."""
    return render_meta_plain(plain(meta_map(doc)))


def render(doc: Doc[Any], board_id: str, version: int) -> dict[str, Any]:
    """The board as JSON: {"id", "version", "meta", "shapes"}."""
    return render_board(plain(shapes_map(doc)), plain(meta_map(doc)), board_id, version)


def dumps_json(value: Any) -> str:
    """JSON text as the HTTP API writes it (Starlette's JSONResponse: compact, UTF-8 as is, no NaN)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def render_body(doc: Doc[Any]) -> bytes:
    """`render` of `doc` as JSON bytes without its id and version: ``"meta":{...},"shapes":[...]}``.

    The part worth caching (it depends only on the Doc); `board_json` puts id and version in front.
    """
    return render_body_json(str(meta_map(doc)), str(shapes_map(doc)))


def render_body_json(meta_text: str, shapes_text: str) -> bytes:
    """`render_body` from the JSON text of the Doc's `meta` and `shapes` maps (`str(map)`).

    Reading the Doc is a third of rendering a 5,000-shape board (~55 of ~150 ms); this is the rest,
    pure Python on plain data, which a worker thread can do while the event loop keeps serving.
    """
    meta = render_meta_plain(plain_json(meta_text))
    text = dumps_json({"meta": meta, "shapes": render_shapes_plain(plain_json(shapes_text))})
    return text[1:].encode()


def board_json(board_id: str, version: int, body: bytes) -> bytes:
    """The board as JSON bytes, exactly as `dumps_json(render(doc, board_id, version))`, from `render_body(doc)`."""
    return b"".join((b'{"id":', dumps_json(board_id).encode(), b',"version":', str(int(version)).encode(), b",", body))


def _doc_entry_is_shape(value: Any) -> bool:
    """`is_shape` of one entry of a Doc's `shapes` map, reading only its type (not the whole shape)."""
    if isinstance(value, Map):
        return shape_type_ok(plain(value.get("type")))
    if isinstance(value, dict):
        return shape_type_ok(value.get("type"))
    return False


def count_doc_shapes(doc: Doc[Any]) -> int:
    """How many shapes the rendering of `doc` lists (reads every shape's type: ~5 us a shape)."""
    return sum(1 for value in shapes_map(doc).values() if _doc_entry_is_shape(value))


def summarize(doc: Doc[Any]) -> tuple[str, int]:
    """(title, number of shapes the rendering lists) of a board."""
    meta = render_meta(doc)
    return str(meta.get("title", "")), count_doc_shapes(doc)


class ShapeTally:
    """The number of shapes `render` lists, for a Doc that keeps changing (the view processor's).

    Reading every shape's type costs ~5 us a shape through pycrdt, too much to repeat for each
    small batch of a large board on the live path. The tally keeps one verdict per shape id and
    re-reads only the `shapes` keys a shallow observer reports set or removed (it does not fire
    for edits inside a shape), so adding, replacing and removing entries -- shapes or not -- is
    counted exactly at once. A shape's own `type` overwritten in place is invisible to that
    observer (and to the update's bytes: an overwrite names the item it replaces, not the key),
    so the tally also re-reads everything after an update that only deletes (a field removed)
    and, as a budget, once as many updates as it has shapes have been folded since the last full
    read (at most ~20 % on top of folding them): an in-place change of a shape's type to one the
    rendering does not list (no client does that; a hostile one can) shows in the count within
    that many updates of the board.
    """

    MIN_BUDGET = 32

    def __init__(self, doc: Doc[Any]) -> None:
        self._shapes = shapes_map(doc)
        self._valid: dict[str, bool] | None = None  # None: read everything on the next count()
        self._count = 0
        self._set: set[str] = set()  # keys set or removed since the last count()
        self._removed = 0
        self._delete_only = 0
        self._updates = 0  # updates since the last full read
        self._sub = self._shapes.observe(self._on_shapes)

    def _on_shapes(self, event: Any) -> None:
        for key, change in event.keys.items():
            if change.get("action") == "delete":
                self._removed += 1
            self._set.add(str(key))

    def saw(self, update: bytes) -> None:
        """Note one update applied to the Doc."""
        self._updates += 1
        if update[:1] == b"\x00" and update != b"\x00\x00":  # no new items, only deletions
            self._delete_only += 1

    def count(self) -> int:
        """The number of shapes the rendering lists (see the class notes for in-place type changes)."""
        valid = self._valid
        if valid is None or self._delete_only > self._removed or self._updates >= max(self.MIN_BUDGET, len(valid)):
            valid = self._valid = {str(k): _doc_entry_is_shape(v) for k, v in self._shapes.items()}
            self._count = sum(valid.values())
            self._updates = 0
        else:
            for key in self._set:
                before = valid.pop(key, False)
                value = self._shapes.get(key)
                now = _doc_entry_is_shape(value) if value is not None or key in self._shapes else None
                if now is not None:
                    valid[key] = now
                self._count += int(bool(now)) - int(before)
        self._set.clear()
        self._removed = self._delete_only = 0
        return self._count

    def close(self) -> None:
        """Stop observing the Doc."""
        self._shapes.unobserve(self._sub)
