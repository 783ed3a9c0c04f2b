# ruff: noqa: ASYNC210  (short blocking HTTP calls in async tests are deliberate)
"""Lost updates: many writers on several boards, `kill -9` at random moments, restart, check every update
a client saw accepted (echoed to another client, or POST answered with a version) is there, through a new
WebSocket client, GET /api/boards/{id} and /state; versions stay dense 1..N; the loaded board equals the
fold of its whole log (checkpoints every 5 versions)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from pathlib import Path

import httpx
import websockets
from pycrdt import Doc, Map

from engine.fold import load_doc
from gateway import protocol
from tests.adversarial.conftest import OCTET, draw, full_state, joined
from tests.conftest import InkstreamServer

BOARDS = ["crash-a", "crash-b", "crash-c"]
WRITERS_PER_BOARD = 3


async def _observer(url: str, seen: set[str], ready: asyncio.Event) -> None:
    """Record every shape id broadcast to this client (broadcast = accepted)."""
    doc = Doc()
    shapes = doc.get("shapes", type=Map)
    with contextlib.suppress(websockets.ConnectionClosed, OSError, asyncio.CancelledError):
        async with joined(url) as ws:
            ready.set()
            async for raw in ws:
                message = protocol.decode(raw)
                if isinstance(message, protocol.SyncMessage) and message.step != protocol.SYNC_STEP1:
                    doc.apply_update(message.payload)
                    seen.update(shapes.keys())


async def _ws_writer(url: str, prefix: str, stop: asyncio.Event) -> None:
    doc = Doc()
    n = 0
    with contextlib.suppress(websockets.ConnectionClosed, OSError, asyncio.CancelledError):
        async with joined(url) as ws:
            while not stop.is_set():
                n += 1
                await ws.send(protocol.sync_update(draw(doc, f"{prefix}-{n}")))
                await asyncio.sleep(random.uniform(0, 0.004))  # pacing, not waiting


async def _http_writer(
    base: str, board: str, prefix: str, stop: asyncio.Event, accepted: set[str], versions: list[int]
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        n = 0
        while not stop.is_set():
            n += 1
            key = f"{prefix}-{n}"
            try:
                r = await http.post(f"/api/boards/{board}/updates", content=draw(Doc(), key), headers=OCTET)
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                accepted.add(key)
                versions.append(r.json()["version"])


def _same_state(a: Doc, b: Doc) -> bool:
    """Each doc holds everything the other holds (state vectors' byte order is not canonical)."""
    return bytes(a.get_update(b.get_state())) == b"\x00\x00" and bytes(b.get_update(a.get_state())) == b"\x00\x00"


def _log_versions(data_dir: Path) -> dict[str, list[int]]:
    with sqlite3.connect(data_dir / "events.db") as db:
        out: dict[str, list[int]] = {}
        for board, version in db.execute("SELECT board, version FROM events ORDER BY board, seq"):
            out.setdefault(board, []).append(version)
        return out


def _log_fold(data_dir: Path, board: str) -> Doc:
    with sqlite3.connect(data_dir / "events.db") as db:
        rows = db.execute("SELECT data FROM events WHERE board = ? ORDER BY version", (board,))
        updates = [bytes(d) for (d,) in rows]
    return load_doc(None, updates)


async def _run_cycle(server: InkstreamServer, cycle: int, accepted: dict[str, set[str]]) -> None:
    stop = asyncio.Event()
    tasks = []
    http_versions: list[int] = []
    for board in BOARDS:
        url = f"{server.ws_url}/{board}"
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(_observer(url, accepted[board], ready)))
        await asyncio.wait_for(ready.wait(), 10)
        for w in range(WRITERS_PER_BOARD):
            tasks.append(asyncio.create_task(_ws_writer(url, f"c{cycle}-ws{w}", stop)))
        tasks.append(
            asyncio.create_task(_http_writer(server.url, board, f"c{cycle}-http", stop, accepted[board], http_versions))
        )
    await asyncio.sleep(random.uniform(0.2, 0.7))  # let writes flow, then crash at an arbitrary moment
    server.kill9()
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)


