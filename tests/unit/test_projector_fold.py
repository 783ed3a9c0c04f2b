"""The projector's folding, without Kafka or MongoDB: versions, idempotency, checkpoints, retries."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Doc, Map

from engine.events import Provenance
from engine.fold import fold, load_doc
from engine.model import render
from engine.retry import Backoff
from engine.wire import decode_provenance, encode_headers, encode_key
from projections.mongo_projector import ArchivedUpdate, Batch, BoardState, Projector, Record


class MemorySink:
    """A ProjectionSink with MongoDB's semantics (unique (board, version), conditional board writes)."""

    def __init__(self) -> None:
        self.boards: dict[str, dict[str, Any]] = {}
        self.archive: dict[tuple[str, int], dict[str, Any]] = {}
        self.checkpoints: dict[tuple[str, int], bytes] = {}
        self.fail_next = 0
        self.writes = 0

    async def load(self, board: str) -> BoardState | None:
        d = self.boards.get(board)
        return None if d is None else BoardState(board, d["version"], d["state"], d["partition"], d["offset"])

    async def archived(self, board: str, after: int) -> list[ArchivedUpdate]:
        rows = sorted((v, r) for (b, v), r in self.archive.items() if b == board and v > after)
        return [ArchivedUpdate(v, r["data"], r["time"], r["partition"], r["offset"]) for v, r in rows]

    async def write(self, batch: Batch) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("mongo is down")
        self.writes += 1
        for row in batch.archive:
            self.archive.setdefault((row["board"], row["version"]), row)
        for cp in batch.checkpoints:
            self.checkpoints.setdefault((cp["board"], cp["version"]), cp["state"])
        for doc in batch.boards:
            old = self.boards.get(doc["_id"])
            if old is None or old["version"] < doc["version"]:
                self.boards[doc["_id"]] = doc


def updates_for(board: str, n: int) -> list[bytes]:
    doc: Doc[Any] = Doc()
    out: list[bytes] = []
    doc.observe(lambda e: out.append(bytes(e.update)))
    shapes = doc.get("shapes", type=Map)
    for i in range(n):
        shapes[f"{board}-s{i}"] = Map({"type": "rect", "x": float(i), "y": 0.0, "z": f"a{i:04d}"})
    return out


def records(boards: dict[str, list[bytes]], partition_of: dict[str, int]) -> list[Record]:
    """Interleave boards' updates into per-partition offset order."""
    offsets: dict[int, int] = {}
    out = []
    longest = max(len(u) for u in boards.values())
    for i in range(longest):
        for board, ups in boards.items():
            if i < len(ups):
                p = partition_of[board]
                off = offsets.get(p, 0)
                offsets[p] = off + 1
                headers = encode_headers(Provenance(1000.0 + i, f"c-{board}", "ann"))
                out.append(Record(p, off, encode_key(board), ups[i], headers, 999.0))
    return out


FAST = Backoff(base=0.001, cap=0.002)


async def test_fold_versions_archive_and_checkpoints() -> None:
    boards = {"a": updates_for("a", 7), "b": updates_for("b", 5)}
    sink = MemorySink()
    projector = Projector(sink, board_interval=0, checkpoint_every=3, backoff=FAST, retry_on=(ConnectionError,))
    recs = records(boards, {"a": 0, "b": 0})
    await projector.project(recs[:6])
    await projector.project(recs[6:])
    for board, ups in boards.items():
        doc = sink.boards[board]
        assert doc["version"] == len(ups)
        assert render(load_doc(doc["state"]), board, len(ups)) == render(load_doc(fold(None, ups)), board, len(ups))
        assert doc["content"] == render(load_doc(fold(None, ups)), board, len(ups))
        assert doc["shapes"] == len(ups)
        assert [sink.archive[(board, v)]["data"] for v in range(1, len(ups) + 1)] == ups
        assert sink.archive[(board, 1)]["user"] == "ann"
        assert sink.archive[(board, 2)]["time"] == 1001.0
    assert sorted(sink.checkpoints) == [("a", 3), ("a", 6), ("b", 3)]
    assert sink.checkpoints[("a", 3)] == fold(None, boards["a"][:3])


async def test_redelivery_changes_nothing_even_after_a_restart() -> None:
    boards = {"a": updates_for("a", 6)}
    recs = records(boards, {"a": 2})
    sink = MemorySink()
    await Projector(sink, board_interval=0, backoff=FAST).project(recs)
    snapshot = (dict(sink.boards), dict(sink.archive))
    await Projector(sink, board_interval=0, backoff=FAST).project(recs)  # a fresh process: reloads from the sink
    again = Projector(sink, board_interval=0, backoff=FAST)
    await again.project(recs[2:4])
    await again.project(recs)
    assert (sink.boards, sink.archive) == snapshot
    assert sink.boards["a"]["version"] == 6


