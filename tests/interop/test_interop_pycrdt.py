"""A pycrdt (Python, Rust core) y-websocket client interoperates with JS clients through the server."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text
from support import Target, async_wait_until, content, doc_from_state, wait_until
from yws_client import YWebsocketClient


def py_content(client: YWebsocketClient) -> dict[str, Any]:
    """The pycrdt client's document in the JS snapshot's JSON shape."""
    return doc_from_state(client.doc.get_update())


def same_numbers(x: Any) -> Any:
    """pycrdt returns every number as a float; normalise so 3 == 3.0 compares structurally."""
    if isinstance(x, dict):
        return {k: same_numbers(v) for k, v in x.items()}
    if isinstance(x, list):
        return [same_numbers(v) for v in x]
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


async def test_pycrdt_client_and_js_clients_interoperate(target: Target, js_client) -> None:
    js = js_client("js")
    js.connect(target.ws_url, "py-interop")
    js.call("setShape", id="from-js", fields={"type": "rect", "x": 1, "y": 2, "fill": "#abc"})
    js.call("textInsert", index=0, text="js says hi")

    async with YWebsocketClient(f"{target.ws_url}/py-interop") as py:
        await py.wait_synced()
        # Whatever the server had before step 2 is in the pycrdt doc now.
        await async_wait_until(lambda: "from-js" in py_content(py)["shapes"], within=10,
                               what="python receives JS state")
        assert same_numbers(py_content(py)["shapes"]["from-js"]) == {"type": "rect", "x": 1, "y": 2,
                                                                      "fill": "#abc"}

        shapes = py.doc.get("shapes", type=Map)
        with py.doc.transaction():
            shapes["from-py"] = Map({"type": "ellipse", "x": 5.5, "y": 6.0, "createdBy": "python"})
        py.doc.get("meta", type=Map)["title"] = "written by pycrdt"
        py.doc.get("list", type=Array).append("py-item")
        py.doc.get("notes", type=Text).insert(0, ">> ")
        # Concurrent conflicting write on the same key from both sides.
        py.doc.get("kv", type=Map)["who"] = "python"
        js.call("kvSet", key="who", value="javascript")

        def both_equal() -> bool:
            js_doc = content(js.snapshot())
            return same_numbers(js_doc) == same_numbers(py_content(py)) and "from-py" in js_doc["shapes"]

        await async_wait_until(both_equal, within=15, what="python and JS converge")
        state = content(js.snapshot())
        assert state["shapes"]["from-py"] == {"type": "ellipse", "x": 5.5, "y": 6, "createdBy": "python"}
        assert state["meta"] == {"title": "written by pycrdt"}
        assert state["list"] == ["py-item"]
        assert state["notes"] == ">> js says hi"
        assert state["kv"]["who"] in ("python", "javascript")

        if target.http is not None:
            await async_wait_until(
                lambda: same_numbers(doc_from_state(target.board_state("py-interop"))) == same_numbers(state),
                within=10, what="server state equals both clients'")


def test_update_posted_over_http_reaches_live_js_clients(target: Target, js_client) -> None:
    """An offline script's edit (POST /api/boards/{id}/updates) is live for connected JS clients."""
    if target.http is None:
        pytest.skip("the reference server has no HTTP API")
    js = js_client("js")
    js.connect(target.ws_url, "http-merge")
    js.call("setShape", id="live", fields={"type": "rect"})
    wait_until(lambda: target.version("http-merge") >= 1, timeout=10, what="JS edit logged")

    offline = Doc()
    offline.get("shapes", type=Map)["scripted"] = Map({"type": "text", "text": "from a script"})
    offline.get("meta", type=Map)["title"] = "merged over HTTP"
    r = target.http.post("/api/boards/http-merge/updates", content=offline.get_update(),
                         headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == target.version("http-merge")
    wait_until(lambda: "scripted" in js.snapshot()["shapes"], timeout=10, what="JS client gets it live")
    assert js.snapshot()["meta"] == {"title": "merged over HTTP"}

    version = target.version("http-merge")
    bad = target.http.post("/api/boards/http-merge/updates", content=b"\xff\xff\xff\xff garbage",
                           headers={"content-type": "application/octet-stream"})
    assert bad.status_code == 400 and bad.json(), bad.text
    assert target.version("http-merge") == version
    assert js.sizes()["connected"] and js.sizes()["closes"] == []
