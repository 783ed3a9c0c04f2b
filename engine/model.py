"""The board model: the one schema shared by the web app, the HTTP API, projections and exports.

A board is a Yjs document with two root types:

- ``shapes``: Y.Map of shape id -> Y.Map of plain-valued fields (see SHAPE_FIELDS).
- ``meta``: Y.Map of board-level settings; ``title`` is the board's name.

`render` turns a Doc[Any] into the JSON the HTTP API returns and MongoDB stores. It is defensive: a
Doc[Any] is whatever clients wrote, so values of unexpected types are skipped, never trusted.
"""

from __future__ import annotations

import json
import math
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


def _json(shared: Map[Any]) -> Any:
    """A shared map as plain JSON, converted in one call into the Rust core (much faster than to_py).

    Non-finite numbers (possible in binary-encoded Yjs content) become None, so the rendering is
    always valid JSON.
    """
    return json.loads(str(shared), parse_constant=lambda _constant: None)


_NUMBER_TYPES = {int, float}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def render_shape(shape_id: str, raw: Any) -> dict[str, Any] | None:
    """One shape (its fields as plain JSON) keeping only schema fields of the right types; None if not a shape."""
    if not isinstance(raw, dict):
        return None
    shape: dict[str, Any] = {"id": shape_id}
    for name, kinds in SHAPE_FIELDS.items():
        field = raw.get(name)
        if field is None or isinstance(field, bool) or not isinstance(field, kinds):
            continue
        if name == "points" and isinstance(field, list):
            if not {type(p) for p in field} <= _NUMBER_TYPES:  # fast path: all plain numbers
                field = [p for p in field if _finite(p)]
        elif isinstance(field, float) and not math.isfinite(field):
            continue
        shape[name] = field
    if shape.get("type") not in SHAPE_TYPES:
        return None
    return shape


def _z_key(shape: dict[str, Any]) -> tuple[str, str]:
    return (str(shape.get("z", "")), str(shape["id"]))


def render_shapes(doc: Doc[Any]) -> list[dict[str, Any]]:
    """All valid shapes of a board, in stacking order (z ascending, ties by id)."""
    shapes = []
    raw = _json(shapes_map(doc))
    for shape_id, value in raw.items() if isinstance(raw, dict) else ():
        shape = render_shape(str(shape_id), value)
        if shape is not None:
            shapes.append(shape)
    shapes.sort(key=_z_key)
    return shapes


def render_meta(doc: Doc[Any]) -> dict[str, Any]:
    """Board-level settings (title and friends), schema fields only."""
    raw = _json(meta_map(doc))
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
