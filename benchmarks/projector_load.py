"""Projector lag and throughput against real Kafka and a real MongoDB-wire server.

    python -m benchmarks.projector_load [--seconds 30] [--rate 1000] [--drain 30000]

Steady phase: 20 boards x 5 clients writing 1,000 updates/s in total (10 per client per second) into
the topic while `inkstream projector` runs; every 0.5 s it samples the projector's lag from the
MongoDB cursors (records behind the topic's end, and the age of the oldest record not yet in
MongoDB). Drain phase: `--drain` updates are written with the projector stopped, then it starts and
the benchmark times how fast it empties the backlog into MongoDB (updates/s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from projections.mongo_store import MongoProjectionStore
from tests.conftest import eventually, unique
from tests.integration.projector_kit import (
    ProjectorProcess,
    Writer,
    converged,
    create_topic,
    end_offsets,
)
from tests.servers import ensure_servers


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def main(seconds: float, rate: float, drain: int, boards: int, clients: int, board_interval: float) -> None:
    env = ensure_servers("kafka", "mongo")
    bootstrap = env["INKSTREAM_KAFKA_BOOTSTRAP"]
    topic, db, group = unique("bench"), unique("bench"), unique("bench-group")
    await create_topic(bootstrap, topic)
    store = MongoProjectionStore(env["INKSTREAM_MONGO_URL"], db, group=group, topic=topic)
    await store.start()
    tmp = Path(tempfile.mkdtemp(prefix="projector-bench-"))
    projector = ProjectorProcess(
        env, topic, db, group, tmp / "projector.log", checkpoint_every=1000, board_interval=board_interval
    )
    projector.start()
    try:
        async with Writer(bootstrap, topic, boards=boards, clients=clients) as writer:
            await writer.send(boards)  # one update per board, so the worker has joined before timing starts
            await eventually(lambda: _in_mongo(store, boards), 90, "projector to start writing")

            stop = asyncio.Event()
            flowing = asyncio.create_task(writer.run(rate=rate, stop=stop))
            lag_records: list[float] = []
            lag_seconds: list[float] = []
            started = time.monotonic()
            first_total = sum((await store.cursors()).values())
            while time.monotonic() - started < seconds:
                await asyncio.sleep(0.5)  # the sampling period
                cursors = await store.cursors()
                now = time.time()
                ends = await end_offsets(bootstrap, topic)
                behind = sum(max(0, ends[p] - cursors.get(p, 0)) for p in ends)
                oldest = [
                    writer.produced_at[(p, cursors.get(p, 0))]
                    for p in ends
                    if ends[p] > cursors.get(p, 0) and (p, cursors.get(p, 0)) in writer.produced_at
                ]
                lag_records.append(behind)
                lag_seconds.append(max((now - t for t in oldest), default=0.0))
            elapsed = time.monotonic() - started
            stop.set()
            await flowing
            in_mongo = sum((await store.cursors()).values()) - first_total
            stop_at = time.monotonic()
            await converged(store, bootstrap, topic, 300)
            catch_up = time.monotonic() - stop_at
            print(f"steady: {writer.sent} updates written at {rate:.0f}/s target ({boards} boards x {clients} clients)")
            print(f"  into MongoDB during the window: {in_mongo / elapsed:.0f} updates/s")
            print(
                f"  lag records: p50 {statistics.median(lag_records):.0f}, p99 {pct(lag_records, 0.99):.0f}, "
                f"max {max(lag_records):.0f}"
            )
            print(
                f"  lag seconds (age of oldest update not in MongoDB): p50 {statistics.median(lag_seconds):.3f}, "
                f"p99 {pct(lag_seconds, 0.99):.3f}, max {max(lag_seconds):.3f}"
            )
            print(f"  caught up {catch_up:.2f}s after the load stopped; MongoDB equals the fold of the log")

            if drain:
                projector.stop()
                before = sum((await store.cursors()).values())
                sent_before = writer.sent
                while writer.sent - sent_before < drain:
                    await writer.send(min(2000, drain - (writer.sent - sent_before)))
                projector.start()
                await eventually(lambda: _cursor_moved(store, before), 90, "the projector to resume")
                t0 = time.monotonic()
                total = sum((await end_offsets(bootstrap, topic)).values())
                await eventually(lambda: _cursor_reached(store, total), 300, "the backlog to drain", interval=0.05)
                took = time.monotonic() - t0
                print(f"drain: {drain} backlogged updates into MongoDB in {took:.2f}s = {drain / took:.0f} updates/s")
                await converged(store, bootstrap, topic, 60)
    finally:
        projector.stop()
        await store.close()


async def _in_mongo(store: MongoProjectionStore, n: int) -> bool:
    return sum((await store.cursors()).values()) >= n


async def _cursor_moved(store: MongoProjectionStore, before: int) -> bool:
    return sum((await store.cursors()).values()) > before


async def _cursor_reached(store: MongoProjectionStore, total: int) -> bool:
    return sum((await store.cursors()).values()) >= total


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--drain", type=int, default=30000)
    parser.add_argument("--boards", type=int, default=20)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--board-interval", type=float, default=5.0)
    a = parser.parse_args()
    asyncio.run(main(a.seconds, a.rate, a.drain, a.boards, a.clients, a.board_interval))
