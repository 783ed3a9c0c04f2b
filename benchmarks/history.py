"""History benchmark: state at any version of a board with 1,000,000 updates, version paging, restore.

Builds a data dir directly through the SQLite event log and the local projector (no server),
then measures with the same code the HTTP API runs (projections.history):

- the board at a random version as JSON (plain checkpoint + recorded changes) and as Yjs
  (Yjs checkpoint + the log), p50/p99;
- a page of 100 versions at random offsets (ascending and newest-first), p50/p99;
- restore of a 10,000-shape board to an earlier version (compute + append one update).

    python benchmarks/history.py [--updates 1000000] [--shapes 2000] [--samples 200] [--data-dir DIR]

Workload: one writer session per 10,000 updates (a new Yjs client id each time, so the log holds
many clients), each update one user action: 85-90 % move a shape (x, y), 10 % add a shape and 5 % delete
one until the board has --shapes shapes, then 5 % add and 5 % delete (it stays around that size).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map

from engine.adapters.sqlite_log import SqliteEventLog
from engine.events import Provenance
from engine.fold import load_doc
from engine.service import BoardService
from projections.history import BoardHistory, restore
from projections.local_projector import LocalProjector
from projections.sqlite_archive import SqliteArchive
from projections.sqlite_store import SqliteProjectionStore


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fmt(samples: list[float]) -> str:
    if not samples:
        return "skipped"
    return f"p50 {pct(samples, 0.5) * 1000:.1f} ms, p99 {pct(samples, 0.99) * 1000:.1f} ms (n={len(samples)})"


class Writer:
    """A user session editing the board: a pycrdt Doc whose transactions become log updates."""

    def __init__(self, state: bytes | None, rng: random.Random, target: int = 2000) -> None:
        self.target = target  # live shapes the board hovers around once reached
        self.doc: Doc[Any] = load_doc(state)
        self.shapes: Map[Any] = self.doc.get("shapes", type=Map)
        self.rng = rng
        self.updates: list[bytes] = []
        # The subscription holds a Python callback from Rust: unobserve in close() or the Doc leaks.
        self._sub = self.doc.observe(lambda e: self.updates.append(bytes(e.update)))
        self.ids = list(self.shapes.keys())
        self.next_id = 0

    def add(self) -> None:
        self.next_id += 1
        sid = f"{self.doc.client_id:x}-{self.next_id}"
        with self.doc.transaction():
            self.shapes[sid] = Map(
                {
                    "type": "rect",
                    "x": self.rng.random() * 1000,
                    "y": self.rng.random() * 1000,
                    "w": 50.0,
                    "h": 40.0,
                    "stroke": "#1e1e2e",
                    "fill": "transparent",
                    "width": 2.0,
                    "opacity": 1.0,
                    "z": f"a{self.next_id}",
                }
            )
        self.ids.append(sid)

    def step(self) -> None:
        roll = self.rng.random()
        growing = len(self.ids) < self.target
        if roll < (0.10 if growing else 0.05) or len(self.ids) < 50:
            self.add()
        elif roll < 0.15 if growing else roll < 0.10:
            sid = self.ids.pop(self.rng.randrange(len(self.ids)))
            with self.doc.transaction():
                del self.shapes[sid]
        else:
            shape = self.shapes[self.ids[self.rng.randrange(len(self.ids))]]
            with self.doc.transaction():
                shape["x"] = self.rng.random() * 1000
                shape["y"] = self.rng.random() * 1000

    def close(self) -> None:
        self.doc.unobserve(self._sub)

    def take(self) -> list[bytes]:
        out, self.updates = self.updates, []
        return out


async def append_all(log: SqliteEventLog, board: str, updates: list[bytes], user: str) -> None:
    now = time.time()
    prov = Provenance(now, user, user)
    for start in range(0, len(updates), 2000):
        await asyncio.gather(*(log.append(board, u, prov) for u in updates[start : start + 2000]))


async def build(log: SqliteEventLog, board: str, total: int, shapes: int, seed: int) -> None:
    rng = random.Random(seed)
    state: bytes | None = None
    written = 0
    started = time.perf_counter()
    while written < total:
        writer = Writer(state, rng, target=shapes)
        session = min(10_000, total - written)
        while len(writer.ids) < shapes and session > 0 and written == 0:
            writer.add()
            session -= 1
        for _ in range(session):
            writer.step()
        batch = writer.take()
        await append_all(log, board, batch, f"user{written // 10_000 % 7}")
        written += len(batch)
        state = bytes(writer.doc.get_update())
        writer.close()
        if written % 100_000 < 10_000:
            print(f"  wrote {written:,} updates ({time.perf_counter() - started:.0f} s)", flush=True)


async def project(log: SqliteEventLog, store: SqliteProjectionStore, every: int) -> float:
    projector = LocalProjector(log, store, checkpoint_every=every, batch=5000)
    projector.cursor = await store.cursor("local-projector")
    projector._rewind = False  # driving step() directly, without the background task
    started = time.perf_counter()
    while not await projector.step():
        pass
    took = time.perf_counter() - started
    projector.quiet_seconds = 0  # as a server does 2 s after the last write: quiet checkpoints
    await projector.step()
    return took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--shapes", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--yjs-samples", type=int, default=30)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--restore-shapes", type=int, default=10_000)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--restore-only", action="store_true", help="skip the state and paging measurements")
    args = parser.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="inkstream-history-bench-"))
    print(f"data dir {data}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    log = SqliteEventLog(data / "events.db")
    store = SqliteProjectionStore(data / "projections.db")
    await log.start()
    await store.start()
    board = "big"
    if await log.head(board) < args.updates:
        t = time.perf_counter()
        await build(log, board, args.updates, args.shapes, seed=1)
        print(f"built {args.updates:,} updates in {time.perf_counter() - t:.0f} s")
    t = await project(log, store, args.checkpoint_every)
    head = await log.head(board)
    print(f"projected in {t:.0f} s ({head / max(t, 1e-9):,.0f} versions/s)")
    archive = SqliteArchive(log, store)
    history = BoardHistory(archive)
    ck = await store.query("SELECT count(*), max(length(state)) FROM checkpoints WHERE board = ?", (board,))
    pk = await store.query("SELECT count(*), max(length(plain)) FROM plain_checkpoints WHERE board = ?", (board,))
    latest = await history.render_at(board, head)
    print(
        f"board: {head:,} versions, {len(latest['shapes']):,} shapes; "
        f"{ck[0][0]} Yjs checkpoints (largest {ck[0][1] / 1e6:.1f} MB), "
        f"{pk[0][0]} plain checkpoints (largest {pk[0][1] / 1e6:.2f} MB)"
    )
    plans = await archive.explain()
    print("query plans:", json.dumps({k: v for k, v in plans.items()}, indent=None))

    rng = random.Random(7)
    samples = []
    for _ in range(0 if args.restore_only else args.samples):
        v = rng.randint(1, head)
        t = time.perf_counter()
        await history.render_at(board, v)
        samples.append(time.perf_counter() - t)
    print(f"board at a random version (JSON, GET ?version=V): {fmt(samples)}")
    samples = []
    for _ in range(0 if args.restore_only else args.yjs_samples):
        v = rng.randint(1, head)
        t = time.perf_counter()
        await history.state_at(board, v)
        samples.append(time.perf_counter() - t)
    print(f"board at a random version (Yjs state, GET /state?version=V): {fmt(samples)}")
    for name, kwargs in () if args.restore_only else (("ascending", "after"), ("newest first", "before")):
        samples = []
        for _ in range(args.samples):
            v = rng.randint(1, head)
            t = time.perf_counter()
            page = await history.versions(board, **{kwargs: v}, limit=100)  # type: ignore[arg-type]
            samples.append(time.perf_counter() - t)
            assert page
        print(f"a page of 100 versions ({name}, random offset): {fmt(samples)}")

    # -- restore of a 10k-shape board ------------------------------------------------------------
    service = BoardService(log, store)
    rb = f"restore-{int(time.time())}"
    writer = Writer(None, random.Random(3))
    for _ in range(args.restore_shapes):
        writer.add()
    await append_all(log, rb, writer.take(), "builder")
    full = await log.head(rb)
    ids = list(writer.ids)
    random.Random(4).shuffle(ids)
    for sid in ids[: args.restore_shapes // 2]:  # delete half, move the rest
        with writer.doc.transaction():
            del writer.shapes[sid]
    for sid in ids[args.restore_shapes // 2 :]:
        with writer.doc.transaction():
            writer.shapes[sid]["x"] = 0.0
    for _ in range(500):
        writer.add()
    await append_all(log, rb, writer.take(), "builder")
    await project(log, store, args.checkpoint_every)
    t = time.perf_counter()
    await service.open(rb)  # loading the live board (from its quiet checkpoint), as the first viewer would
    opened = time.perf_counter() - t
    t = time.perf_counter()
    event = await restore(service, history, rb, full, "bench")
    took = time.perf_counter() - t
    assert event is not None
    restored = await history.render_at(rb, full)
    now = (await service.open(rb)).doc
    from engine.model import render

    assert render(now, rb, full)["shapes"] == restored["shapes"]
    print(
        f"restore of a {args.restore_shapes:,}-shape board ({args.restore_shapes // 2:,} recreated, "
        f"{args.restore_shapes - args.restore_shapes // 2:,} moved back, 500 deleted): "
        f"{took * 1000:.0f} ms on the open board (+{opened * 1000:.0f} ms to open it cold), "
        f"one update of {len(event.update) / 1e6:.2f} MB"
    )
    await service.close()
    await log.close()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
