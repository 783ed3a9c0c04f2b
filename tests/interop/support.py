"""Helpers shared by the interop tests (imported by name: conftest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Array, Doc, Map, Text

ROOT = Path(__file__).resolve().parents[2]


def _load_root_conftest() -> Any:
    # tests/conftest.py owns wait_until/free_port; pytest imports every conftest as "conftest",
    # so load it by path under its own name instead of `from conftest import ...`.
    spec = importlib.util.spec_from_file_location("inkstream_tests_conftest", ROOT / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_root = _load_root_conftest()
wait_until = _root.wait_until
free_port = _root.free_port


@dataclass
class Target:
    """Where the clients connect: `ws_url` + '/' + board. `http` is None for the reference server."""

    ws_url: str
    http: httpx.Client | None
    server: Any = None

    def board_json(self, board: str) -> dict[str, Any]:
        """GET /api/boards/{board} as JSON (asserting 200)."""
        assert self.http is not None
        r = self.http.get(f"/api/boards/{board}")
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def board_state(self, board: str) -> bytes:
        """GET /api/boards/{board}/state: the full Yjs state as update bytes."""
        assert self.http is not None
        r = self.http.get(f"/api/boards/{board}/state")
        assert r.status_code == 200, (r.status_code, r.text)
        return r.content

    def version(self, board: str) -> int:
        """The board's current version (0 if the board does not exist yet)."""
        assert self.http is not None
        r = self.http.get(f"/api/boards/{board}")
        if r.status_code == 404:
            return 0
        assert r.status_code == 200, (r.status_code, r.text)
        return int(r.json()["version"])


DOC_KEYS = ("shapes", "meta", "kv", "list", "notes")


def connections(target: Target) -> int:
    """The server's `inkstream_connections` gauge (open WebSocket connections)."""
    assert target.http is not None
    for line in target.http.get("/metrics").text.splitlines():
        if line.startswith("inkstream_connections "):
            return int(float(line.split()[1]))
    raise AssertionError("no inkstream_connections in /metrics")


def content(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The document part of a client snapshot (no connection state)."""
    return {k: snapshot[k] for k in DOC_KEYS}


def converged(*clients: Any) -> dict[str, Any] | None:
    """The common document content if all clients hold the same state, else None."""
    first, *rest = (c.snapshot() for c in clients)
    if all(content(s) == content(first) and s["stateVector"] == first["stateVector"] for s in rest):
        return content(first)
    return None


def doc_from_state(update: bytes) -> dict[str, Any]:
    """Decode the server's /state bytes with pycrdt into the same JSON shape as a JS snapshot."""
    doc = Doc()
    doc.apply_update(update)
    return {
        "shapes": doc.get("shapes", type=Map).to_py(),
        "meta": doc.get("meta", type=Map).to_py(),
        "kv": doc.get("kv", type=Map).to_py(),
        "list": doc.get("list", type=Array).to_py(),
        "notes": str(doc.get("notes", type=Text)),
    }


def assert_server_matches(target: Target, board: str, expected: dict[str, Any]) -> None:
    """The server's HTTP state (/state decoded, and the JSON rendering) equals `expected`."""
    if target.http is None:
        return
    assert doc_from_state(target.board_state(board)) == expected
    rendered = target.board_json(board)
    assert rendered["id"] == board
    assert rendered["meta"] == expected["meta"]
    by_id = {s["id"]: {k: v for k, v in s.items() if k != "id"} for s in rendered["shapes"]}
    assert by_id == expected["shapes"]


def needs_http(target: Target) -> None:
    """Skip when running against the reference server (it has no HTTP API)."""
    if target.http is None:
        pytest.skip("the reference server has no HTTP API")


async def async_wait_until(predicate: Callable[[], Any], within: float = 20.0,
                           what: str = "condition") -> Any:
    """Like tests/conftest.py's wait_until, but yields to the event loop between polls."""
    deadline = time.monotonic() + within
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if isinstance(value, Awaitable):
                value = await value
            if value:
                return value
        except Exception as exc:  # the predicate may fail until ready
            last_exc = exc
        await asyncio.sleep(0.02)
    raise TimeoutError(f"timed out after {within}s waiting for {what}; last error: {last_exc!r}")
