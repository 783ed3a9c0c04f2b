"""Excalidraw scenes (.excalidraw JSON, "type": "excalidraw", version 2) to and from board shapes.

The mapping mirrors the web app's (gateway/web/src/excalidraw.js): rectangle -> rect, ellipse ->
ellipse, diamond -> a closed line, line / arrow -> line / arrow, freedraw -> stroke, text -> text.
Other element types are skipped and reported. Stacking keys (`z`) follow the web app's fractional
indexing (base-62 keys that sort as plain strings).

The web app's import mirrors `from_scene` check by check, in the same order and with the same
reasons: change both; tests/browser/test_import_parity.py compares them over hundreds of scenes.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pycrdt import Doc, Map

from engine.model import render_shapes, shapes_map

SUPPORTED = frozenset({"rectangle", "ellipse", "diamond", "line", "arrow", "freedraw", "text"})
DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LINE_HEIGHT = 1.25


class InvalidScene(ValueError):
    """The body is not an Excalidraw scene."""


@dataclass(slots=True)
class ImportedScene:
    """Shapes (plain field dicts without id/z/createdBy/createdAt) and what was not imported.

    Every element of the scene is either imported (`shapes`), counted as deleted (`isDeleted`), or
    counted in `skipped` by type -- unsupported types under their name, elements that cannot be
    imported faithfully (a field of the wrong type, a non-finite number, missing geometry, a text
    without text) under "invalid", with the first few reasons in `invalid`.
    """

    shapes: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    deleted: int = 0
    invalid: list[str] = field(default_factory=list)

    def skip(self, kind: str) -> None:
        """Count one element skipped as `kind` (a type name, cut short; past MAX_SKIPPED_KINDS names, "other")."""
        name = kind if len(kind) <= MAX_KIND else kind[: MAX_KIND - 1] + "…"
        if name not in self.skipped and len(self.skipped.keys() - {"invalid", "other"}) >= MAX_SKIPPED_KINDS:
            name = "other"
        self.skipped[name] = self.skipped.get(name, 0) + 1

    def reject(self, index: int, kind: str, reason: str) -> None:
        """Count one element as invalid, keeping the first MAX_REASONS reasons."""
        self.skipped["invalid"] = self.skipped.get("invalid", 0) + 1
        if len(self.invalid) < MAX_REASONS:
            label = f"element {index}" + (f" ({kind[:MAX_KIND]})" if kind else "")
            self.invalid.append(f"{label}: {reason}")


#: How many reasons for invalid elements an import reports, how many distinct skipped type names
#: it lists (the rest are counted as "other"), and how much of a type name it quotes.
MAX_REASONS = 20
MAX_SKIPPED_KINDS = 20
MAX_KIND = 40


class _Invalid(ValueError):
    """One element that cannot be imported faithfully; the message says why."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)  # raises OverflowError for an int beyond floats (a JSON 1e400 is inf)
    except OverflowError:
        return False


def _number(el: dict[str, Any], name: str, default: float | None = None) -> float:
    """Field `name` as a finite number; `default` when absent or null (required when None)."""
    value = el.get(name)
    if value is None:
        if default is None:
            raise _Invalid(f"{name} is missing")
        return default
    if not _finite(value):
        raise _Invalid(f"{name} must be a finite number, not {_show(value)}")
    return float(value)


def _color(el: dict[str, Any], name: str, fallback: str) -> str:
    value = el.get(name)
    if value is None:
        return fallback
    if not isinstance(value, str):
        raise _Invalid(f"{name} must be a string, not {_show(value)}")
    return value or fallback


def _r(value: float) -> float:
    if abs(value) >= 1e15:  # beyond 1/100 precision anyway (and value * 100 could overflow)
        return value
    return round(value * 100) / 100


def _flat_points(points: Any) -> list[float]:
    if not isinstance(points, list) or not points:
        raise _Invalid(f"points must be a non-empty list of [x, y] pairs, not {_show(points)}")
    out: list[float] = []
    for i, p in enumerate(points):
        if not isinstance(p, list) or len(p) < 2 or not _finite(p[0]) or not _finite(p[1]):
            raise _Invalid(f"point {i} must be [x, y] with finite numbers, not {_show(p)}")
        out += [_r(float(p[0])), _r(float(p[1]))]
    return out


