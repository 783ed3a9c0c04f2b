"""Fixtures for the interop tests: real JavaScript Yjs clients (Node) and a pycrdt client.

The tests talk to a real `inkstream serve` (the `inkstream_server` fixture of tests/conftest.py).
With INKSTREAM_INTEROP_SERVER=reference they run against the reference Node server
(`@y/websocket-server`) instead, to check the tests themselves: tests that need our HTTP API or
our error contract are skipped there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the helper modules next to this file, whatever the import mode
    sys.path.insert(0, str(HERE))

from jsclient import JS_DIR, JsClient, ensure_js_deps  # noqa: E402
from support import Target, free_port, wait_until  # noqa: E402

REFERENCE = os.environ.get("INKSTREAM_INTEROP_SERVER") == "reference"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session", autouse=True)
def js_deps() -> None:
    """`npm ci` in tests/js once per session if node_modules is missing or stale."""
    ensure_js_deps()


@pytest.fixture
def reference_server() -> Iterator[str]:
    """The reference Node server `@y/websocket-server` on a free port; yields its ws URL."""
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(JS_DIR / "node_modules" / "@y" / "websocket-server" / "src" / "server.js")],
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}, cwd=JS_DIR,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def up() -> bool:
            import socket

            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True

        wait_until(up, timeout=15, what="reference server")
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The server under test: `inkstream serve` (default) or the reference Node server."""
    if REFERENCE:
        yield Target(ws_url=request.getfixturevalue("reference_server"), http=None)
        return
    server = request.getfixturevalue("inkstream_server")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield Target(ws_url=server.ws_url, http=http, server=server)


@pytest.fixture
def js_client() -> Iterator[Callable[[str], JsClient]]:
    """Factory of real JS Yjs clients (one Node process each), all ended after the test."""
    clients: list[JsClient] = []

    def make(name: str = "js") -> JsClient:
        client = JsClient(name)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
