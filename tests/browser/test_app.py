"""The web app in a real browser (Debian Chromium driven by playwright-core) against a real
`inkstream serve` subprocess.

The scenarios live in scenarios.mjs (Node); this module starts the server, installs the Node
dependencies if needed (`npm ci`), runs every scenario once and asserts on the facts each one
reports. Screenshots land in tests/browser/artifacts/ (gitignored).

INKSTREAM_SCENARIOS=importExport,editing runs only those scenarios (the tests of the others skip),
to check one area without the ~minutes of the whole set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import InkstreamServer

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.browser


def _npm_ci() -> None:
    if (HERE / "node_modules" / "playwright-core").is_dir():
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed for the browser tests (apt-get install nodejs npm)"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True, timeout=600)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if os.environ.get("INKSTREAM_SKIP_BROWSER") == "1":
        pytest.skip("INKSTREAM_SKIP_BROWSER=1")
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    _npm_ci()
    server = InkstreamServer(data_dir=tmp_path_factory.mktemp("browser") / "data")
    server.start()
    try:
        only = [name for name in os.environ.get("INKSTREAM_SCENARIOS", "").split(",") if name.strip()]
        proc = subprocess.run(
            ["node", "scenarios.mjs", server.url, *only],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        assert lines, f"scenarios produced no result (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        yield json.loads(lines[-1])["results"]
    finally:
        server.stop()


def scenario(results: dict[str, Any], name: str) -> dict[str, Any]:
    if name not in results and os.environ.get("INKSTREAM_SCENARIOS"):
        pytest.skip(f"scenario {name} not in INKSTREAM_SCENARIOS")
    r = results[name]
    assert r["ok"], f"{name} failed: {r.get('error')}\nfacts: {json.dumps(r, indent=1)[:3000]}"
    assert r.get("errors") == [], f"{name}: errors in the page: {r.get('errors')}"
    return r


def test_collaboration_shapes_cursors_presence_and_own_undo(results: dict[str, Any]) -> None:
    r = scenario(results, "collaboration")
    assert sorted(r["presenceB"]) == ["Ada", "Grace"]
    # A's rectangle reached the server with A's name...
    assert r["apiAfterRect"] == [{"type": "rect", "createdBy": "Ada", "w": 240, "h": 160}]
    # ...and B's canvas shows it: ink along its top edge, a clear (transparent) inside
    assert r["inkTopEdgeB"] > 100
    assert r["inkInsideB"] == 0
    assert r["cursorSeenByB"]
    # A's undo removed only A's shape, never Grace's
    assert r["afterUndoApi"] == [{"type": "ellipse", "createdBy": "Grace"}]
    assert r["afterUndoB"] == ["ellipse"]
    assert r["afterRedoTypes"] == {"rect": 1, "ellipse": 1}


def test_offline_edits_merge_and_match_server(results: dict[str, Any]) -> None:
    r = scenario(results, "offline")
    assert r["offlineLabel"].strip() == "Offline"
    assert r["whileOffline"] == {"A": 2, "B": 2, "server": 0}
    assert r["converged"]
    assert r["serverEqualsClients"], r.get("diff")
    assert r["types"] == {"rect": 1, "stroke": 1, "ellipse": 1, "sticky": 1}
    assert r["statusAfter"] == "connected"


def test_reload_keeps_content(results: dict[str, Any]) -> None:
    r = scenario(results, "reload")
    assert r["sameAfterReload"]
    assert r["sameInFreshBrowser"]


def test_new_board_from_home(results: dict[str, Any]) -> None:
    r = scenario(results, "newBoard")
    assert r["title"] == "Roadmap Q3"
    assert "Roadmap Q3" in r["cardText"] and "2 shapes" in r["cardText"]


def test_excalidraw_import_and_exports(results: dict[str, Any]) -> None:
    r = scenario(results, "importExport")
    expected = {"rect": 2, "line": 2, "arrow": 2, "ellipse": 1, "stroke": 1, "text": 4}
    assert r["apiTypes"] == expected
    assert r["dropTypes"] == expected
    assert r["apiTexts"] == ["Design review", "Owner: Grace", "Release", "Ship?"]
    assert r["skipped"] == {"frame": 1, "image": 1}
    assert "Skipped 2 unsupported elements: frame, image" in r["report"]
    assert r["designBox"] == {"x": 100, "y": 100, "w": 220, "h": 100}
    assert r["svgStartsWith"].startswith("<?xml") and "<svg" in r["svgStartsWith"]
    assert r["svgHasAllShapes"] and r["svgHasTexts"]
    assert r["pngSignature"] == "PNG" and r["pngBytes"] > 1000
    assert r["excalidrawExport"]["type"] == "excalidraw"
    assert r["excalidrawExport"]["elements"] == 12


#: Fields the two imports legitimately write differently: ids, stacking keys, who and when; the web
#: app writes its style's `font` on every shape (the server only on texts); a text's box is measured
#: in the browser's font, estimated (0.6 em a character) on the server.
def _comparable(shapes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for s in shapes:
        drop = {"id", "z", "createdBy", "createdAt"} | ({"w", "h"} if s["type"] == "text" else {"font"})
        out.append({k: v for k, v in s.items() if k not in drop})
    return sorted(out, key=lambda s: json.dumps(s, sort_keys=True))


def test_excalidraw_import_in_the_browser_and_on_the_server_give_the_same_shapes(results: dict[str, Any]) -> None:
    r = scenario(results, "importExport")
    assert r["serverImport"]["imported"] == len(r["webShapes"]) == 12
    assert r["serverImport"]["skipped"] == r["skipped"]
    assert _comparable(r["webShapes"]) == _comparable(r["serverShapes"])
    # texts: the measured box is at least the element's own (Excalidraw's) box, as on the server
    web = sorted((s["text"], s["h"]) for s in r["webShapes"] if s["type"] == "text")
    server = sorted((s["text"], s["h"]) for s in r["serverShapes"] if s["type"] == "text")
    assert web == server


#: What tests/browser/fixtures/invalid-elements.excalidraw holds that can be imported (at 30.125 a
#: point rounds half to even, as Python's round does: 30.12).
INVALID_FIXTURE_VALID = [
    {"type": "rect", "x": 120, "y": 140, "w": 200, "h": 100, "stroke": "#c92a2a", "fill": "#ffc9c9", "opacity": 0.8},
    {"type": "ellipse", "x": 400, "y": 150, "w": 160, "h": 90, "stroke": "#1971c2", "fill": "transparent", "width": 2},
    {"type": "arrow", "x": 200, "y": 320, "w": 120, "h": 40, "points": [120, 40, 0, 0], "stroke": "#2f9e44"},
    {"type": "text", "x": 150, "y": 420, "text": "Hello\nworld", "font": 24},
    {"type": "line", "x": 640, "y": 300, "w": 120, "h": 80, "points": [60, 0, 120, 40, 60, 80, 0, 40, 60, 0]},
    {"type": "stroke", "x": 660, "y": 460, "w": 90, "h": 30, "points": [0, 0, 30.12, 20.5, 60, 10.25, 90, 30]},
]


def test_excalidraw_import_skips_invalid_elements_and_says_why(results: dict[str, Any]) -> None:
    r = scenario(results, "importExport")
    shapes = r["invalidWebShapes"]
    # exactly the valid elements, as they were: nothing invented (at 0,0 or anywhere), nothing lost
    assert len(shapes) == r["invalidBoardFirstRead"] == len(INVALID_FIXTURE_VALID)
    by_type = {s["type"]: s for s in shapes}
    assert sorted(by_type) == sorted(str(e["type"]) for e in INVALID_FIXTURE_VALID)
    for want in INVALID_FIXTURE_VALID:
        got = by_type[want["type"]]
        assert {k: got.get(k) for k in want} == want, (want["type"], got)
    assert by_type["rect"]["width"] == 4 and by_type["line"]["fill"] == "#ffec99"
    assert not [s for s in shapes if s["x"] == 0 and s["y"] == 0]
    assert all(s["w"] > 0 and s["h"] > 0 for s in shapes)
    text = by_type["text"]
    assert text["w"] >= 60 and text["h"] >= 60  # at least the element's own box
    # the browser and the server reach the same verdicts, with the same reasons, and import the same shapes
    rep, srv = r["invalidReport"], r["invalidServerImport"]
    assert rep["imported"] == srv["imported"] == 6
    assert rep["skipped"] == srv["skipped"] == {"invalid": 15, "frame": 1}
    assert rep["deleted"] == srv["deleted"] == 1
    assert rep["invalid"] == srv["invalid"]
    assert _comparable(shapes) == _comparable(r["invalidServerShapes"])
    assert rep["invalid"] == [
        "element 1: not a JSON object: 'not an object'",
        "element 2 (text): text element without text",
        "element 3 (rectangle): x must be a finite number, not 'a'",
        "element 5 (rectangle): y must be a finite number, not nan",
        "element 6 (rectangle): width is missing",
        "element 7 (rectangle): x must be a finite number, not inf",
        "element 8 (text): text must be a string, not 5",
        "element 9 (line): point 1 must be [x, y] with finite numbers, not [10, 'b']",
        "element 11 (rectangle): x must be a finite number, not " + "1" + "0" * 38 + "\u2026",
        "element 12 (line): geometry out of range (w is not finite)",
        "element 14: not a JSON object: None",
        "element 15 (freedraw): point 1 must be [x, y] with finite numbers, not [5]",
        "element 20: not a JSON object: 7",
        "element 21 (text): geometry out of range (w is not finite)",
        "element 22 (line): points must be a non-empty list of [x, y] pairs, not None",
    ]
    # the user is told: what was imported, what was skipped, and why (the first three reasons)
    lines = [ln.strip() for ln in rep["text"].splitlines() if ln.strip()]
    assert lines[:3] == [
        "Imported 6 shapes from invalid-elements.excalidraw",
        "Skipped 1 unsupported element: frame",
        "Skipped 15 invalid elements:",
    ], lines
    assert lines[3:6] == [
        "Element 1: not a JSON object: 'not an object'",
        "Element 2 (text): text element without text",
        "Element 3 (rectangle): x must be a finite number, not 'a'",
    ], lines
    assert lines[6].startswith("\u2026and 12 more") and "Show all" in lines[6], lines
    # "Show all": every reason, and the toast stays until closed
    assert rep["allReasons"] == [reason[0].upper() + reason[1:] for reason in srv["invalid"]]
    assert rep["moreAfterShowAll"] is None
    assert rep["keptOpen"]
    assert rep["closable"] and r["invalidReportClosed"]


def test_tools_selection_and_editing(results: dict[str, Any]) -> None:
    r = scenario(results, "editing")
    tools = ["select", "pen", "rect", "ellipse", "line", "arrow", "text", "sticky", "eraser"]
    assert [t["tool"] for t in r["tools"]] == tools
    for t in r["tools"]:
        assert t["label"] and t["tip"] and t["svg"], t
    assert all(r["shortcuts"].values()), r["shortcuts"]
    assert r["rectFill"] == "#a5d8ff"
    assert r["moveDelta"] == [60, 40]
    assert r["resized"] == [300, 200]
    assert r["afterDuplicate"] == 2
    assert r["originalOnTop"]
    assert r["copyRemains"]
    assert r["marqueeSelected"] == 2
    assert r["strokes"] == ["#e03131", "#e03131"]
    assert r["zoomAfterIn"] == pytest.approx(1.25)
    assert r["afterErase"] == {"rect": 1}
    assert r["afterEraseUndo"] == {"rect": 1, "ellipse": 1}


def test_stroke_sends_bounded_updates(results: dict[str, Any]) -> None:
    r = scenario(results, "editing")
    # one Yjs update per 50 ms at most while drawing (+ create and final), never one per move
    assert r["strokeUpdates"] <= r["strokeMs"] / 50 + 3, r
    fast = r["fastStroke"]
    assert fast["updates"] <= fast["ms"] / 50 + 3, fast
    assert fast["updates"] < fast["moves"] / 4, fast


def test_history_preview_restore_fork(results: dict[str, Any]) -> None:
    r = scenario(results, "history")
    assert r["authors"] == ["Ada", "Grace"]
    # versions grouped by author, newest first
    assert [g["user"] for g in r["groups"]][:2] == ["Grace", "Ada"]
    assert r["groups"][1]["last"] == r["versionOnlyA"]
    # the preview shows A and not B, clearly marked read-only, with the tools put away
    assert r["bannerText"] == f"Viewing version {r['versionOnlyA']} — read-only"
    assert r["previewInkA"] > 50
    assert r["previewInkB"] == 0
    assert r["toolbarHidden"]
    # while previewing, Grace's new shape reaches the live document but not the preview
    assert r["stillPreviewing"] == r["versionOnlyA"]
    assert r["liveCountDuringPreview"] == 3
    assert r["previewInkC"] == 0
    # restore: server and both browsers hold only A, and Ada is back on the live board
    assert r["serverAfterRestore"] == [{"id": r["rectAId"], "type": "rect"}]
    assert r["liveA"] == [r["rectAId"]] and r["liveB"] == [r["rectAId"]]
    assert r["previewAfterRestore"] is None
    # fork from the version with only A: a new board holding A
    assert r["forkShapes"] == [r["rectA"]]
    assert r["forkServer"] == ["rect"]
    assert "forked" in r["forkToast"]


def test_chosen_name_is_the_recorded_author(results: dict[str, Any]) -> None:
    r = scenario(results, "names")
    assert r["suggested"] and r["suggested"] != "Lin"
    # the versions after the welcome dialog carry the chosen name, not the random one
    assert r["authorsAfterWelcome"] == ["Lin"]
    assert r["createdBy"] == "Lin"
    # "Change your name…": the next versions carry the new name; the reconnect is not shown as lost
    assert r["authorsAfterRename"] == ["Lin Q"]
    assert r["statusAfterRename"] == "connected"
    assert r["presenceName"] == "Lin Q"


def test_phone_layout_every_control_reachable(results: dict[str, Any]) -> None:
    r = scenario(results, "phone")
    for key in ("toolsOnTop", "chromeOnTop", "toolsOnTopWithStyle", "swatchesOnTop", "toolsOnTopWithSelection",
                "historyOnTop", "bannerOnTop", "toolsOnTopAfterHistory"):
        assert set(r[key].values()) == {"ok"}, (key, r[key])
    # the style panel is folded until asked for, then a compact card, folded again on a tool change
    assert r["stylePanelAreaFolded"] == 0
    assert 0 < r["stylePanelAreaOpen"] < 0.25
    assert r["styleFoldsOnToolChange"] == 0
    assert r["rect"] == [{"type": "rect", "stroke": "#e03131"}]


def test_rough_edges(results: dict[str, Any]) -> None:
    r = scenario(results, "roughEdges")
    # a click inside an unfilled rectangle / ellipse selects it
    assert r["insideRect"] == [r["ids"]["rect"]]
    assert r["insideEllipse"] == [r["ids"]["ellipse"]]
    # dragging from the style panel selects no page text (and draws nothing)
    assert r["textSelectedByDrag"] == ""
    assert r["shapesAfterPanelDrag"] == 2
    # zoom to fit keeps every shape clear of the style panel and the other floating chrome
    assert r["fitOverlaps"] == {"style": False, "title": False, "toolbar": False, "zoom": False}
    assert r["fitInView"]
    # Escape in the title box cancels: hint shown while editing, old title back, nothing written
    assert r["titleHintVisible"] and r["titleHint"] == "Enter to save · Esc to cancel"
    assert r["titleAfterEscape"] == "" and r["serverTitleAfterEscape"] == ""
    assert r["escapeToast"] == "Title change cancelled"
    # exports are named <title or id>.png / .svg
    assert r["pngNameUntitled"] == f"{r['boardId']}.png"
    assert r["pngName"] == "Café plan Q3 Q4.png"
    assert r["svgName"] == "Café plan Q3 Q4.svg"
    # New board + welcome dialog: focus stays in the dialog, nothing highlighted after it
    assert r["focusDuringWelcome"] == "name-input"
    assert r["titleSelectedDuringWelcome"] == 0
    assert r["afterWelcome"]["selected"] == "" and r["afterWelcome"]["title"] == ""
    # ...and an abandoned new board leaves nothing behind
    assert r["newBoardOnServer"] is None
    assert not r["abandonedInList"] and not r["abandonedOnServerList"]


def test_big_board_early_open_and_live_edit_during_pan(results: dict[str, Any]) -> None:
    r = scenario(results, "bigBoard")
    # opened over the socket index.html started while the app loaded
    assert r["earlySocketUsed"] is True
    assert {"sync-received", "synced"} <= set(r["openMarks"])
    # another person's shape showed up on the canvas while the pan was still drawing cached frames
    d = r["duringPan"]
    assert d["magentaPixels"] > 0, d
    assert d["blits"] > 0 and d["patches"] > 0, d
    # a reload opens from the offline copy, with the ordinary socket
    assert r["afterReload"] == {"early": False, "localLoaded": True, "shapes": 601}


def test_topbar_never_overlaps_at_any_width_with_any_number_of_people(results: dict[str, Any]) -> None:
    r = scenario(results, "topbar")
    layouts = r["layouts"]
    assert {m["width"] for m in layouts} >= {360, 768, 1000, 1280, 2560}
    assert {m["people"] for m in layouts} == {1, 3, 6, 10}
    for m in layouts:
        where = (m["width"], m["people"], m["mode"])
        # no two cards intersect; every control is on screen and the element under its centre
        assert m["overlaps"] == [], (where, m["overlaps"], m["parts"])
        assert m["problems"] == [], (where, m["problems"])
        # everyone is accounted for: avatars shown, the rest in "+N"
        assert m["count"] == m["people"], where
        assert m["shown"] >= 1 and m["shown"] + m["plus"] == m["people"], (where, m["shown"], m["plus"])
    mode = {(m["width"], m["people"]): m["mode"] for m in layouts}
    # the reported case: 1000 px, 3 people -- the toolbar stays in the bar, clear of the menu button
    assert mode[(1000, 3)].startswith("top:"), mode
    # wide screens keep everything in one bar with labels; phones put the tools at the bottom
    assert mode[(2560, 10)] == "top:5" and mode[(1280, 1)] == "top:5", mode
    assert all(mode[(w, n)].startswith("below:") for w in (360, 390) for n in (1, 3, 6, 10)), mode
    # "+N" lists everyone, and Escape closes that list
    assert r["peopleMenu"] == 10
    assert r["peopleMenuClosedByEscape"] is True
    # while previewing a version the banner takes the toolbar's place without touching anything
    for m in r["previewLayouts"]:
        assert m["overlaps"] == [] and m["problems"] == [], (m["width"], m["overlaps"], m["problems"])


def test_home_tells_untitled_boards_apart(results: dict[str, Any]) -> None:
    r = scenario(results, "polish")
    made = r["made"]
    assert r["cards"]["untitledA"] == f"Untitled · {made['untitledA']}"
    assert r["cards"]["untitledB"] == f"Untitled · {made['untitledB']}"
    assert r["cards"]["titled"] == "Launch checklist"
    assert r["homeOverflow"] <= 0  # nothing sticks out sideways on a 360 px phone


def test_invalid_board_link_says_so_and_offers_ways_on(results: dict[str, Any]) -> None:
    r = scenario(results, "polish")
    inv = r["invalid"]
    assert inv["heading"] == "This board link is not valid"
    assert "bad!id" in inv["text"] and "1\u2013128 characters" in inv["text"] and "- _ . ~" in inv["text"]
    assert "not found" not in inv["text"].lower()
    assert inv["home"] == "/"
    assert re.fullmatch(r"/b/[A-Za-z0-9_-]{10}", r["newBoardFromInvalid"]), r["newBoardFromInvalid"]


def test_history_groups_a_drag_into_one_expandable_entry(results: dict[str, Any]) -> None:
    r = scenario(results, "polish")
    n = r["versionCount"]
    assert n >= 5, r  # the drag sent several versions (live preview for others)...
    # ...which the panel shows as one entry: one rectangle added, N versions, expandable
    assert r["groups"] == [{"count": n, "summary": "1 added"}]
    assert r["expandLabel"] == f"{n} versions"
    assert r["versionRows"] == list(range(n, 0, -1))
    assert r["previewedRow"] == r["pickedRow"]