def _extent(points: list[float]) -> tuple[float, float]:
    xs, ys = points[0::2], points[1::2]
    return max(xs) - min(xs), max(ys) - min(ys)


def _arrowhead(el: dict[str, Any], name: str, default: str | None) -> str | None:
    if name not in el:
        return default
    value = el[name]
    if value is not None and not isinstance(value, str):
        raise _Invalid(f"{name} must be a string or null, not {_show(value)}")
    return value


def _shape(el: dict[str, Any], kind: str) -> dict[str, Any]:
    """The board shape for one supported, not deleted element; _Invalid if it cannot be imported faithfully."""
    x, y = _number(el, "x"), _number(el, "y")
    sized = kind in ("rectangle", "ellipse", "diamond")
    w = abs(_number(el, "width", None if sized else 0.0))
    h = abs(_number(el, "height", None if sized else 0.0))
    stroke_width = _number(el, "strokeWidth", 2.0)
    if stroke_width < 0:
        raise _Invalid(f"strokeWidth must be >= 0, not {_show(stroke_width)}")
    base: dict[str, Any] = {
        "x": _r(x),
        "y": _r(y),
        "w": _r(w),
        "h": _r(h),
        "rotation": _number(el, "angle", 0.0),
        "stroke": _color(el, "strokeColor", "#1e1e1e"),
        "fill": _color(el, "backgroundColor", "transparent"),
        "width": stroke_width or 2.0,
        "opacity": max(0.0, min(1.0, _number(el, "opacity", 100.0) / 100)),
    }
    if kind == "rectangle":
        return {**base, "type": "rect"}
    if kind == "ellipse":
        return {**base, "type": "ellipse"}
    if kind == "diamond":
        pts = [_r(w / 2), 0.0, _r(w), _r(h / 2), _r(w / 2), _r(h), 0.0, _r(h / 2), _r(w / 2), 0.0]
        return {**base, "type": "line", "points": pts}
    if kind in ("line", "arrow", "freedraw"):
        points = _flat_points(el.get("points"))
        shape_type = "stroke" if kind == "freedraw" else kind
        if kind == "arrow":
            end = _arrowhead(el, "endArrowhead", "arrow")
            start = _arrowhead(el, "startArrowhead", None)
            if not end and start:  # only a start head: reverse so the head is at our end
                pairs = [points[i : i + 2] for i in range(0, len(points), 2)][::-1]
                points = [c for p in pairs for c in p]
            elif not end and not start:
                shape_type = "line"
        ew, eh = _extent(points)
        fill = base["fill"] if kind == "line" else "transparent"
        return {**base, "type": shape_type, "points": points, "w": _r(ew), "h": _r(eh), "fill": fill}
    # text
    text = el.get("originalText") if isinstance(el.get("originalText"), str) else el.get("text")
    if not isinstance(text, str):
        raise _Invalid(f"text must be a string, not {_show(text)}")
    if not text.strip():
        raise _Invalid("text element without text")
    font = _number(el, "fontSize", 20.0)
    if font < 0:
        raise _Invalid(f"fontSize must be > 0, not {_show(font)}")
    font = font or 20.0
    lines = text.split("\n")
    tw = max(_r(w), _r(max(len(line) for line in lines) * font * 0.6))
    th = max(_r(h), _r(len(lines) * font * LINE_HEIGHT))
    return {**base, "type": "text", "text": text, "font": font, "fill": "transparent", "w": tw, "h": th}


