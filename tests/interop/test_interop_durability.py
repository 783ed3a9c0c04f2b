"""Durability: what real JS clients saw accepted survives `kill -9` of the server.

"Accepted" is observable from outside: the server broadcasts an update only after the log has it,
so every update a second client (the witness) has received was accepted. After the kill, the
writer and the witness are killed too before the server restarts: otherwise their reconnect
(sync step 2 with everything they hold) would quietly put lost updates back.
"""

from __future__ import annotations

import pytest
from support import Target, content, converged, doc_from_state, wait_until


def _check_everything_is_back(target: Target, js_client, board: str, expected: dict) -> None:
    # Through a new real client...
    c = js_client("after-restart")
    c.connect(target.ws_url, board, timeout=30)
    got = content(c.snapshot())
    for key in ("shapes", "meta", "notes", "list"):
        assert got[key] == expected[key], key
    missing = set(expected["kv"]) - set(got["kv"])
    assert not missing, f"{len(missing)} accepted updates lost, e.g. {sorted(missing)[:5]}"
    # ...and through the HTTP API (the JSON rendering and the raw state).
    rendered = target.board_json(board)
    assert rendered["meta"] == expected["meta"]
    by_id = {s["id"]: {k: v for k, v in s.items() if k != "id"} for s in rendered["shapes"]}
    assert by_id == expected["shapes"]
    state = doc_from_state(target.board_state(board))
    assert not set(expected["kv"]) - set(state["kv"])
    assert state["notes"] == expected["notes"]


def test_updates_seen_by_a_witness_survive_kill_9(target: Target, js_client) -> None:
    if target.server is None:
        pytest.skip("needs inkstream serve")
    board = "durable"
    writer, witness = js_client("writer"), js_client("witness")
    writer.connect(target.ws_url, board, params={"user": "alice"})
    witness.connect(target.ws_url, board, params={"user": "bob"})
    for i in range(200):
        writer.call("setShape", id=f"shape-{i}", fields={
            "type": "rect", "x": i, "y": i * 2, "w": 10, "h": 10, "stroke": "#123456",
            "z": f"a{i:04d}", "createdBy": "alice", "createdAt": 1764700000000 + i})
    writer.call("setMeta", key="title", value="Survives kill -9")
    writer.call("textInsert", index=0, text="durable text")
    writer.call("listInsert", items=["x", "y"])
    writer.call("kvSet", key="last", value=True)
    expected = content(writer.snapshot())
    # Kill the server the moment the witness has it all: no grace period for a flush.
    wait_until(lambda: content(witness.snapshot()) == expected, timeout=30, what="witness has everything")
    target.server.kill9()
    writer.kill9()
    witness.kill9()

    target.server.start()
    _check_everything_is_back(target, js_client, board, expected)
    assert target.version(board) >= 204


def test_kill_9_in_the_middle_of_a_burst_loses_nothing_accepted(target: Target, js_client) -> None:
    if target.server is None:
        pytest.skip("needs inkstream serve")
    board = "durable-burst"
    writer, witness = js_client("writer"), js_client("witness")
    writer.connect(target.ws_url, board)
    witness.connect(target.ws_url, board)
    writer.call("burst", count=20000, prefix="k")  # queued on the socket; the server works through it
    wait_until(lambda: witness.sizes()["kv"] >= 2000, timeout=30, what="burst under way")
    target.server.kill9()
    # The server is dead: the witness cannot receive anything more, so this is the accepted set.
    seen = witness.snapshot()
    writer.kill9()
    witness.kill9()
    assert 2000 <= len(seen["kv"]) < 20000, "kill the server while the burst is still running"

    target.server.start()
    _check_everything_is_back(target, js_client, board, content(seen))


def test_clients_ride_through_a_server_crash(target: Target, js_client) -> None:
    """kill -9 with clients connected: they reconnect by themselves, and offline edits merge."""
    if target.server is None:
        pytest.skip("needs inkstream serve")
    board = "crash-ride"
    a, b = js_client("a"), js_client("b")
    a.connect(target.ws_url, board)
    b.connect(target.ws_url, board)
    a.call("setShape", id="before-crash", fields={"type": "rect"})
    wait_until(lambda: "before-crash" in b.snapshot()["shapes"], timeout=10, what="b sees a's shape")
    target.server.kill9()
    wait_until(lambda: not a.sizes()["connected"] and not b.sizes()["connected"], timeout=10,
               what="clients notice the crash")
    a.call("setShape", id="during-outage", fields={"type": "ellipse"})  # made while the server is down
    target.server.start()
    # y-websocket retries with backoff (at most 2.5 s apart by default).
    wait_until(lambda: a.sizes()["synced"] and b.sizes()["synced"], timeout=20, what="both resynced")
    wait_until(lambda: "during-outage" in b.snapshot()["shapes"], timeout=10, what="outage edit merged")
    b.call("setShape", id="after-restart", fields={"type": "line"})
    state = wait_until(lambda: (s := converged(a, b)) and "after-restart" in s["shapes"] and s,
                       timeout=10, what="live again")
    assert set(state["shapes"]) == {"before-crash", "during-outage", "after-restart"}
    wait_until(lambda: {s["id"] for s in target.board_json(board)["shapes"]} == set(state["shapes"]),
               timeout=10, what="server logged all three")
