"""The board model: the one schema shared by the web app, the HTTP API, projections and exports.

A board is a Yjs document with two root types:

- ``shapes``: Y.Map of shape id -> Y.Map of plain-valued fields (see SHAPE_FIELDS).
- ``meta``: Y.Map of board-level settings; ``title`` is the board's name.

`render` turns a Doc[Any] into the JSON the HTTP API returns and MongoDB stores. It is defensive: a
Doc[Any] is whatever clients wrote, so values of unexpected types are skipped, never trusted.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Map

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


def shapes_map(doc: Doc[Any]) -> Map[Any]:
    """The `shapes` root map of a board Doc."""
    shapes: Map[Any] = doc.get("shapes", type=Map)
    return shapes


def meta_map(doc: Doc[Any]) -> Map[Any]:
    """The `meta` root map of a board Doc."""
    meta: Map[Any] = doc.get("meta", type=Map)
    return meta


def _plain(value: Any) -> Any:
    """Convert pycrdt values to JSON: floats that are whole numbers stay floats (Yjs numbers)."""
    to_py = getattr(value, "to_py", None)
    if callable(to_py):
        return to_py()
    return value


def render_shape(shape_id: str, value: Any) -> dict[str, Any] | None:
    """One shape as JSON, keeping only schema fields of the right types; None if it is not a shape."""
    raw = _plain(value)
    if not isinstance(raw, dict):
        return None
    shape: dict[str, Any] = {"id": shape_id}
    for name, kinds in SHAPE_FIELDS.items():
        field = raw.get(name)
        if field is not None and isinstance(field, kinds) and not isinstance(field, bool):
            if name == "points" and isinstance(field, list):
                field = [p for p in field if isinstance(p, (int, float)) and not isinstance(p, bool)]
            shape[name] = field
    if shape.get("type") not in SHAPE_TYPES:
        return None
    return shape


def _z_key(shape: dict[str, Any]) -> tuple[str, str]:
    return (str(shape.get("z", "")), str(shape["id"]))


def render_shapes(doc: Doc[Any]) -> list[dict[str, Any]]:
    """All valid shapes of a board, in stacking order (z ascending, ties by id)."""
    shapes = []
    for shape_id, value in shapes_map(doc).items():
        shape = render_shape(str(shape_id), value)
        if shape is not None:
            shapes.append(shape)
    shapes.sort(key=_z_key)
    return shapes


def render_meta(doc: Doc[Any]) -> dict[str, Any]:
    """Board-level settings (title and friends), schema fields only."""
    raw = _plain(meta_map(doc))
    meta: dict[str, Any] = {}
    if isinstance(raw, dict):
        for name, kinds in META_FIELDS.items():
            if isinstance(raw.get(name), kinds):
                meta[name] = raw[name]
    return meta


def render(doc: Doc[Any], board_id: str, version: int) -> dict[str, Any]:
    """The board as JSON: {"id", "version", "meta", "shapes"}."""
    return {"id": board_id, "version": version, "meta": render_meta(doc), "shapes": render_shapes(doc)}


def summarize(doc: Doc[Any]) -> tuple[str, int]:
    """(title, shape count) of a board, cheaply."""
    meta = render_meta(doc)
    return str(meta.get("title", "")), len(shapes_map(doc))
