"""The MongoDB projector against real Kafka and a real MongoDB-wire server, as a real process.

Each test has its own topic, database and consumer group. Faults: redelivery from the earliest
offset, MongoDB stopped while updates flow, kill -9 of the projector (also during an outage).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from projections.mongo_store import MongoProjectionStore
from tests.conftest import eventually, unique
from tests.integration.projector_kit import (
    ProjectorProcess,
    Writer,
    committed_offsets,
    converged,
    create_topic,
)
from tests.servers import ensure_servers, start_server, stop_server

pytestmark = pytest.mark.integration

CONVERGE_S = 90


@dataclass
class Rig:
    env: dict[str, str]
    bootstrap: str
    topic: str
    db: str
    group: str
    store: MongoProjectionStore
    tmp: Path

    def projector(self, group: str | None = None, name: str = "projector") -> ProjectorProcess:
        return ProjectorProcess(
            self.env, self.topic, self.db, group or self.group, self.tmp / f"{name}.log", checkpoint_every=10
        )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    env = ensure_servers("kafka", "mongo")
    bootstrap = env["INKSTREAM_KAFKA_BOOTSTRAP"]
    topic, db = unique("updates"), unique("proj")
    await create_topic(bootstrap, topic)
    store = MongoProjectionStore(env["INKSTREAM_MONGO_URL"], db, group=unique("group"), topic=topic)
    await store.start()
    try:
        yield Rig(env, bootstrap, topic, db, store.group, store, tmp_path)
    finally:
        await store.close()


async def test_mongo_equals_the_fold_of_the_log_and_redelivery_changes_nothing(rig: Rig) -> None:
    async with Writer(rig.bootstrap, rig.topic, boards=6, clients=3) as writer:
        await writer.send(300)
    projector = rig.projector()
    projector.start()
    try:
        expected = await converged(rig.store, rig.bootstrap, rig.topic, CONVERGE_S)
    finally:
        projector.stop()

    # checkpoints every 10 versions, each equal to the fold of that prefix of the log
    from engine.fold import fold

    board, updates = max(expected.items(), key=lambda kv: len(kv[1]))
    for version in range(10, len(updates) + 1, 10):
        checkpoint = await rig.store.latest(board, at_or_before=version)
        assert checkpoint is not None and checkpoint.version == version
        assert checkpoint.state == fold(None, updates[:version])

    before = {b: (s.version, s.updated) for b, s in (await rig.store.summaries()).items()}
    states = {b: await rig.store.latest(b) for b in before}
    # Redelivery of the whole topic: a new consumer group starts from the earliest offset.
    again = rig.projector(group=unique("regroup"), name="again")
    again.start()
    try:
        ends = {p: o for p, o in (await committed_offsets(rig.bootstrap, rig.group)).items()}
        assert sum(ends.values()) == 300, ends

        async def regroup_done() -> bool:
            return await committed_offsets(rig.bootstrap, again.group) == ends

        await eventually(regroup_done, CONVERGE_S, "the second group to consume the whole topic")
    finally:
        again.stop()
    assert {b: (s.version, s.updated) for b, s in (await rig.store.summaries()).items()} == before
    assert {b: await rig.store.latest(b) for b in before} == states
    await converged(rig.store, rig.bootstrap, rig.topic, 5)  # still exact: no duplicate archive rows
    from projections.mongo_models import UpdateRecord

    assert await UpdateRecord.get_pymongo_collection().count_documents({}) == 300


async def test_mongo_outage_makes_the_projector_lag_then_catch_up(rig: Rig) -> None:
    projector = rig.projector()
    projector.start()
    stop = asyncio.Event()
    try:
        async with Writer(rig.bootstrap, rig.topic, boards=10, clients=3) as writer:
            flowing = asyncio.create_task(writer.run(rate=200, stop=stop))

            async def some_projected() -> bool:
                return sum(s.version for s in (await rig.store.summaries()).values()) > 100

            await eventually(some_projected, CONVERGE_S, "the projector to start writing")
            await asyncio.to_thread(stop_server, "mongo")
            try:
                sent_at_outage = writer.sent
                await eventually(
                    lambda: "failed (attempt 3" in projector.log_text(),
                    CONVERGE_S,
                    "the projector to retry MongoDB writes",
                )
                await eventually(lambda: writer.sent > sent_at_outage + 300, 30, "more updates during the outage")
            finally:
                await asyncio.to_thread(start_server, "mongo")
            assert projector.proc is not None and projector.proc.poll() is None, "the projector must ride it out"
            await eventually(lambda: writer.sent > sent_at_outage + 600, 30, "updates after the outage")
            stop.set()
            await flowing
        await converged(rig.store, rig.bootstrap, rig.topic, CONVERGE_S)
    finally:
        stop.set()
        projector.stop()


async def test_kill9_mid_stream_and_during_an_outage_converges(rig: Rig) -> None:
    projector = rig.projector()
    projector.start()
    stop = asyncio.Event()
    try:
        async with Writer(rig.bootstrap, rig.topic, boards=8, clients=3, seed=7) as writer:
            flowing = asyncio.create_task(writer.run(rate=300, stop=stop))
            for round_ in range(2):  # kill -9 while writing, twice
                target = 150 * (round_ + 1)

                async def progressed(target: int = target) -> bool:
                    return sum(s.version for s in (await rig.store.summaries()).values()) > target

                await eventually(progressed, CONVERGE_S, f"{target} updates projected")
                projector.kill9()
                projector.start()

            # kill -9 while MongoDB is down: the group must not have committed past what MongoDB has
            await eventually(lambda: "Worker]: Ready" in projector.log_text(), CONVERGE_S, "the projector")
            await asyncio.to_thread(stop_server, "mongo")
            try:
                await eventually(
                    lambda: "failed (attempt 2" in projector.log_text(),
                    CONVERGE_S,
                    "the projector to retry MongoDB writes",
                )
                projector.kill9()
            finally:
                await asyncio.to_thread(start_server, "mongo")
            committed = await committed_offsets(rig.bootstrap, rig.group)
            # Wait for MongoDB to answer, not for a cursor: a projector killed before its first batch
            # landed has stored none (and then committed none either).
            (in_mongo,) = await eventually(lambda: _answered(rig.store.cursors()), 30, "MongoDB cursors")
            assert all(off <= in_mongo.get(p, 0) for p, off in committed.items()), (committed, in_mongo)
            projector.start()
            await eventually(lambda: writer.sent > 1200, 60, "more updates")
            stop.set()
            await flowing
        await converged(rig.store, rig.bootstrap, rig.topic, CONVERGE_S)
    finally:
        stop.set()
        projector.stop()


async def _answered(query: Any) -> tuple[Any]:
    """The query's answer in a 1-tuple: truthy even when the answer is empty (for `eventually`)."""
    return (await query,)