def from_scene(scene: Any) -> ImportedScene:
    """Shapes of an Excalidraw scene; raises InvalidScene if it is not one.

    Every element ends up imported, deleted or counted in `skipped` (see ImportedScene): none is
    dropped silently, and none is imported with geometry or style it did not have.
    """
    if not isinstance(scene, dict) or not isinstance(scene.get("elements"), list):
        raise InvalidScene('not an Excalidraw scene: expected a JSON object with an "elements" array')
    out = ImportedScene()
    for index, el in enumerate(scene["elements"]):
        if not isinstance(el, dict):
            out.reject(index, "", f"not a JSON object: {_show(el)}")
            continue
        kind = el.get("type")
        label = kind if isinstance(kind, str) else ""
        deleted = el.get("isDeleted")
        if deleted is not None and not isinstance(deleted, bool):
            out.reject(index, label, f"isDeleted must be true or false, not {_show(deleted)}")
            continue
        if deleted:
            out.deleted += 1
            continue
        if not isinstance(kind, str) or not kind:
            out.reject(index, "", f"type must be a non-empty string, not {_show(kind)}")
            continue
        if kind not in SUPPORTED:
            out.skip(kind)
            continue
        try:
            shape = _shape(el, kind)
            bad = next((k for k, v in shape.items() if isinstance(v, float) and not math.isfinite(v)), None)
            if bad is None and "points" in shape and not all(math.isfinite(p) for p in shape["points"]):
                bad = "points"
            if bad is not None:
                raise _Invalid(f"geometry out of range ({bad} is not finite)")
        except _Invalid as exc:
            out.reject(index, kind, str(exc))
            continue
        out.shapes.append(shape)
    return out


def _font_size(font: Any) -> float:
    """A shape's `font` as Excalidraw's fontSize (a number): the size itself, or a leading number like "20px …"."""
    if _finite(font):
        return float(font)
    if isinstance(font, str):
        match = re.match(r"\s*(\d+(?:\.\d+)?)", font)
        if match:
            return float(match.group(1))
    return 20.0


def _seed() -> int:
    return secrets.randbelow(2**31)


def _element(s: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "id": s.get("id") or secrets.token_urlsafe(12),
        "type": kind,
        "x": s.get("x", 0),
        "y": s.get("y", 0),
        "width": s.get("w", 0),
        "height": s.get("h", 0),
        "angle": s.get("rotation", 0),
        "strokeColor": s.get("stroke", "#1e1e2e"),
        "backgroundColor": s.get("fill", "transparent"),
        "fillStyle": "solid",
        "strokeWidth": s.get("width", 2),
        "strokeStyle": "solid",
        "roughness": 0,
        "opacity": round(float(s.get("opacity", 1)) * 100),
        "groupIds": [],
        "frameId": None,
        "roundness": {"type": 3} if kind == "rectangle" else None,
        "seed": _seed(),
        "version": 1,
        "versionNonce": _seed(),
        "isDeleted": False,
        "boundElements": None,
        "updated": int(time.time() * 1000),
        "link": None,
        "locked": False,
    }


def _text(
    s: dict[str, Any], text: str, x: float, y: float, w: float, h: float, container: str | None
) -> dict[str, Any]:
    el = _element({**s, "x": x, "y": y, "w": w, "h": h, "fill": "transparent"}, "text")
    el.update(
        text=text,
        originalText=text,
        fontSize=_font_size(s.get("font")),
        fontFamily=2,
        textAlign="left",
        verticalAlign="top",
        containerId=container,
        lineHeight=LINE_HEIGHT,
        autoResize=True,
    )
    return el


