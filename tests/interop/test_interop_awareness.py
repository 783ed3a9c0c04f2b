"""Awareness (presence, cursors) between real JS clients: relayed, and removed when a client goes.

The y-websocket client sends "my state is null" itself on a clean `disconnect()`, so that case
alone does not prove the server does anything. The server must also remove the state of a
client whose socket closes without that message (a pycrdt client that just closes, a JS client
killed with SIGKILL), and tell the others within seconds, not after the 30 s awareness timeout.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from jsclient import JsClient
from pycrdt import Doc, create_sync_message
from support import Target, async_wait_until, wait_until
from websockets.asyncio.client import connect
from yws_client import YWebsocketClient

# Far below the 30 s outdated timeout of the awareness protocol: removal must come from the
# server noticing the closed socket.
REMOVAL_DEADLINE = 5.0


def users(client: JsClient) -> dict[int, str]:
    """client id -> user name of every awareness state `client` sees."""
    return {cid: s.get("user", {}).get("name") for cid, s in client.awareness().items() if s}


def test_awareness_relayed_updated_and_sent_to_late_joiners(target: Target, js_client) -> None:
    a, b = js_client("a"), js_client("b")
    ida = a.connect(target.ws_url, "aw", awareness={"user": {"name": "alice"}, "cursor": None})
    idb = b.connect(target.ws_url, "aw", awareness={"user": {"name": "bob"}, "cursor": None})
    wait_until(lambda: users(a) == {ida: "alice", idb: "bob"} and users(b) == users(a),
               timeout=10, what="both see both")

    a.call("setAwareness", state={"user": {"name": "alice"}, "cursor": {"x": 42, "y": 7}})
    wait_until(lambda: b.awareness()[ida].get("cursor") == {"x": 42, "y": 7}, timeout=10,
               what="cursor move relayed")

    c = js_client("c")
    idc = c.connect(target.ws_url, "aw", awareness={"user": {"name": "carol"}})
    wait_until(lambda: users(c) == {ida: "alice", idb: "bob", idc: "carol"}, timeout=10,
               what="late joiner receives existing presence")
    assert c.awareness()[ida]["cursor"] == {"x": 42, "y": 7}
    wait_until(lambda: idc in users(a) and idc in users(b), timeout=10, what="others see carol")


def test_awareness_cleared_on_clean_disconnect(target: Target, js_client) -> None:
    a, b = js_client("a"), js_client("b")
    ida = a.connect(target.ws_url, "aw-clean", awareness={"user": {"name": "alice"}})
    b.connect(target.ws_url, "aw-clean", awareness={"user": {"name": "bob"}})
    wait_until(lambda: ida in users(b), timeout=10, what="b sees a")
    a.call("destroy")
    wait_until(lambda: ida not in b.awareness(), timeout=REMOVAL_DEADLINE, what="a's presence removed")
    assert b.sizes()["connected"]


def test_awareness_cleared_when_a_client_process_is_killed(target: Target, js_client) -> None:
    a, b = js_client("a"), js_client("b")
    ida = a.connect(target.ws_url, "aw-kill", awareness={"user": {"name": "alice"}})
    idb = b.connect(target.ws_url, "aw-kill", awareness={"user": {"name": "bob"}})
    wait_until(lambda: users(b) == {ida: "alice", idb: "bob"}, timeout=10, what="b sees a")
    a.kill9()  # no close frame, no awareness message: only the server can tell b
    wait_until(lambda: ida not in b.awareness(), timeout=REMOVAL_DEADLINE,
               what="killed client's presence removed by the server")
    assert users(b) == {idb: "bob"}

    # A client joining afterwards must not be told about the dead one either.
    c = js_client("c")
    c.connect(target.ws_url, "aw-kill")
    wait_until(lambda: idb in c.awareness(), timeout=10, what="c sees b")
    assert ida not in c.awareness()


async def test_awareness_cleared_when_a_socket_closes_without_saying_goodbye(target: Target, js_client) -> None:
    b = js_client("b")
    idb = b.connect(target.ws_url, "aw-py", awareness={"user": {"name": "bob"}})
    py = YWebsocketClient(f"{target.ws_url}/aw-py")
    await py.start()
    await py.wait_synced()
    py.set_awareness({"user": {"name": "python"}})
    pyid = py.doc.client_id
    await async_wait_until(lambda: users(b).get(pyid) == "python", within=10, what="b sees python")
    await async_wait_until(lambda: py.awareness.states.get(idb, {}).get("user") == {"name": "bob"},
                           within=10, what="python sees b")
    await py.stop()  # a clean close frame, but no "state = null" awareness message
    await async_wait_until(lambda: pyid not in b.awareness(), within=REMOVAL_DEADLINE,
                           what="server removed the closed socket's presence")


async def test_idle_connection_hears_from_the_server_within_the_client_timeout(target: Target) -> None:
    """y-websocket drops a connection that is silent for 30 s: the server must say something first."""
    if target.http is None:
        pytest.skip("the reference server only sends WebSocket pings, which y-websocket does not see")
    async with connect(f"{target.ws_url}/idle", proxy=None) as ws:
        await ws.send(create_sync_message(Doc()))
        last = time.monotonic()
        quiet_for = 0.0
        async with asyncio.timeout(40):
            while time.monotonic() - last < 25:  # step 1 / step 2 first, then the idle period
                try:
                    async with asyncio.timeout(25 - (time.monotonic() - last)):
                        await ws.recv()
                    quiet_for = max(quiet_for, time.monotonic() - last)
                    if quiet_for > 1:  # an idle-time message, not the handshake
                        break
                    last = time.monotonic()
                except TimeoutError:
                    pytest.fail("the server sent nothing for 25 s on an idle connection")
        assert quiet_for < 25
