"""One rendering (engine.model): the live Doc and history's plain board render the same JSON text, and
every count of a board's shapes counts what the rendering lists."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from engine.model import ShapeTally, count_doc_shapes, render, summarize
from projections.changes import ChangeRecorder, apply_changes, plain_board, plain_summary, render_plain


def _edits() -> list[Callable[[Map, Map], None]]:
    """Edits a client may legally make, most of them outside the board model."""

    def set_shape(key: str, value: Any) -> Callable[[Map, Map], None]:
        return lambda shapes, _meta: shapes.__setitem__(key, value)

    def set_field(key: str, name: str, value: Any) -> Callable[[Map, Map], None]:
        return lambda shapes, _meta: shapes[key].__setitem__(name, value)

    xml = XmlFragment([XmlElement("p", {}, [XmlText("xml text")])])
    return [
        set_shape(
            "a", Map({"type": "rect", "x": 1, "y": -0.0, "w": 2.5, "z": "a0", "points": [1, 2, float("nan"), -0.0]})
        ),
        set_shape("int", 5),
        set_shape("str", "a string"),
        set_shape("xml", Map({"type": "ellipse", "x": 1e20, "text": xml, "points": b"\x01\x02", "z": "a1"})),
        set_shape("obj", {"type": "text", "x": 3, "text": "a plain object", "font": 12}),
        set_shape("ytext", Map({"type": Text("sticky"), "x": 3, "createdAt": 2**40})),
        set_shape("arr", Map({"type": "line", "points": Array([0, 1, 2.5, 3]), "x": float("inf")})),
        lambda _s, meta: meta.__setitem__("title", "T"),
        set_field("a", "x", 7),
        set_field("xml", "sub", Doc()),
        lambda shapes, _m: shapes["a"].pop("type"),
        lambda shapes, _m: shapes.pop("int"),
        set_shape("str", Map({"type": "line"})),
        set_field("ytext", "type", "bogus"),
        set_field("ytext", "type", "rect"),
        set_field("arr", "points", [9, -0.0]),
    ]


def _replay() -> list[bytes]:
    src: Doc = Doc()
    shapes, meta = src.get("shapes", type=Map), src.get("meta", type=Map)
    updates: list[bytes] = []
    src.observe(lambda e: updates.append(bytes(e.update)))
    for edit in _edits():
        with src.transaction():
            edit(shapes, meta)
    return updates


def test_live_doc_and_plain_board_render_the_same_text() -> None:
    doc: Doc = Doc()
    recorder = ChangeRecorder(doc)
    plain = plain_board(doc)
    for update in _replay():
        apply_changes(plain, recorder.record(update))
        live = json.dumps(render(doc, "b", 1))
        assert json.dumps(render_plain(plain, "b", 1)) == live
        assert json.dumps(render_plain(plain_board(doc), "b", 1)) == live
        assert plain_summary(plain) == summarize(doc)
        assert summarize(doc)[1] == count_doc_shapes(doc) == len(json.loads(live)["shapes"])
    final = render(doc, "b", 1)
    assert [s["id"] for s in final["shapes"]] == ["arr", "obj", "str", "ytext", "xml"]  # z ascending, then id
    xml = final["shapes"][-1]
    assert xml["x"] == 1e20 and xml["points"] == [1.0, 2.0] and xml["text"] == "<p>xml text</p>"
    numbers = [v for s in final["shapes"] for k, v in s.items() if k not in ("id", "type", "text", "z", "points")]
    numbers += [p for s in final["shapes"] for p in s.get("points", [])]
    assert numbers and all(type(v) is float for v in numbers)


def test_numbers_render_as_floats_and_minus_zero_as_zero() -> None:
    doc: Doc = Doc()
    doc.get("shapes", type=Map)["s"] = Map({"type": "rect", "x": 1, "y": -0.0, "points": [0, -0.0, 2**53, 1.5]})
    text = json.dumps(render(doc, "b", 1)["shapes"])
    assert text == '[{"id": "s", "type": "rect", "x": 1.0, "y": 0.0, "points": [0.0, 0.0, 9007199254740992.0, 1.5]}]'


def test_shape_tally_follows_the_rendering() -> None:
    doc: Doc = Doc()
    tally = ShapeTally(doc)
    updates = _replay()
    lagging = 0
    for update in updates:
        doc.apply_update(update)
        tally.saw(update)
        lagging += tally.count() != count_doc_shapes(doc)
    # only the in-place overwrite of a shape's type to one the rendering does not list is counted late
    assert lagging == 1
    assert tally.count() == count_doc_shapes(doc)
    # entries set or removed at the top level are counted at once, whatever they hold
    src: Doc = Doc()
    src.apply_update(doc.get_update())
    before = src.get_state()
    with src.transaction():
        src.get("shapes", type=Map)["n1"] = 42
        src.get("shapes", type=Map)["n2"] = Map({"type": "arrow"})
        src.get("shapes", type=Map).pop("obj")
    change = bytes(src.get_update(before))
    doc.apply_update(change)
    tally.saw(change)
    assert tally.count() == count_doc_shapes(doc)


def test_shape_tally_recounts_within_its_budget() -> None:
    src: Doc = Doc()
    shapes = src.get("shapes", type=Map)
    updates: list[bytes] = []
    src.observe(lambda e: updates.append(bytes(e.update)))
    shapes["s"] = Map({"type": "rect", "x": 0.0})
    shapes["s"]["type"] = "no-such-type"  # invisible to the tally's observer
    for i in range(ShapeTally.MIN_BUDGET):
        shapes["s"]["x"] = float(i)
    doc: Doc = Doc()
    tally = ShapeTally(doc)
    counts = []
    for update in updates:
        doc.apply_update(update)
        tally.saw(update)
        counts.append(tally.count())
    assert counts[0] == 1 and counts[-1] == 0 == count_doc_shapes(doc)
