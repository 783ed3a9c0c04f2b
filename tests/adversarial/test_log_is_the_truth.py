# ruff: noqa: ASYNC210  (short blocking HTTP calls in async tests are deliberate)
"""README: "replaying the log always rebuilds exactly the live Doc"; updates are broadcast (and so visible)
only once the log has them. An update whose dependencies are missing must not be visible before it is
logged: otherwise GET/state/sync step 2 serve content that disappears on restart or idle unload."""

from __future__ import annotations

import httpx
from pycrdt import Doc, Map

from gateway import protocol
from tests.adversarial.conftest import OCTET, full_state, joined
from tests.conftest import InkstreamServer


def _orphan() -> tuple[bytes, bytes]:
    """(dependency, orphan): the orphan is client 15's clock-1 change, useless without its clock-0 change."""
    doc = Doc(client_id=15)
    doc.get("shapes", type=Map)["dep"] = Map({"type": "rect", "x": 2.0, "z": "b"})
    dependency = bytes(doc.get_update())
    before = doc.get_state()
    doc.get("shapes", type=Map)["ghost"] = Map({"type": "rect", "x": 3.0, "z": "c"})
    return dependency, bytes(doc.get_update(before))


def _real() -> bytes:
    doc = Doc(client_id=1001)
    doc.get("shapes", type=Map)["real"] = Map({"type": "rect", "x": 1.0, "z": "a"})
    return bytes(doc.get_update())


def _views(server: InkstreamServer, board: str) -> tuple[list[str], set[str], str]:
    body = httpx.get(f"{server.url}/api/boards/{board}", timeout=10).json()
    r = httpx.get(f"{server.url}/api/boards/{board}/state", timeout=10)
    doc = Doc()
    doc.apply_update(r.content)
    return [s["id"] for s in body["shapes"]], set(doc.get("shapes", type=Map).keys()), r.headers["x-inkstream-version"]


def test_update_with_missing_dependencies_is_refused_and_never_served(inkstream_server: InkstreamServer) -> None:
    """An orphan (its clock predecessor is missing) would sit pending in the live Doc, visible to readers
    but absent from the log. It is refused with 409 before it touches the Doc, and nothing of it is served."""
    server = inkstream_server
    r = httpx.post(f"{server.url}/api/boards/orph/updates", content=_real(), headers=OCTET)
    assert r.json() == {"version": 1, "changed": True}
    _dependency, orphan = _orphan()
    r = httpx.post(f"{server.url}/api/boards/orph/updates", content=orphan, headers=OCTET)
    assert r.status_code == 409 and r.json()["error"] == "missing_dependencies", r.text
    live = _views(server, "orph")
    assert live == (["real"], {"real"}, "1")
    server.kill9()
    server.start()
    assert _views(server, "orph") == live


async def test_late_joiner_gets_only_what_the_log_has(inkstream_server: InkstreamServer) -> None:
    """Same through the WebSocket: the orphan is parked outside the Doc (an edit may race ahead of the sync
    step 2 carrying what it builds on), so a late joiner's step 2 holds only what the log has; when the
    dependency arrives on that connection, both are applied and logged."""
    server = inkstream_server
    url = f"{server.ws_url}/orph-ws"
    dependency, orphan = _orphan()
    async with joined(url) as writer:
        await writer.send(protocol.sync_update(_real()))
        await writer.send(protocol.sync_update(orphan))
        await writer.send(protocol.sync_step1(b"\x00"))  # its reply proves both updates were processed
        while True:
            message = protocol.decode(await writer.recv())
            if isinstance(message, protocol.SyncMessage) and message.step == protocol.SYNC_STEP2:
                break
        joiner_keys = set((await full_state(url)).get("shapes", type=Map).keys())
        assert joiner_keys == {"real"}, joiner_keys
        await writer.send(protocol.sync_update(dependency))
        await writer.send(protocol.sync_step1(b"\x00"))
        while True:
            message = protocol.decode(await writer.recv())
            if isinstance(message, protocol.SyncMessage) and message.step == protocol.SYNC_STEP2:
                break
    server.kill9()
    server.start()
    logged_keys = set((await full_state(url)).get("shapes", type=Map).keys())
    assert logged_keys == {"real", "dep", "ghost"}, logged_keys