async def test_kill9_under_concurrent_writers_loses_nothing_accepted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = InkstreamServer(data_dir=data_dir, env={"INKSTREAM_CHECKPOINT_EVERY": "5"})
    accepted: dict[str, set[str]] = {b: set() for b in BOARDS}
    try:
        for cycle in range(2):
            server.start()
            await _run_cycle(server, cycle, accepted)
        server.start()
        versions = _log_versions(data_dir)
        for board in BOARDS:
            assert accepted[board], f"nothing was accepted on {board}: the test did not exercise anything"
            assert versions[board] == list(range(1, len(versions[board]) + 1)), f"versions of {board} not dense"
            via_ws = set((await full_state(f"{server.ws_url}/{board}")).get("shapes", type=Map).keys())
            missing = accepted[board] - via_ws
            assert not missing, f"{board}: {len(missing)} accepted updates lost (WS): {sorted(missing)[:10]}"
            r = httpx.get(f"{server.url}/api/boards/{board}", timeout=10)
            assert r.status_code == 200
            body = r.json()
            assert body["version"] == len(versions[board])
            via_json = {s["id"] for s in body["shapes"]}
            assert not accepted[board] - via_json, f"{board}: accepted updates missing from GET"
            state = httpx.get(f"{server.url}/api/boards/{board}/state", timeout=10)
            assert state.headers["x-inkstream-version"] == str(len(versions[board]))
            doc = Doc()
            doc.apply_update(state.content)
            via_state = set(doc.get("shapes", type=Map).keys())
            assert not accepted[board] - via_state, f"{board}: accepted updates missing from /state"
            fold = _log_fold(data_dir, board)
            assert via_state == set(fold.get("shapes", type=Map).keys()) == via_ws == via_json
            assert _same_state(doc, fold), "loaded (checkpoint + tail) state != fold of the whole log"
    finally:
        server.stop()


async def test_idle_unload_racing_with_joins_and_writes(tmp_path: Path) -> None:
    """Boards unload after 0.2 s idle while clients keep joining, writing and leaving, with checkpoints every 5."""
    data_dir = tmp_path / "data"
    server = InkstreamServer(
        data_dir=data_dir, env={"INKSTREAM_IDLE_UNLOAD_SECONDS": "0.2", "INKSTREAM_CHECKPOINT_EVERY": "5"}
    )
    server.start()
    accepted: dict[str, set[str]] = {"idle-a": set(), "idle-b": set()}
    try:

        async def churn(board: str, worker: int) -> None:
            url = f"{server.ws_url}/{board}"
            rnd = random.Random(worker)
            for i in range(8):
                key = f"w{worker}-{i}"
                if rnd.random() < 0.3:
                    async with httpx.AsyncClient(timeout=10) as http:
                        r = await http.post(
                            f"{server.url}/api/boards/{board}/updates", content=draw(Doc(), key), headers=OCTET
                        )
                        assert r.status_code == 200, r.text
                        accepted[board].add(key)
                else:
                    async with joined(url) as writer, joined(url) as witness:
                        await writer.send(protocol.sync_update(draw(Doc(), key)))
                        doc = Doc()
                        while key not in doc.get("shapes", type=Map):
                            message = protocol.decode(await asyncio.wait_for(witness.recv(), 10))
                            if isinstance(message, protocol.SyncMessage) and message.step != protocol.SYNC_STEP1:
                                doc.apply_update(message.payload)
                        accepted[board].add(key)
                # idle long enough (sometimes) for the board to be unloaded before the next join
                await asyncio.sleep(rnd.choice([0, 0.05, 0.25, 0.3]))

        await asyncio.wait_for(asyncio.gather(*(churn(b, w) for b in accepted for w in range(4))), 45)

        def all_there() -> bool:
            for board, keys in accepted.items():
                r = httpx.get(f"{server.url}/api/boards/{board}", timeout=10)
                if {s["id"] for s in r.json()["shapes"]} != keys:
                    return False
            return True

        assert all_there()
        server.kill9()
        server.start()
        assert all_there()
        versions = _log_versions(data_dir)
        for board, keys in accepted.items():
            assert versions[board] == list(range(1, len(keys) + 1))
            state = httpx.get(f"{server.url}/api/boards/{board}/state", timeout=10).content
            doc = Doc()
            doc.apply_update(state)
            assert _same_state(doc, _log_fold(data_dir, board))
    finally:
        server.stop()
