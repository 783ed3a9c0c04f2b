"""Unit tests: change recording, plain replay == Doc replay, diff, restore updates, query plans, exports."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from pycrdt import Array, Doc, Map

from engine.adapters.sqlite_log import SqliteEventLog
from engine.events import Provenance
from engine.fold import load_doc
from engine.model import render
from projections.changes import ChangeRecorder
from projections.excalidraw import from_scene, key_after, keys_after, to_scene
from projections.history import BoardHistory, diff_boards, restore_update
from projections.local_projector import SUMMARY_RULE, LocalProjector
from projections.sqlite_archive import SqliteArchive
from projections.sqlite_store import BoardSummary, SqliteProjectionStore
from projections.svg import to_svg
from tests.history.support import add_shape, move, replica, shapes


class Recorded:
    def __init__(self) -> None:
        self.doc = replica()
        self.updates: list[bytes] = []
        self.doc.observe(lambda e: self.updates.append(bytes(e.update)))


def test_recorder_classifies_added_changed_removed_and_meta() -> None:
    src = Recorded()
    target = replica()
    rec = ChangeRecorder(target)
    add_shape(src.doc, "a")
    add_shape(src.doc, "b")
    target.apply_update(src.updates[-1])
    target.apply_update(src.updates[-2])
    assert rec.take().ids("added") == ["a", "b"]  # two updates, one take: both added
    with src.doc.transaction():
        shapes(src.doc)["a"]["x"] = 7.0
        del shapes(src.doc)["a"]["h"]
        del shapes(src.doc)["b"]
        shapes(src.doc)["c"] = Map({"type": "text", "pts": Array([1, 2])})
        src.doc.get("meta", type=Map)["title"] = "T"
    target.apply_update(src.updates[-1])
    c = rec.take()
    assert c.ids("changed") == ["a"] and c.ids("removed") == ["b"] and c.ids("added") == ["c"]
    assert c.shapes["a"] == {"~": {"x": 7.0}, "-": ["h"]}
    assert c.fields("a") == ["h", "x"] and c.meta == {"title": "T"}
    with src.doc.transaction():
        shapes(src.doc)["c"]["pts"].append(3)  # a nested type inside a field: the whole field changed
    target.apply_update(src.updates[-1])
    assert rec.take().shapes["c"] == {"~": {"pts": [1.0, 2.0, 3.0]}}
    assert rec.take().empty


def _workload(rng: random.Random, edits: int) -> Recorded:
    r = Recorded()
    ids: list[str] = []
    for i in range(edits):
        roll = rng.random()
        if roll < 0.25 or not ids:
            ids.append(f"s{i}")
            add_shape(r.doc, ids[-1], x=float(i), z=f"a{i}")
        elif roll < 0.35:
            with r.doc.transaction():
                del shapes(r.doc)[ids.pop(rng.randrange(len(ids)))]
        elif roll < 0.4:
            with r.doc.transaction():
                r.doc.get("meta", type=Map)["title"] = f"title {i}"
        elif roll < 0.45:
            with r.doc.transaction():
                shapes(r.doc)[ids[rng.randrange(len(ids))]].pop("w", None)
        else:
            move(r.doc, ids[rng.randrange(len(ids))], rng.random(), rng.random())
    return r


async def _project(log: SqliteEventLog, store: SqliteProjectionStore, every: int) -> LocalProjector:
    projector = LocalProjector(log, store, checkpoint_every=every, batch=37)
    projector.cursor = await store.cursor("local-projector")
    projector._rewind = store.history_backfill
    if projector._rewind:
        projector.cursor = 0
    while not await projector.step():
        pass
    return projector


async def test_plain_replay_equals_doc_replay_at_every_version(
    archive: tuple[SqliteEventLog, SqliteProjectionStore],
) -> None:
    log, store = archive
    r = _workload(random.Random(3), 400)
    for u in r.updates:
        await log.append("b", u, Provenance(time.time(), "c", "u"))
    await _project(log, store, every=7)
    history = BoardHistory(SqliteArchive(log, store))
    assert await history.archive.projected("b") == len(r.updates)
    plains = await store.query("SELECT count(*) FROM plain_checkpoints")
    assert plains[0][0] > 3
    doc = replica()
    for v, update in enumerate(r.updates, start=1):
        doc.apply_update(update)
        expected = render(doc, "b", v)
        assert await history.render_at("b", v) == expected
        if v % 50 == 0:
            assert render(load_doc(await history.state_at("b", v)), "b", v) == expected


async def test_projection_is_idempotent_and_backfills(
    archive: tuple[SqliteEventLog, SqliteProjectionStore], tmp_path: Path
) -> None:
    log, store = archive
    r = _workload(random.Random(4), 120)
    for u in r.updates:
        await log.append("b", u, Provenance(time.time(), "c", "u"))
    await _project(log, store, every=10)
    rows = await store.query("SELECT * FROM versions ORDER BY version")
    # a projector that refolds from the start (a history backfill) writes nothing different
    store.history_backfill = True
    await _project(log, store, every=10)
    assert await store.query("SELECT * FROM versions ORDER BY version") == rows
    assert await store.cursor("local-projector") > 0
    shape_rows = await store.query("SELECT count(*) FROM shape_versions")
    assert shape_rows[0][0] >= len(r.updates) - 10


async def test_history_queries_use_the_primary_keys(archive: tuple[SqliteEventLog, SqliteProjectionStore]) -> None:
    log, store = archive
    plans = await SqliteArchive(log, store).explain()
    for name, steps in plans.items():
        assert steps and all(s.startswith("SEARCH") for s in steps), (name, steps)
        assert not any("TEMP B-TREE" in s for s in steps), (name, steps)


def test_diff_boards() -> None:
    before = {"meta": {"title": "a"}, "shapes": [{"id": "1", "x": 1}, {"id": "2", "x": 2}]}
    after = {"meta": {}, "shapes": [{"id": "2", "x": 3, "fill": "red"}, {"id": "3", "x": 0}]}
    d = diff_boards(before, after)
    assert d["added"] == [{"id": "3", "x": 0}] and d["removed"] == [{"id": "1", "x": 1}]
    assert d["changed"] == [{"id": "2", "fields": {"fill": {"from": None, "to": "red"}, "x": {"from": 2, "to": 3}}}]
    assert d["meta"] == {"title": {"from": "a", "to": None}}
    assert diff_boards(after, after) == {"added": [], "removed": [], "changed": [], "meta": {}}


def test_restore_update_recreates_deletes_and_resets_fields() -> None:
    r = Recorded()
    add_shape(r.doc, "keep", x=1)
    add_shape(r.doc, "gone", x=2)
    with r.doc.transaction():
        r.doc.get("meta", type=Map)["title"] = "old"
    target = {"shapes": shapes(r.doc).to_py(), "meta": {"title": "old"}}
    then = render(r.doc, "b", 0)
    with r.doc.transaction():
        del shapes(r.doc)["gone"]
        shapes(r.doc)["keep"]["x"] = 99.0
        shapes(r.doc)["keep"]["fill"] = "red"
        r.doc.get("meta", type=Map)["title"] = "new"
    add_shape(r.doc, "new", x=3)
    current = bytes(r.doc.get_update())
    update = restore_update(current, target)
    assert update is not None
    assert len(update) < len(current)  # a delta, not the whole state
    after = load_doc(current, [update])
    assert render(after, "b", 0) == then
    assert restore_update(bytes(after.get_update()), target) is None  # already there: nothing to do
    # a peer that edits concurrently still converges with the restored board
    peer = load_doc(current)
    with peer.transaction():
        shapes(peer)["keep"]["y"] = 5.0
    a = load_doc(current, [update, bytes(peer.get_update())])
    b = load_doc(bytes(peer.get_update()), [update])
    assert render(a, "b", 0) == render(b, "b", 0)


def test_restore_of_many_shapes_is_one_bounded_update() -> None:
    r = Recorded()
    with r.doc.transaction():
        for i in range(1500):
            shapes(r.doc)[f"s{i}"] = Map({"type": "rect", "x": float(i), "z": "a0"})
    target = {"shapes": shapes(r.doc).to_py(), "meta": {}}
    with r.doc.transaction():
        for i in range(1500):
            del shapes(r.doc)[f"s{i}"]
    update = restore_update(bytes(r.doc.get_update()), target)
    assert update is not None
    assert len(load_doc(bytes(r.doc.get_update()), [update]).get("shapes", type=Map)) == 1500


def test_stacking_keys_sort_after() -> None:
    keys = keys_after("a9", 200)
    assert keys == sorted(keys) and keys[0] > "a9" and len(set(keys)) == 200
    assert key_after(None) == "a0" and key_after("zz!") > "zz!"


def test_excalidraw_round_trip_and_svg_escaping() -> None:
    shapes_ = [
        {"id": "1", "type": "rect", "x": 0, "y": 0, "w": 10, "h": 5, "stroke": "#000", "fill": "red", "width": 2},
        {"id": "2", "type": "arrow", "x": 1, "y": 1, "w": 4, "h": 0, "points": [0, 0, 4, 0], "width": 1},
        {"id": "3", "type": "text", "x": 0, "y": 9, "w": 40, "h": 20, "text": "<b>&", "font": 16},
        {
            "id": "4",
            "type": "sticky",
            "x": 0,
            "y": 9,
            "w": 40,
            "h": 40,
            "text": "note",
            "font": 16,
            "fill": "transparent",
        },
    ]
    back = from_scene(to_scene(shapes_))
    assert [s["type"] for s in back.shapes] == ["rect", "arrow", "text", "rect", "text"]
    assert back.shapes[1]["points"] == [0.0, 0.0, 4.0, 0.0] and back.skipped == {}
    svg = to_svg({"id": "b", "meta": {"title": "x<y"}, "shapes": shapes_})
    assert "&lt;b&gt;&amp;" in svg and "<title>x&lt;y</title>" in svg and svg.count("data-shape-id") == 4
    with pytest.raises(ValueError):
        from_scene({"elements": "nope"})


def test_nested_values_survive_plain_rendering() -> None:
    doc: Doc = replica()
    with doc.transaction():
        shapes(doc)["p"] = Map({"type": "stroke", "points": [0, 0, 1, 1], "z": "a0"})
    from projections.changes import plain_board, render_plain

    assert render_plain(plain_board(doc), "b", 1) == render(doc, "b", 1)


async def test_hostile_content_does_not_stop_history(archive: tuple[SqliteEventLog, SqliteProjectionStore]) -> None:
    from pycrdt import XmlFragment

    log, store = archive
    r = Recorded()
    with r.doc.transaction():
        r.doc.get("meta", type=Map)["junk"] = XmlFragment()
    add_shape(r.doc, "a")
    with r.doc.transaction():
        shapes(r.doc)["a"]["x"] = XmlFragment()  # to_py() raises on this; history must not
    for u in r.updates:
        await log.append("b", u, Provenance(time.time(), "c", "u"))
    await _project(log, store, every=1)
    history = BoardHistory(SqliteArchive(log, store))
    assert await history.archive.projected("b") == 3
    assert (await history.render_at("b", 3))["shapes"] == [
        {"id": "a", "type": "rect", "y": 0.0, "w": 10.0, "h": 10.0, "z": "a0"}
    ]
    assert (await store.summaries())["b"].shapes == 1


async def test_a_data_dir_projected_before_history_gets_backfilled(tmp_path: Path) -> None:
    import sqlite3

    log = SqliteEventLog(tmp_path / "events.db")
    await log.start()
    r = _workload(random.Random(9), 30)
    for u in r.updates:
        await log.append("b", u, Provenance(time.time(), "c", "u"))
    # an old projections.db: checkpoints, boards and a cursor at the end of the log, no history tables
    old = sqlite3.connect(tmp_path / "projections.db")
    old.executescript(
        "CREATE TABLE checkpoints (board TEXT, version INTEGER, state BLOB, PRIMARY KEY (board, version));"
        "CREATE TABLE boards (board TEXT PRIMARY KEY, version INTEGER, updated REAL, title TEXT, shapes INTEGER);"
        "CREATE TABLE cursors (name TEXT PRIMARY KEY, seq INTEGER);"
    )
    old.execute("INSERT INTO checkpoints VALUES ('b', ?, ?)", (len(r.updates), bytes(r.doc.get_update())))
    old.execute("INSERT INTO cursors VALUES ('local-projector', ?)", (len(r.updates),))
    old.commit()
    old.close()
    store = SqliteProjectionStore(tmp_path / "projections.db")
    await store.start()
    assert store.history_backfill and await store.cursor("local-projector") == 0
    await _project(log, store, every=5)
    history = BoardHistory(SqliteArchive(log, store))
    assert await history.archive.projected("b") == len(r.updates)
    assert await history.render_at("b", len(r.updates)) == render(r.doc, "b", len(r.updates))
    await log.close()
    await store.close()


async def test_listing_includes_versions_the_projector_has_not_reached(
    archive: tuple[SqliteEventLog, SqliteProjectionStore],
) -> None:
    log, store = archive
    r = _workload(random.Random(11), 20)
    for u in r.updates[:10]:
        await log.append("b", u, Provenance(time.time(), "c", "u"))
    await _project(log, store, every=100)
    for u in r.updates[10:]:
        await log.append("b", u, Provenance(time.time(), "c", "u"))
    history = BoardHistory(SqliteArchive(log, store))
    newest = await history.versions("b", before=10**9, limit=15)
    assert [v.version for v in newest] == list(range(20, 5, -1))
    assert newest[0].summary is None and newest[-1].summary is not None
    oldest = await history.versions("b", after=5, limit=10)
    assert [v.version for v in oldest] == list(range(6, 16))
    assert oldest[4].summary is not None and oldest[5].summary is None
    # the board at an unprojected version comes from the log, exactly
    assert await history.render_at("b", 20) == render(r.doc, "b", 20)


async def test_old_summaries_are_recounted_once(archive: tuple[SqliteEventLog, SqliteProjectionStore]) -> None:
    """Summaries written before the count followed the rendering counted every entry of `shapes`."""
    import sqlite3

    log, store = archive
    src = Recorded()
    add_shape(src.doc, "a")
    add_shape(src.doc, "b")
    with src.doc.transaction():
        shapes(src.doc)["not-a-shape"] = 5
        shapes(src.doc)["no-type"] = Map({"x": 1.0})
    for u in src.updates:
        await log.append("b", u, Provenance(time.time(), "c", "u"))
    projector = await _project(log, store, every=2)
    assert (await store.summaries())["b"].shapes == 2  # the rendering lists a and b
    # a data dir from before: the old count, and no marker
    old = (await store.summaries())["b"]
    await store.write("local-projector", 0, [BoardSummary("b", old.version, old.updated, old.title, 4)], [])
    with sqlite3.connect(store.path) as conn:
        conn.execute("DELETE FROM cursors WHERE name = ?", (SUMMARY_RULE,))
    assert (await store.summaries())["b"].shapes == 4
    assert await projector.recount_summaries() == 1
    assert (await store.summaries())["b"].shapes == 2
    assert await projector.recount_summaries() == 0  # once per data dir
