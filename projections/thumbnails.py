"""Board thumbnails: the first shapes of a board's rendering, kept by the projectors, served without the live board.

`GET /api/boards/{id}/thumbnail` answers from what a projector stored, never from the gateway's
live Doc (rendering a 5,000-shape Doc to JSON is ~100 ms on the gateway's event loop, and the
home page asks for every board's thumbnail). A thumbnail is JSON

    {"id": board, "version": V, "shapes": [...], "truncated": bool}

with `shapes` the first MAX_SHAPES shapes of the board's rendering at version V (stacking order,
the same fields and values as `engine.model.render`), `truncated` true when the rendering lists
more (or the JSON would pass MAX_BYTES). It is stored as its JSON text (UTF-8 bytes), so serving it
costs one read and no encoding.

Writers throttle it: the embedded projector rewrites a board's thumbnail at most every
INTERVAL_SECONDS while the board changes (and once more after it goes quiet), the MongoDB
projector with the board document (its board interval). Thumbnails follow the projector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.model import dumps_json, is_shape, render_shape

#: Most shapes a thumbnail lists (the web app draws at most this many).
MAX_SHAPES = 3000
#: Largest thumbnail JSON: beyond it shapes are dropped from the end (a MongoDB document holds 16 MiB).
MAX_BYTES = 4 * 1024 * 1024
#: Shortest time between two thumbnail writes of one busy board (embedded projector).
INTERVAL_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """A board's thumbnail as of `version`: its JSON (`body`, UTF-8)."""

    board: str
    version: int
    body: bytes


def first_shapes_plain(shapes: Any, limit: int = MAX_SHAPES) -> tuple[list[dict[str, Any]], bool]:
    """(the first `limit` shapes of `engine.model.render_shapes_plain(shapes)`, whether it lists more).

    Sorts by the rendering's key first and renders only those `limit` shapes: a 50,000-shape board
    costs a sort of keys, not 50,000 renderings. The key is read from the plain value exactly as
    the rendering derives it (a `z` string is kept as is, anything else is dropped: "").
    """
    if not isinstance(shapes, dict):
        return [], False
    keyed = []
    for shape_id, raw in shapes.items():
        if is_shape(raw):
            z = raw.get("z")
            keyed.append((z if isinstance(z, str) else "", str(shape_id), raw))
    keyed.sort(key=lambda entry: (entry[0], entry[1]))
    out = []
    for _z, shape_id, raw in keyed[:limit]:
        shape = render_shape(shape_id, raw)
        if shape is not None:
            out.append(shape)
    return out, len(keyed) > limit


def encode(board: str, version: int, shapes: list[dict[str, Any]], truncated: bool) -> Thumbnail:
    """The thumbnail of `board` at `version` from rendered shapes in stacking order (at most MAX_SHAPES used)."""
    if len(shapes) > MAX_SHAPES:
        shapes, truncated = shapes[:MAX_SHAPES], True
    text = dumps_json({"id": board, "version": version, "shapes": shapes, "truncated": truncated})
    body = text.encode()
    if len(body) > MAX_BYTES:  # rare (huge strokes or images): keep the shapes that fit
        head = dumps_json({"id": board, "version": version})[:-1] + ',"shapes":['
        size = len(head.encode()) + len('],"truncated":true}')
        kept: list[str] = []
        for shape in shapes:
            part = dumps_json(shape)
            size += len(part.encode()) + 1
            if size > MAX_BYTES:
                break
            kept.append(part)
        body = (head + ",".join(kept) + '],"truncated":true}').encode()
    return Thumbnail(board, version, body)


def from_plain(board: str, version: int, plain: Any) -> Thumbnail:
    """The thumbnail of a plain board (projections.changes.PlainBoard) at `version`."""
    shapes, truncated = first_shapes_plain(plain.get("shapes") if isinstance(plain, dict) else None)
    return encode(board, version, shapes, truncated)


def from_rendering(content: dict[str, Any]) -> Thumbnail:
    """The thumbnail of a board rendering (`engine.model.render`: {"id", "version", "meta", "shapes"})."""
    return encode(str(content["id"]), int(content["version"]), content.get("shapes") or [], False)