async def test_partial_redelivery_continues_the_numbering() -> None:
    recs = records({"a": updates_for("a", 6)}, {"a": 1})
    sink = MemorySink()
    await Projector(sink, board_interval=0, backoff=FAST).project(recs[:4])
    await Projector(sink, board_interval=0, backoff=FAST).project(recs[2:])  # overlaps what MongoDB has
    assert sorted(v for _b, v in sink.archive) == [1, 2, 3, 4, 5, 6]
    assert sink.boards["a"]["offset"] == 5


async def test_a_failing_sink_is_retried_until_it_takes_the_batch() -> None:
    recs = records({"a": updates_for("a", 3)}, {"a": 0})
    sink = MemorySink()
    sink.fail_next = 4
    failures: list[int] = []

    class Stats:
        def batch_written(self, records: int, updates: int, seconds: float) -> None:
            pass

        def write_failed(self, exc: BaseException, attempt: int) -> None:
            failures.append(attempt)

        def record_rejected(self, reason: str) -> None:
            pass

    await Projector(sink, board_interval=0, backoff=FAST, retry_on=(ConnectionError,), stats=Stats()).project(recs)
    assert failures == [1, 2, 3, 4]
    assert sink.boards["a"]["version"] == 3


async def test_keyless_and_undecodable_records() -> None:
    ups = updates_for("a", 2)
    recs = [
        Record(0, 0, None, ups[0], [], 1.0),  # no key: not an update of any board
        Record(0, 1, b"a", ups[0], [], 1.0),
        Record(0, 2, b"a", b"\xff\xfe garbage", [], 2.0),  # counts as a version, folds as a no-op
        Record(0, 3, b"a", ups[1], [], 3.0),
    ]
    sink = MemorySink()
    await Projector(sink, board_interval=0, backoff=FAST).project(recs)
    assert sink.boards["a"]["version"] == 3
    assert sink.boards["a"]["shapes"] == 2
    assert sink.archive[("a", 1)]["time"] == 1.0  # no headers: falls back to the record time
    assert sink.archive[("a", 1)]["user"] == "anonymous"


def test_provenance_headers_round_trip() -> None:
    p = Provenance(1700000000.123456, "client-7", "Zoë")
    headers = encode_headers(p, {"traceparent": "00-abc-def-01"})
    assert decode_provenance(headers, fallback_time=0.0) == p
    assert ("traceparent", b"00-abc-def-01") in headers


@pytest.mark.parametrize("failures", [1, 3, 10, 100])
def test_backoff_is_jittered_and_capped(failures: int) -> None:
    policy = Backoff(base=0.1, cap=2.0)
    delays = [policy.delay(failures) for _ in range(200)]
    assert all(0 <= d <= min(2.0, 0.1 * 2 ** (failures - 1)) for d in delays)
    assert len(set(delays)) > 150  # jittered, not a fixed sleep


async def test_busy_boards_documents_are_written_on_a_cadence_and_reload_from_the_archive_tail() -> None:
    ups = updates_for("a", 9)
    recs = records({"a": ups}, {"a": 0})
    now = [100.0]
    sink = MemorySink()
    projector = Projector(sink, board_interval=5.0, backoff=FAST, clock=lambda: now[0])
    await projector.project(recs[:3])  # first sight of the board: written at once
    assert sink.boards["a"]["version"] == 3
    await projector.project(recs[3:6])  # within the interval: archive only
    assert sink.boards["a"]["version"] == 3 and len(sink.archive) == 6
    assert await projector.flush() == 0  # not due yet

    # A restart now: the document is at 3, the archive at 6 -> the reload folds the tail.
    restarted = Projector(sink, board_interval=5.0, backoff=FAST, clock=lambda: now[0])
    await restarted.project(recs[:7])  # redelivery from an earlier offset, then one new update
    assert sorted(v for _b, v in sink.archive) == list(range(1, 8))
    assert sink.boards["a"]["version"] == 7  # a freshly loaded board is written at once
    await restarted.project(recs[7:])
    assert sink.boards["a"]["version"] == 7
    now[0] += 6
    assert await restarted.flush() == 1  # quiet and due
    assert await restarted.flush() == 0
    assert sink.boards["a"]["version"] == 9
    assert sink.boards["a"]["state"] == fold(None, ups) or render(
        load_doc(sink.boards["a"]["state"]), "a", 9
    ) == render(load_doc(fold(None, ups)), "a", 9)


async def test_a_hole_in_the_archive_is_refilled_by_redelivery() -> None:
    ups = updates_for("a", 6)
    recs = records({"a": ups}, {"a": 0})
    sink = MemorySink()
    await Projector(sink, board_interval=0, backoff=FAST).project(recs[:2])
    # archive 3..6, the document stays at 2 (not due on this clock)
    await Projector(sink, board_interval=99, backoff=FAST, clock=lambda: 0.0).project(recs[2:])
    assert sink.boards["a"]["version"] == 2
    del sink.archive[("a", 4)]  # a bulk insert cut short
    again = Projector(sink, board_interval=0, backoff=FAST)
    await again.project(recs)
    assert sorted(v for _b, v in sink.archive) == [1, 2, 3, 4, 5, 6]
    assert sink.archive[("a", 4)]["data"] == ups[3]
    assert sink.boards["a"]["version"] == 6
