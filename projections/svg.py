"""SVG export of a rendered board (engine.model.render), mirroring the web app's gateway/web/src/svg.js."""

from __future__ import annotations

import math
from html import escape
from typing import Any

FONT_FAMILY = "Inter, system-ui, sans-serif"
LINE_HEIGHT = 1.25
STICKY_PAD = 14
PAD = 32


def _r2(value: float) -> str:
    return f"{round(float(value) * 100) / 100:g}"


def _esc(value: Any) -> str:
    return escape(str(value), quote=True)


def _bounds(s: dict[str, Any]) -> tuple[float, float, float, float]:
    x, y = float(s.get("x", 0)), float(s.get("y", 0))
    points = s.get("points")
    if s.get("type") in ("stroke", "line", "arrow") and points and len(points) >= 2:
        xs, ys = points[0::2], points[1::2]
        return x + min(xs), y + min(ys), x + max(xs), y + max(ys)
    return x, y, x + float(s.get("w", 0)), y + float(s.get("h", 0))


def _path(points: list[float]) -> str:
    return "".join(("L" if i else "M") + f"{_r2(points[i])} {_r2(points[i + 1])}" for i in range(0, len(points) - 1, 2))


def _arrow_head(points: list[float], width: float) -> str:
    if len(points) < 4:
        return ""
    x1, y1, x2, y2 = points[-4], points[-3], points[-2], points[-1]
    angle = math.atan2(y2 - y1, x2 - x1)
    size = max(10.0, width * 4)
    left = (x2 - size * math.cos(angle - math.pi / 7), y2 - size * math.sin(angle - math.pi / 7))
    right = (x2 - size * math.cos(angle + math.pi / 7), y2 - size * math.sin(angle + math.pi / 7))
    return f"M{_r2(left[0])} {_r2(left[1])}L{_r2(x2)} {_r2(y2)}L{_r2(right[0])} {_r2(right[1])}"


def _text(lines: list[str], x: float, y: float, size: float, color: str) -> str:
    lh = size * LINE_HEIGHT
    pad = (lh - size) / 2
    spans = "".join(
        f'<tspan x="{_r2(x)}" y="{_r2(y + i * lh + pad + size * 0.82)}">{_esc(line) or " "}</tspan>'
        for i, line in enumerate(lines)
    )
    return (
        f'<text font-family="{_esc(FONT_FAMILY)}" font-weight="500" font-size="{_r2(size)}" fill="{_esc(color)}" '
        f'xml:space="preserve">{spans}</text>'
    )


def shape_svg(s: dict[str, Any]) -> str:
    """One shape as an SVG group."""
    kind = s.get("type", "")
    x, y, w, h = (float(s.get(k, 0)) for k in ("x", "y", "w", "h"))
    width = float(s.get("width", 2))
    stroke = str(s.get("stroke", "#1e1e2e"))
    fill_color = str(s.get("fill", "transparent"))
    st = f'stroke="{_esc(stroke)}" stroke-width="{_r2(width)}" stroke-linecap="round" stroke-linejoin="round"'
    fill = f'fill="{_esc(fill_color)}"'
    outline = st if width > 0 else 'stroke="none"'
    font = float(s.get("font", 20)) if isinstance(s.get("font"), (int, float)) else 20.0
    if kind == "rect":
        rx = max(0.0, min(8.0, w / 8, h / 8))
        body = f'<rect x="{_r2(x)}" y="{_r2(y)}" width="{_r2(w)}" height="{_r2(h)}" rx="{_r2(rx)}" {fill} {outline}/>'
    elif kind == "ellipse":
        body = (
            f'<ellipse cx="{_r2(x + w / 2)}" cy="{_r2(y + h / 2)}" rx="{_r2(w / 2)}" ry="{_r2(h / 2)}" '
            f"{fill} {outline}/>"
        )
    elif kind in ("stroke", "line", "arrow"):
        points = [float(p) for p in s.get("points") or [0, 0]]
        closed = len(points) >= 6 and points[:2] == points[-2:]
        path_fill = fill if kind == "line" and fill_color != "transparent" and closed else 'fill="none"'
        body = f'<g transform="translate({_r2(x)} {_r2(y)})"><path d="{_path(points)}" {path_fill} {st}/>'
        if kind == "arrow" and (head := _arrow_head(points, width)):
            body += f'<path d="{head}" fill="none" {st}/>'
        body += "</g>"
    elif kind == "text":
        body = _text(str(s.get("text", "")).split("\n"), x, y, font, stroke)
    elif kind == "sticky":
        bg = fill_color if fill_color != "transparent" else "#fff3bf"
        body = (
            f'<rect x="{_r2(x + 1)}" y="{_r2(y + 3)}" width="{_r2(w)}" height="{_r2(h)}" rx="6" '
            f'fill="rgba(30,30,46,0.08)"/>'
            f'<rect x="{_r2(x)}" y="{_r2(y)}" width="{_r2(w)}" height="{_r2(h)}" rx="6" fill="{_esc(bg)}"/>'
            + _text(str(s.get("text", "")).split("\n"), x + STICKY_PAD, y + STICKY_PAD, font, stroke)
        )
    else:  # image and anything else: a placeholder box (no remote fetches in an export)
        body = f'<rect x="{_r2(x)}" y="{_r2(y)}" width="{_r2(w)}" height="{_r2(h)}" fill="#e9ecef" stroke="#adb5bd"/>'
    opacity = s.get("opacity", 1)
    op = f' opacity="{_r2(opacity)}"' if opacity != 1 else ""
    rotation = float(s.get("rotation", 0) or 0)
    tr = ""
    if rotation:
        x0, y0, x1, y1 = _bounds(s)
        tr = f' transform="rotate({_r2(math.degrees(rotation))} {_r2((x0 + x1) / 2)} {_r2((y0 + y1) / 2)})"'
    return f'<g data-shape-id="{_esc(s.get("id", ""))}" data-type="{_esc(kind)}"{op}{tr}>{body}</g>'


def to_svg(board: dict[str, Any]) -> str:
    """A rendered board (engine.model.render) as a standalone SVG document."""
    shapes: list[dict[str, Any]] = board.get("shapes", [])
    if shapes:
        boxes = [_bounds(s) for s in shapes]
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    else:
        x0, y0, x1, y1 = 0.0, 0.0, 100.0, 100.0
    vx, vy, vw, vh = x0 - PAD, y0 - PAD, (x1 - x0) + 2 * PAD, (y1 - y0) + 2 * PAD
    title = board.get("meta", {}).get("title") or board.get("id", "Inkstream board")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{_r2(vx)} {_r2(vy)} {_r2(vw)} {_r2(vh)}" '
        f'width="{math.ceil(vw)}" height="{math.ceil(vh)}">'
        f"<title>{_esc(title)}</title>"
        f'<rect x="{_r2(vx)}" y="{_r2(vy)}" width="{_r2(vw)}" height="{_r2(vh)}" fill="#ffffff"/>'
        + "\n".join(shape_svg(s) for s in shapes)
        + "</svg>\n"
    )
