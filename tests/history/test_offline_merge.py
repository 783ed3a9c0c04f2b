"""Offline merge through a real server: diverged pycrdt replicas converge, re-sending changes nothing.

Replicas go "offline" by editing without talking to the server; they come back either with
POST /api/boards/{id}/updates (what scripts do) or through the y-websocket sync protocol (what
the web app does). The server logs only effective deltas, so a re-sent update is no new version.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from pycrdt import Doc

from tests.conftest import InkstreamServer
from tests.history.support import add_shape, move, post, replica, server_state, shapes, view, ws_sync


@pytest.fixture
def client(inkstream_server: InkstreamServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=inkstream_server.url, timeout=60) as c:
        yield c


def online_base(client: httpx.Client, board: str, count: int = 3) -> None:
    seed = replica()
    for i in range(count):
        add_shape(seed, f"s{i}", x=float(i), z=f"a{i}")
    post(client, board, bytes(seed.get_update()))


def offline_delta(doc: Doc, server: bytes) -> bytes:
    """What a reconnecting replica sends: everything the server (at `server`) does not have."""
    return bytes(doc.get_update(replica(server).get_state()))


def converge(client: httpx.Client, board: str, *replicas: Doc) -> dict:
    """Bring every replica up to the server state; return the common view."""
    state = server_state(client, board)
    server_view = view(replica(state))
    for doc in replicas:
        doc.apply_update(state)
        assert view(doc) == server_view
    return server_view


def resend_changes_nothing(client: httpx.Client, board: str, *updates: bytes) -> None:
    before = client.get(f"/api/boards/{board}").json()["version"]
    for update in updates:
        body = post(client, board, update)
        assert body == {"version": before, "changed": False}
    assert client.get(f"/api/boards/{board}").json()["version"] == before


def test_concurrent_moves_of_one_shape_converge(client: httpx.Client) -> None:
    online_base(client, "m")
    base = server_state(client, "m")
    a, b = replica(base), replica(base)
    move(a, "s1", 100, 100)
    move(b, "s1", 200, 200)
    ua, ub = offline_delta(a, base), offline_delta(b, base)
    post(client, "m", ua)
    post(client, "m", ub)
    common = converge(client, "m", a, b)
    s1 = next(s for s in common["shapes"] if s["id"] == "s1")
    assert (s1["x"], s1["y"]) in ((100.0, 100.0), (200.0, 200.0))  # one writer wins both fields, per Yjs
    resend_changes_nothing(client, "m", ua, ub)


def test_delete_wins_over_a_concurrent_move(client: httpx.Client) -> None:
    online_base(client, "d")
    base = server_state(client, "d")
    a, b = replica(base), replica(base)
    with a.transaction():
        del shapes(a)["s1"]
    move(b, "s1", 50, 50)
    ub, ua = offline_delta(b, base), offline_delta(a, base)
    post(client, "d", ub)  # the move arrives first, the delete second: still deleted
    post(client, "d", ua)
    common = converge(client, "d", a, b)
    assert "s1" not in {s["id"] for s in common["shapes"]}
    resend_changes_nothing(client, "d", ua, ub)


def test_created_and_deleted_offline_stays_deleted(client: httpx.Client) -> None:
    online_base(client, "c")
    base = server_state(client, "c")
    a, b = replica(base), replica(base)
    add_shape(a, "ghost", z="b0")
    move(a, "ghost", 5, 5)
    with a.transaction():
        del shapes(a)["ghost"]
    move(b, "s0", 9, 9)
    ua, ub = offline_delta(a, base), offline_delta(b, base)
    post(client, "c", ua)
    post(client, "c", ub)
    common = converge(client, "c", a, b)
    assert "ghost" not in {s["id"] for s in common["shapes"]}
    resend_changes_nothing(client, "c", ua, ub)
    assert "ghost" not in {s["id"] for s in client.get("/api/boards/c").json()["shapes"]}


def _long_session(doc: Doc, rng: random.Random, prefix: str, edits: int) -> None:
    mine: list[str] = []
    for i in range(edits):
        roll = rng.random()
        ids = [str(k) for k in shapes(doc).keys()]
        if roll < 0.2 or not ids:
            sid = f"{prefix}{i}"
            add_shape(doc, sid, x=rng.random() * 100, z=f"c{i}")
            mine.append(sid)
        elif roll < 0.3 and mine:
            with doc.transaction():
                shapes(doc).pop(mine.pop(rng.randrange(len(mine))), None)
        elif roll < 0.35:
            with doc.transaction():
                shapes(doc).pop(ids[rng.randrange(len(ids))], None)
        else:
            sid = ids[rng.randrange(len(ids))]
            move(doc, sid, rng.random() * 100, rng.random() * 100)


async def test_long_offline_sessions_converge_over_http_and_websocket(inkstream_server: InkstreamServer) -> None:
    board = "long"
    with httpx.Client(base_url=inkstream_server.url, timeout=60) as client:
        online_base(client, board, count=50)
        base = server_state(client, board)
        a, b, c = replica(base), replica(base), replica(base)
        rng = random.Random(5)
        _long_session(a, rng, "a", 3000)
        _long_session(b, rng, "b", 3000)
        _long_session(c, rng, "c", 3000)
        ua = offline_delta(a, base)
        post(client, board, ua)  # a script merges its edits over HTTP
    await ws_sync(inkstream_server.ws_url, board, b)  # the web app reconnects over the sync protocol
    await ws_sync(inkstream_server.ws_url, board, c)
    await ws_sync(inkstream_server.ws_url, board, b)  # b picks up c's edits
    with httpx.Client(base_url=inkstream_server.url, timeout=60) as client:
        common = converge(client, board, a, b, c)
        assert len(common["shapes"]) > 50
        assert view(b) == view(c) == common
        version = client.get(f"/api/boards/{board}").json()["version"]
        resend_changes_nothing(client, board, ua, offline_delta(b, base), offline_delta(c, base))
    # reconnecting again sends nothing new either
    await ws_sync(inkstream_server.ws_url, board, c)
    with httpx.Client(base_url=inkstream_server.url, timeout=60) as client:
        assert client.get(f"/api/boards/{board}").json()["version"] == version
