"""The web app's Excalidraw import (gateway/web/src/excalidraw.js) and the server's
(projections/excalidraw.py) reach the same verdicts, with the same reasons, and make the same shapes.

The two cannot share code, so this runs the web app's module in Node (import_parity.mjs) over
scene texts full of edge cases -- every check, values that Python quotes in its own way, JSON that
only Python reads -- and compares with `from_scene`. No browser: a text's box is measured with a
stand-in there, so text `w`/`h` are left out (the browser test compares real imports).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from projections.excalidraw import from_scene

HERE = Path(__file__).resolve().parent
WEB_MODULES = HERE.parents[1] / "gateway" / "web" / "node_modules"


def _el(**fields: Any) -> str:
    return json.dumps(fields)


def _scene(*elements: str) -> str:
    return '{"type": "excalidraw", "version": 2, "elements": [' + ", ".join(elements) + "]}"


RECT = '"type": "rectangle", "y": 1, "width": 10, "height": 10'
TEXT = '"type": "text", "x": 1, "y": 1'

#: Values as JSON text, each quoted in a reason ("x must be a finite number, not <repr>").
ODD_VALUES = [
    '"a"',
    '"it\'s"',
    '"say \\"hi\\""',
    '"both \' and \\""',
    '"back\\\\slash"',
    '"tab\\tnew\\nline\\r"',
    '"\\u0000\\u001f\\u007f"',
    '"\\u0080\\u009f\\u00a0\\u00ad\\u00e9"',
    '"\\u200b\\u2028\\u2029\\ufeff"',
    '"\\ud83d\\ude00 emoji"',
    '"\\ud800 lone"',
    '"\\ue000 private"',
    '"' + "é" * 45 + '"',
    '"' + "\U0001f600" * 45 + '"',
    "5.0",
    "-0.0",
    "-0",
    "1e16",
    "1E3",
    "1.5e-7",
    "0.0001",
    "0.00001",
    "2.5e15",
    "123456789012345678901234567890",
    "-98765432109876543210",
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "1" + "0" * 400,
    "-" + "9" * 320,
    "true",
    "false",
    "null",
    "[]",
    "{}",
    '[1, [2.0, "b"], {"k": null}]',
    '{"a": 1, "b": [true, 5.0]}',
    '{"__proto__": 1, "constructor": 2}',
    "[" + ", ".join(["123456789"] * 10) + "]",
]


def _corpus() -> list[str]:
    # every odd value in every kind of field (one element a scene: an import keeps 20 reasons)
    templates = [
        '{"x": %s, ' + RECT + "}",
        "{" + TEXT + ', "text": %s}',
        "{" + RECT + ', "x": 1, "strokeColor": %s}',
        '{"type": "arrow", "x": 1, "y": 1, "points": [[0, 0], [1, 1]], "endArrowhead": %s}',
        '{"type": "line", "x": 1, "y": 1, "points": %s}',
        '{"type": "line", "x": 1, "y": 1, "points": [[0, 0], [1, %s]]}',
        "{" + RECT + ', "x": 1, "isDeleted": %s}',
        '{"type": %s, "x": 1}',
        "%s",  # an element that is not an object
    ]
    scenes = [_scene(t % v) for t in templates for v in ODD_VALUES]
    # each check of each kind, and values that are fine
    scenes.append(
        _scene(
            _el(type="rectangle", x=0.125, y=-0.125, width=-50, height=2.675, angle=0.5, opacity=250, strokeWidth=0),
            _el(type="rectangle", x=1, y=1, width=1, height=1, strokeWidth=-2),
            _el(type="rectangle", x=1, y=1, width=1, height=1, strokeWidth=-0.5, opacity=-3),
            _el(type="rectangle", x=1e300, y=-1e300, width=1e300, height=1e15, strokeColor="", backgroundColor=None),
            _el(type="rectangle", x=1, y=1, width=1, height=1, angle="x"),
            _el(type="ellipse", x=-3.335, y=1e-7, width=0.005, height=-0.015, opacity=33.3, strokeColor="#1971c2"),
            _el(type="ellipse", x=1, y=1, height=1),
            _el(type="ellipse", x=1, y=1, width=1, height=None),
            _el(type="diamond", x=10.005, y=20.015, width=1e308, height=3.335, backgroundColor="#ffec99"),
            _el(type="diamond", y=1, width=1, height=1),
            _el(type="line", x=1, y=1, points=[[0, 0], [1e308, 0], [-1e308, 0]]),
            _el(type="line", x=1, y=1, points=[[0, 0], [0, 1e308], [0, -1e308]]),
            _el(type="line", x=1, y=1, points=[[0.125, 0.375], [2.5e-3, -0.005]], backgroundColor="#ffc9c9"),
            _el(type="line", x=1, y=1, points=[[0, 0], [True, 1]]),
            _el(type="line", x=1, y=1, points=[[0, 0], [1]]),
            _el(type="line", x=1, y=1, points=[[0, 0], [1, 2, 3]]),
            _el(type="line", x=1, y=1, points=[]),
            _el(type="freedraw", x=1, y=1, points=[[0, 0], [4.62, 5.52], [-9.235, 10.745]], backgroundColor="#000"),
            _el(type="arrow", x=1, y=1, points=[[0, 0], [10, 5], [20, 0]]),
            _el(type="arrow", x=1, y=1, points=[[0, 0], [10, 5], [20, 0]], startArrowhead="dot", endArrowhead=None),
            _el(type="arrow", x=1, y=1, points=[[0, 0], [10, 5]], startArrowhead=None, endArrowhead=None),
            _el(type="arrow", x=1, y=1, points=[[0, 0], [10, 5]], startArrowhead="bar", endArrowhead="arrow"),
            _el(type="arrow", x=1, y=1, points=[[0, 0], [10, 5]], startArrowhead="", endArrowhead=""),
            _el(type="arrow", x=1, y=1, points=[[0, 0], [10, 5]], startArrowhead=7),
            _el(type="text", x=1, y=1, text="Hi\nthere", fontSize=0),
            _el(type="text", x=1, y=1, text="Hi", fontSize=-3),
            _el(type="text", x=1, y=1, text="Hi", fontSize=1e308),
            _el(type="text", x=1, y=1, text="x" * 10, fontSize=1e307, width=5),
            _el(type="text", x=1, y=1, text="shown", originalText=""),
            _el(type="text", x=1, y=1, text="shown", originalText=5),
            _el(type="text", x=1, y=1, originalText="orig", text=5),
            _el(type="text", x=1, y=1),
            _el(
                type="text",
                x=1,
                y=1,
                text=" \t\n\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000",
            ),
            _el(type="text", x=1, y=1, text="\ufeff"),
            _el(type="text", x=1, y=1, text="\u200b"),
            _el(type="text", x=1, y=1, text="\U0001f600" * 3 + "\nab", fontSize=10),
            _el(type="rectangle", x=1, y=1, width=1, height=1, isDeleted=False),
            _el(type="frame", isDeleted=True),
            _el(type="", x=1),
            _el(x=1),
        )
    )
    # unsupported type names: counted by name, cut at 40 characters, past 20 names "other";
    # more than 20 invalid elements: 20 reasons
    names = [f"kind{i}" for i in range(25)] + ["invalid", "other", "k" * 41, "\U0001f600" * 41, "frame", "frame"]
    scenes.append(_scene(*(_el(type=n) for n in names), *(_el(type="rectangle", x="bad") for _ in range(25))))
    scenes.append(_scene(_el(type="w" * 60, isDeleted="no"), _el(type="rectangle" * 6, x=1), _el(type=["rectangle"])))
    # JSON only Python reads, or neither does; not a scene
    scenes += [
        '{"elements": [{"type": "rectangle", "x": NaN, "y": Infinity, "width": -Infinity, "height": 1}]}',
        '{"elements": [], "elements": [' + _el(type="rectangle", x=1, y=2, width=3, height=4) + "]}",
        '{"elements": [{"type": "rectangle", "x": 1, "x": "late", "y": 1, "width": 1, "height": 1}]}',
        "{",
        "[1,]",
        '{"elements": [1 2]}',
        '{"elements": [01]}',
        '{"elements": ["\\x"]}',
        '{"elements": [' + "1" * 4301 + "]}",
        '{"elements": [' + "1" * 4300 + "]}",
        '{"elements": ["\t"]}',
        "[]",
        "null",
        "{}",
        '{"elements": 5}',
        '{"elements": {}}',
        " \n",
        "",
    ]
    return scenes


def _server(text: str) -> dict[str, Any]:
    try:
        scene = json.loads(text)
        imported = from_scene(scene)
    except (ValueError, RecursionError) as exc:
        return {"error": type(exc).__name__}
    return {
        "shapes": imported.shapes,
        "skipped": imported.skipped,
        "deleted": imported.deleted,
        "invalid": imported.invalid,
    }


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    if "error" in result:
        return {"error": True}
    shapes = [{k: v for k, v in s.items() if not (s["type"] == "text" and k in ("w", "h"))} for s in result["shapes"]]
    return {**result, "shapes": shapes}


def test_web_import_follows_the_server_rules() -> None:
    node = shutil.which("node")
    if not node or not (WEB_MODULES / "yjs").is_dir():
        pytest.skip("needs node and gateway/web/node_modules (cd gateway/web && npm ci)")
    corpus = _corpus()
    proc = subprocess.run(
        [node, str(HERE / "import_parity.mjs")],
        input=json.dumps(corpus),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    web = json.loads(proc.stdout, parse_int=float)  # JS writes 1e20 as 100000000000000000000
    assert len(web) == len(corpus)
    for i, (text, got) in enumerate(zip(corpus, web, strict=True)):
        want = _server(text)
        assert _comparable(got) == _comparable(want), f"scene {i}: {text[:300]}"
    # the corpus reaches what it is meant to: a lot of reasons, shapes of every type, and errors
    results = [_server(t) for t in corpus]
    assert sum(len(r.get("invalid", [])) for r in results) > 150
    assert {s["type"] for r in results for s in r.get("shapes", [])} == {
        "rect",
        "ellipse",
        "line",
        "arrow",
        "stroke",
        "text",
    }
    assert sum("error" in r for r in results) >= 10