def test_orphan_is_accepted_once_its_dependency_arrives(inkstream_server: InkstreamServer) -> None:
    """Re-sent after its dependency, the refused update is accepted; both survive a restart."""
    server = inkstream_server
    dependency, orphan = _orphan()
    assert httpx.post(f"{server.url}/api/boards/dep/updates", content=orphan, headers=OCTET).status_code == 409
    r = httpx.post(f"{server.url}/api/boards/dep/updates", content=dependency, headers=OCTET)
    assert r.json() == {"version": 1, "changed": True}
    r = httpx.post(f"{server.url}/api/boards/dep/updates", content=orphan, headers=OCTET)
    assert r.json() == {"version": 2, "changed": True}
    server.kill9()
    server.start()
    shapes, state_keys, version = _views(server, "dep")
    assert sorted(shapes) == ["dep", "ghost"] and state_keys == {"dep", "ghost"} and version == "2"


async def test_nothing_is_served_before_the_log_has_it(inkstream_server: InkstreamServer) -> None:
    """Hold SQLite's write lock (as a slow disk would make a commit slow), so an update is applied to the
    live Doc but not yet durable. Nobody may be shown it: a late joiner's sync step 2 and the HTTP reads
    wait for the log, and after kill -9 the update is (rightly) gone — it was never acknowledged."""
    import asyncio
    import sqlite3

    server = inkstream_server
    board = "inflight"
    url = f"{server.ws_url}/{board}"
    r = httpx.post(f"{server.url}/api/boards/{board}/updates", content=_real(), headers=OCTET)
    assert r.json()["version"] == 1
    blocker = sqlite3.connect(server.data_dir / "events.db", isolation_level=None, timeout=1)
    served: set[str] = set()
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the server's group commit now waits for us
        doc = Doc(client_id=31337)
        doc.get("shapes", type=Map)["not-yet-durable"] = Map({"type": "rect", "x": 5.0, "z": "d"})
        async with joined(url) as writer:
            await writer.send(protocol.sync_update(bytes(doc.get_update())))
            try:
                served |= set((await asyncio.wait_for(full_state(url), 1.5)).get("shapes", type=Map).keys())
            except TimeoutError:
                pass  # the joiner's step 2 waits for the log: right
            async with httpx.AsyncClient(timeout=1.5) as http:
                for path in ("", "/state"):
                    try:
                        r = await http.get(f"{server.url}/api/boards/{board}{path}")
                    except httpx.TimeoutException:
                        continue
                    if path:
                        state = Doc()
                        state.apply_update(r.content)
                        served |= set(state.get("shapes", type=Map).keys())
                    else:
                        served |= {s["id"] for s in r.json()["shapes"]}
            server.kill9()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    server.start()
    logged = set((await full_state(url)).get("shapes", type=Map).keys())
    assert logged == {"real"}
    assert served <= logged, f"clients were shown {served - logged}, which the log never had"


async def test_resent_update_is_not_acknowledged_before_it_is_durable(inkstream_server: InkstreamServer) -> None:
    """An offline client re-POSTs an update (say its first attempt timed out) while the first copy is still
    waiting for the group commit. Today the re-POST answers 200 {"changed": false} at once (LiveBoard.apply
    finds nothing new: the live Doc already has it), so the client drops it — and kill -9 loses it.
    A 200 must mean "in the log"."""
    import sqlite3

    server = inkstream_server
    board = "resend"
    url = f"{server.ws_url}/{board}"
    doc = Doc(client_id=4242)
    doc.get("shapes", type=Map)["offline-edit"] = Map({"type": "rect", "x": 5.0, "z": "d"})
    update = bytes(doc.get_update())
    blocker = sqlite3.connect(server.data_dir / "events.db", isolation_level=None, timeout=1)
    answered = None
    try:
        blocker.execute("BEGIN IMMEDIATE")
        async with joined(url) as first_attempt:
            await first_attempt.send(protocol.sync_update(update))
            async with httpx.AsyncClient(timeout=2) as http:
                try:
                    r = await http.post(f"{server.url}/api/boards/{board}/updates", content=update, headers=OCTET)
                    answered = (r.status_code, r.text)
                except httpx.TimeoutException:
                    answered = None  # still waiting for the log: fine
            server.kill9()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    server.start()
    logged = set((await full_state(url)).get("shapes", type=Map).keys())
    if answered is not None and answered[0] == 200:
        assert "offline-edit" in logged, f"POST answered {answered} but the update is not in the log"
