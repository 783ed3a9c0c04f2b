"""Real JavaScript Yjs clients (yjs + y-websocket on Node) against the server: sync behaviour."""

from __future__ import annotations

from support import Target, assert_server_matches, content, converged, doc_from_state, wait_until


def test_two_clients_converge_on_map_array_text(target: Target, js_client) -> None:
    a, b = js_client("a"), js_client("b")
    a.connect(target.ws_url, "converge")
    b.connect(target.ws_url, "converge")

    a.call("setShape", id="r1", fields={"type": "rect", "x": 10, "y": 20, "w": 100, "h": 50,
                                         "stroke": "#000", "fill": "#f00", "z": "a0",
                                         "createdBy": "alice", "createdAt": 1700000000000})
    b.call("setShape", id="e1", fields={"type": "ellipse", "x": 1.5, "y": -2, "w": 3, "h": 4})
    a.call("setMeta", key="title", value="Roadmap")
    # Concurrent edits of the same things from both sides.
    a.call("listInsert", index=0, items=["a1", "a2"])
    b.call("listInsert", index=0, items=["b1"])
    a.call("textInsert", index=0, text="Hello ")
    b.call("textInsert", index=0, text="World")
    a.call("kvSet", key="same", value="from-a")
    b.call("kvSet", key="same", value="from-b")

    state = wait_until(lambda: converged(a, b), timeout=15, what="two clients converge")
    assert state["shapes"]["r1"]["type"] == "rect" and state["shapes"]["r1"]["createdBy"] == "alice"
    assert state["shapes"]["e1"] == {"type": "ellipse", "x": 1.5, "y": -2, "w": 3, "h": 4}
    assert state["meta"] == {"title": "Roadmap"}
    assert sorted(state["list"]) == ["a1", "a2", "b1"]
    assert sorted(state["notes"]) == sorted("Hello World")
    assert state["kv"]["same"] in ("from-a", "from-b")

    # Updates and deletes of existing shapes propagate too.
    b.call("updateShape", id="r1", fields={"x": 11, "fill": "#0f0"})
    a.call("deleteShape", id="e1")
    a.call("textDelete", index=0, length=1)
    state = wait_until(lambda: (s := converged(a, b)) and "e1" not in s["shapes"]
                       and s["shapes"]["r1"]["x"] == 11 and len(s["notes"]) == 10 and s,
                       timeout=15, what="updates and deletes converge")
    wait_until(lambda: (assert_server_matches(target, "converge", state), True)[1], timeout=10,
               what="server state equals the clients'")


def test_late_joiner_gets_full_state_from_server(target: Target, js_client) -> None:
    a = js_client("a")
    a.connect(target.ws_url, "late")
    for i in range(50):
        a.call("setShape", id=f"s{i}", fields={"type": "sticky", "x": i, "y": 2 * i, "text": f"note {i}"})
    a.call("setMeta", key="title", value="Late joiners welcome")
    a.call("listInsert", items=list(range(20)))
    a.call("textInsert", index=0, text="the quick brown fox")
    expected = content(a.snapshot())
    # Make sure the server has it all (another client sees it), then take the writer away so
    # the late joiner can only get the state from the server.
    b = js_client("b")
    b.connect(target.ws_url, "late")
    wait_until(lambda: content(b.snapshot()) == expected, timeout=15, what="second client has all")
    a.call("destroy")
    b.call("destroy")

    c = js_client("late-joiner")
    c.connect(target.ws_url, "late")
    # Synced means step 2 was applied: the state must be complete right now, not eventually.
    assert content(c.snapshot()) == expected
    assert_server_matches(target, "late", expected)


