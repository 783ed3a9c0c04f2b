"""The MongoDB projector records history exactly as the local projector does (same ChangeRecorder)."""

from __future__ import annotations

import json
from typing import Any

from pycrdt import Doc, Map

from engine.events import Provenance
from engine.fold import load_doc
from engine.model import render
from engine.wire import encode_headers, encode_key
from projections.changes import Changes, apply_changes, render_plain
from projections.history import empty_plain
from projections.mongo_projector import Batch, Projector, Record
from tests.unit.test_projector_fold import MemorySink


class HistorySink(MemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[Batch] = []

    async def write(self, batch: Batch) -> None:
        await super().write(batch)
        self.batches.append(batch)


def edits() -> list[bytes]:
    doc: Doc[Any] = Doc()
    out: list[bytes] = []
    doc.observe(lambda e: out.append(bytes(e.update)))
    shapes = doc.get("shapes", type=Map)
    for i in range(6):
        shapes[f"s{i}"] = Map({"type": "rect", "x": float(i), "y": 0.0, "z": f"a{i}"})
    for i in range(6):
        shape = shapes[f"s{i % 3}"]
        shape["x"] = 100.0 + i
    del shapes["s4"]
    doc.get("meta", type=Map)["title"] = "T"
    return out


async def test_history_rows_shape_index_and_plain_checkpoints() -> None:
    updates = edits()
    sink = HistorySink()
    projector = Projector(sink, checkpoint_every=5)
    recs = [
        Record(0, i, encode_key("b"), u, encode_headers(Provenance(1000.0 + i, "c", "ann")), 999.0)
        for i, u in enumerate(updates)
    ]
    await projector.project(recs[:7])
    await projector.project(recs[7:])
    await projector.project(recs[3:])  # redelivery: nothing new
    rows = [sink.archive[("b", v)] for v in range(1, len(updates) + 1)]
    assert [r["added"] for r in rows[:6]] == [1] * 6 and rows[12]["removed"] == 1 and rows[13]["meta"]
    # plain checkpoint at 5, then the recorded changes, equal the fold of every update
    plain_cp = [c for b in sink.batches for c in b.plain_checkpoints]
    assert [c["version"] for c in plain_cp] == [5, 10]
    plain = json.loads(plain_cp[0]["plain"])
    for r in rows[5:]:
        apply_changes(plain, Changes.decode(r["changes"]))
    assert render_plain(plain, "b", len(updates)) == render(load_doc(None, updates), "b", len(updates))
    plain = empty_plain()
    for r in rows:
        apply_changes(plain, Changes.decode(r["changes"]))
    assert render_plain(plain, "b", len(updates)) == render(load_doc(None, updates), "b", len(updates))
    # shape index: s0 added at 1, moved at 7 and 10; grouped per batch
    touches = [t for b in sink.batches for (bd, s), e in b.shape_index.items() if s == "s0" for t in e["touches"]]
    assert [(t[0], t[4], t[5]) for t in touches] == [
        (1, "added", ["type", "x", "y", "z"]),
        (7, "changed", ["x"]),
        (10, "changed", ["x"]),
    ]


async def test_a_restarted_projector_keeps_recording_from_the_board_document_and_archive() -> None:
    """After a restart the projector loads the board document plus the archived tail: the plain board
    it keeps (hence the next plain checkpoint and the changes) is still exact."""
    updates = edits()
    sink = HistorySink()
    recs = [
        Record(0, i, encode_key("b"), u, encode_headers(Provenance(1000.0 + i, "c", "ann")), 999.0)
        for i, u in enumerate(updates)
    ]
    first = Projector(sink, checkpoint_every=5, board_interval=0.0)
    await first.project(recs[:3])  # board document at 3
    first.board_interval = 3600.0
    await first.project(recs[3:8])  # archived to 8, document still at 3
    second = Projector(sink, checkpoint_every=5)
    await second.project(recs[6:])  # redelivery from an earlier offset
    cp = next(c for b in sink.batches for c in b.plain_checkpoints if c["version"] == 10)
    doc10 = load_doc(None, updates[:10])
    assert render_plain(json.loads(cp["plain"]), "b", 10) == render(doc10, "b", 10)
    plain = empty_plain()
    for v in range(1, len(updates) + 1):
        apply_changes(plain, Changes.decode(sink.archive[("b", v)]["changes"]))
    assert render_plain(plain, "b", len(updates)) == render(load_doc(None, updates), "b", len(updates))