def to_scene(shapes: list[dict[str, Any]]) -> dict[str, Any]:
    """An Excalidraw scene of rendered shapes (engine.model.render_shapes order)."""
    elements: list[dict[str, Any]] = []
    for s in shapes:
        kind = s.get("type")
        if kind == "rect":
            elements.append(_element(s, "rectangle"))
        elif kind == "ellipse":
            elements.append(_element(s, "ellipse"))
        elif kind == "image":
            elements.append(_element({**s, "fill": "#e9ecef"}, "rectangle"))
        elif kind in ("line", "arrow", "stroke"):
            points = s.get("points") or [0, 0]
            pairs = [[points[i], points[i + 1]] for i in range(0, len(points) - 1, 2)]
            el = _element(s, "freedraw" if kind == "stroke" else str(kind))
            el.update(points=pairs, lastCommittedPoint=None)
            if kind == "stroke":
                el.update(pressures=[], simulatePressure=True, backgroundColor="transparent")
            else:
                el.update(startBinding=None, endBinding=None, startArrowhead=None)
                el["endArrowhead"] = "arrow" if kind == "arrow" else None
            elements.append(el)
        elif kind == "text":
            elements.append(
                _text(s, s.get("text", ""), s.get("x", 0), s.get("y", 0), s.get("w", 0), s.get("h", 0), None)
            )
        elif kind == "sticky":
            fill = s.get("fill", "transparent")
            rect = _element(
                {**s, "fill": "#fff3bf" if fill == "transparent" else fill, "width": 1, "stroke": "transparent"},
                "rectangle",
            )
            elements.append(rect)
            if s.get("text"):
                x, y, w, h = s.get("x", 0), s.get("y", 0), s.get("w", 0), s.get("h", 0)
                t = _text(s, s["text"], x + 14, y + 14, max(1, w - 28), max(1, h - 28), rect["id"])
                rect["boundElements"] = [{"type": "text", "id": t["id"]}]
                elements.append(t)
    return {
        "type": "excalidraw",
        "version": 2,
        "source": "inkstream",
        "elements": elements,
        "appState": {"viewBackgroundColor": "#ffffff", "gridSize": None},
        "files": {},
    }


# -- stacking keys (fractional indexing, as the web app's zindex.js) --------------------------------


def _int_length(head: str) -> int:
    if "a" <= head <= "z":
        return ord(head) - ord("a") + 2
    if "A" <= head <= "Z":
        return ord("Z") - ord(head) + 2
    raise ValueError(f"invalid order key head {head!r}")


def _increment_int(x: str) -> str | None:
    head, digs = x[0], list(x[1:])
    carry = True
    i = len(digs) - 1
    while carry and i >= 0:
        d = DIGITS.index(digs[i]) + 1
        if d == len(DIGITS):
            digs[i] = "0"
        else:
            digs[i] = DIGITS[d]
            carry = False
        i -= 1
    if carry:
        if head == "Z":
            return "a0"
        if head == "z":
            return None
        h = chr(ord(head) + 1)
        if h > "a":
            digs.append("0")
        else:
            digs.pop()
        return h + "".join(digs)
    return head + "".join(digs)


def _midpoint_after(a: str) -> str:
    da = DIGITS.index(a[0]) if a else 0
    if len(DIGITS) - da > 1:
        return DIGITS[int(0.5 * (da + len(DIGITS)) + 0.5)]
    return DIGITS[da] + _midpoint_after(a[1:])


def key_after(key: str | None) -> str:
    """A stacking key that sorts after `key` (the first key if None)."""
    if not key:
        return "a0"
    try:
        n = _int_length(key[0])
        if n > len(key) or any(c not in DIGITS for c in key):
            raise ValueError(key)
        integer, fraction = key[:n], key[n:]
        bumped = _increment_int(integer)
        return bumped if bumped is not None else integer + _midpoint_after(fraction)
    except ValueError:
        return key + "V"  # not a fractional index: still sorts after it as a plain string


def keys_after(key: str | None, count: int) -> list[str]:
    """`count` increasing stacking keys after `key`."""
    out: list[str] = []
    for _ in range(count):
        key = key_after(key)
        out.append(key)
    return out


def new_shape_id() -> str:
    """A random shape id (URL-safe)."""
    return secrets.token_urlsafe(12)


def import_update(state: bytes, imported: ImportedScene, user: str) -> bytes | None:
    """One update adding the imported shapes on top of a board at `state` (new ids, stacked above)."""
    from projections.history import edit_update  # history imports this module

    def ops(doc: Doc[Any]) -> list[Callable[[], object]]:
        existing = render_shapes(doc)
        top = str(existing[-1].get("z", "")) if existing else None
        shapes = shapes_map(doc)
        now = float(int(time.time() * 1000))
        out: list[Callable[[], object]] = []
        for fields, z in zip(imported.shapes, keys_after(top, len(imported.shapes)), strict=True):
            value = {**fields, "z": z, "createdBy": user, "createdAt": now}
            out.append(partial(shapes.__setitem__, new_shape_id(), Map(value)))
        return out

    return edit_update(state, ops)
