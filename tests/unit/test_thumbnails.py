"""Thumbnails: the first shapes of the rendering, and how the embedded projector writes them.

Real SQLite event log and projection store, the real LocalProjector driven step by step.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from pycrdt import Array, Doc, Map

from engine.adapters.sqlite_log import SqliteEventLog
from engine.events import Provenance
from engine.model import board_json, dumps_json, render, render_body, render_shapes_plain
from projections import thumbnails
from projections.local_projector import LocalProjector
from projections.sqlite_store import SqliteProjectionStore
from projections.thumbnails import MAX_SHAPES, encode, first_shapes_plain, from_plain, from_rendering


def messy_board(rng: random.Random, n: int) -> Doc:
    """Shapes with z strings, missing z, z of the wrong type, ties, non-shapes and junk entries."""
    doc: Doc = Doc()
    shapes = doc.get("shapes", type=Map)
    doc.get("meta", type=Map)["title"] = "messy"
    with doc.transaction():
        for i in range(n):
            kind = rng.choice(["rect", "stroke", "ellipse", "text", "blob"])
            fields: dict[str, Any] = {"type": kind, "x": rng.uniform(-500, 500), "y": float(rng.randint(-9, 9))}
            roll = rng.random()
            if roll < 0.7:
                fields["z"] = f"a{rng.randint(0, 50)}"  # many ties: broken by id
            elif roll < 0.8:
                fields["z"] = rng.randint(0, 9)  # wrong type: rendered without z
            if kind == "stroke":
                fields["points"] = Array([rng.uniform(0, 10) for _ in range(6)])
            shapes[f"s{rng.randint(0, 10**6)}-{i}"] = Map(fields)
        shapes["junk"] = 5.0
        shapes["nested"] = Map({"type": Map({"deep": True})})
    return doc


def test_first_shapes_are_the_rendering_cut_at_the_limit() -> None:
    rng = random.Random(7)
    for n, limit in ((0, 10), (40, 100), (400, 150), (400, 399)):
        doc = messy_board(rng, n)
        plain = json.loads(str(doc.get("shapes", type=Map)))
        rendered = render_shapes_plain(plain)
        shapes, truncated = first_shapes_plain(plain, limit)
        assert shapes == rendered[:limit]
        assert truncated == (len(rendered) > limit)


def test_thumbnail_json_matches_the_rendering() -> None:
    doc = messy_board(random.Random(8), 200)
    content = render(doc, "b1", 12)
    from_doc = json.loads(from_rendering(content).body)
    assert from_doc == {"id": "b1", "version": 12, "shapes": content["shapes"], "truncated": False}
    plain = {"shapes": json.loads(str(doc.get("shapes", type=Map))), "meta": {}}
    assert from_plain("b1", 12, plain).body == from_rendering(content).body


def test_thumbnail_keeps_at_most_max_shapes_and_max_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = [{"id": f"s{i:05}", "type": "rect", "x": float(i)} for i in range(MAX_SHAPES + 5)]
    body = json.loads(encode("b", 3, shapes, False).body)
    assert body["truncated"] is True and body["shapes"] == shapes[:MAX_SHAPES]
    big = [{"id": f"s{i}", "type": "text", "text": "x" * 1000} for i in range(20)]
    monkeypatch.setattr(thumbnails, "MAX_BYTES", 5000)
    cut = encode("b", 3, big, False)
    body = json.loads(cut.body)
    assert len(cut.body) <= 5000 and body["truncated"] is True
    assert body["shapes"] == big[: len(body["shapes"])] and 0 < len(body["shapes"]) < 20


def test_board_json_is_the_rendering_as_the_api_writes_it() -> None:
    doc = messy_board(random.Random(9), 60)
    assert board_json("b-é", 7, render_body(doc)) == dumps_json(render(doc, "b-é", 7)).encode()


# -- the embedded projector -----------------------------------------------------------------------


class Writer:
    def __init__(self) -> None:
        self.doc: Doc = Doc()
        self.updates: list[bytes] = []
        self.doc.observe(lambda e: self.updates.append(bytes(e.update)))

    def add(self, shape: str, z: str) -> bytes:
        with self.doc.transaction():
            self.doc.get("shapes", type=Map)[shape] = Map({"type": "rect", "x": 1.0, "z": z})
        return self.updates[-1]


async def thumbnail_of(store: SqliteProjectionStore, board: str) -> dict[str, Any] | None:
    found = await store.thumbnail(board)
    return None if found is None else {**json.loads(found.body), "_stored": found.version}


async def test_projector_writes_thumbnails_throttled_and_when_quiet(
    archive: tuple[SqliteEventLog, SqliteProjectionStore],
) -> None:
    log, store = archive
    projector = LocalProjector(log, store, thumbnail_interval=3600.0)  # nothing is due twice within the test
    writer = Writer()
    await log.append("b", writer.add("s1", "a1"), Provenance(time.time(), "c", "u"))
    assert await projector.step() is True
    first = await thumbnail_of(store, "b")
    assert first is not None and first["version"] == 1 and [s["id"] for s in first["shapes"]] == ["s1"]
    for i in range(2, 6):  # a busy board: folded, summarized, but its thumbnail waits for the interval
        await log.append("b", writer.add(f"s{i}", f"a{i}"), Provenance(time.time(), "c", "u"))
        await projector.step()
    assert (await store.summaries())["b"].version == 5
    assert (await thumbnail_of(store, "b"))["version"] == 1  # type: ignore[index]
    assert projector.thumbnails_written == 1
    projector.thumbnail_interval = 0.0  # the interval has passed: the caught-up step writes the last state
    assert await projector.step() is True
    last = await thumbnail_of(store, "b")
    assert (
        last is not None
        and last["version"] == 5
        and [s["id"] for s in last["shapes"]] == [f"s{i}" for i in range(1, 6)]
    )
    assert await projector.step() is True and projector.thumbnails_written == 2  # nothing new: no rewrite


async def test_projector_backfills_missing_and_stale_thumbnails(
    archive: tuple[SqliteEventLog, SqliteProjectionStore],
) -> None:
    log, store = archive
    writer = Writer()
    for i in range(3):
        await log.append("old", writer.add(f"s{i}", f"a{i}"), Provenance(time.time(), "c", "u"))
    projector = LocalProjector(log, store)
    await projector.step()
    # As a data dir from before thumbnails (or a crash inside the interval) leaves it: no thumbnail row.
    await store.query("DELETE FROM thumbnails")
    assert await store.stale_thumbnails() == {"old": 3}
    fresh = LocalProjector(log, store)
    fresh.cursor = await store.cursor("local-projector")
    assert await fresh.backfill_thumbnails() == 1
    assert await store.stale_thumbnails() == {}
    stored = await thumbnail_of(store, "old")
    assert stored is not None and stored["version"] == 3 and len(stored["shapes"]) == 3