def test_offline_edits_on_both_sides_merge_on_reconnect(target: Target, js_client) -> None:
    a, b = js_client("a"), js_client("b")
    a.connect(target.ws_url, "offline")
    b.connect(target.ws_url, "offline")
    a.call("setShape", id="base", fields={"type": "rect", "x": 0, "y": 0})
    a.call("textInsert", index=0, text="base")
    wait_until(lambda: converged(a, b), timeout=15, what="initial sync")

    a.call("disconnect")
    b.call("disconnect")
    a.call("updateShape", id="base", fields={"x": 10})
    a.call("setShape", id="only-a", fields={"type": "line", "points": [0, 0, 5, 5]})
    a.call("textInsert", index=4, text=" from a")
    a.call("setMeta", key="title", value="A's title")
    b.call("updateShape", id="base", fields={"y": 20})
    b.call("setShape", id="only-b", fields={"type": "arrow", "x": 3})
    b.call("listInsert", index=0, items=["b-offline"])
    b.call("setMeta", key="title", value="B's title")
    # While both are offline, nothing of theirs has reached the other.
    assert "only-b" not in a.snapshot()["shapes"] and "only-a" not in b.snapshot()["shapes"]

    a.call("reconnect")
    b.call("reconnect")
    state = wait_until(lambda: converged(a, b), timeout=15, what="offline edits merge")
    assert state["shapes"]["base"] == {"type": "rect", "x": 10, "y": 20}
    assert state["shapes"]["only-a"]["points"] == [0, 0, 5, 5]
    assert state["shapes"]["only-b"] == {"type": "arrow", "x": 3}
    assert state["list"] == ["b-offline"]
    assert state["notes"] == "base from a"
    assert state["meta"]["title"] in ("A's title", "B's title")
    wait_until(lambda: (assert_server_matches(target, "offline", state), True)[1], timeout=10,
               what="server holds the merged state")


def test_rooms_are_isolated(target: Target, js_client) -> None:
    a1, a2, b1 = js_client("a1"), js_client("a2"), js_client("b1")
    a1.connect(target.ws_url, "room-a", awareness={"user": "a1"})
    a2.connect(target.ws_url, "room-a", awareness={"user": "a2"})
    b1.connect(target.ws_url, "room-b", awareness={"user": "b1"})

    a1.call("setShape", id="in-a", fields={"type": "rect"})
    b1.call("setShape", id="in-b", fields={"type": "ellipse"})
    a1.call("textInsert", index=0, text="room a text")
    wait_until(lambda: content(a2.snapshot()) == content(a1.snapshot()), timeout=15,
               what="room-a peers converge")
    wait_until(lambda: len(a2.awareness()) == 2, timeout=10, what="room-a awareness")
    # A marker written to room-b after room-a's writes: once room-a's peer has room-a's marker
    # and room-b's own state is settled, nothing may have crossed over.
    a1.call("kvSet", key="marker", value="a")
    b1.call("kvSet", key="marker", value="b")
    wait_until(lambda: a2.snapshot()["kv"].get("marker") == "a", timeout=10, what="room-a marker")
    snap_a, snap_b = a2.snapshot(), b1.snapshot()
    assert set(snap_a["shapes"]) == {"in-a"} and snap_a["kv"] == {"marker": "a"}
    assert set(snap_b["shapes"]) == {"in-b"} and snap_b["notes"] == "" and snap_b["kv"] == {"marker": "b"}
    assert {s["user"] for s in a2.awareness().values()} == {"a1", "a2"}
    assert {s["user"] for s in b1.awareness().values()} == {"b1"}
    if target.http is not None:
        wait_until(lambda: [s["id"] for s in target.board_json("room-b")["shapes"]] == ["in-b"],
                   timeout=10, what="room-b JSON")
        assert [s["id"] for s in target.board_json("room-a")["shapes"]] == ["in-a"]


def test_burst_of_5000_updates_arrives_intact(target: Target, js_client) -> None:
    count = 5000
    a, b = js_client("writer"), js_client("reader")
    a.connect(target.ws_url, "burst")
    b.connect(target.ws_url, "burst")
    version_before = target.version("burst") if target.http else 0
    a.call("burst", count=count, prefix="k")  # 5,000 transactions = 5,000 update messages

    wait_until(lambda: b.sizes()["kv"] >= count, timeout=60, what=f"{count} updates at the reader")
    kv = b.snapshot()["kv"]
    assert kv == {f"k{i}": i for i in range(count)}
    # Neither side was disconnected on the way (no resync papered over a dropped update).
    assert a.sizes()["closes"] == [] and b.sizes()["closes"] == []
    if target.http is not None:
        wait_until(lambda: target.version("burst") - version_before >= count, timeout=30,
                   what="server version counts every update")
        assert doc_from_state(target.board_state("burst"))["kv"] == kv
