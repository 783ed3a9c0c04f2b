"""Shared pytest fixtures: a real `inkstream serve` process per test that asks for one."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: talks to real Kafka/Redis/MongoDB/etcd servers")
    config.addinivalue_line("markers", "interop: drives real JavaScript Yjs clients (Node)")
    config.addinivalue_line("markers", "browser: drives the web app in headless Chromium")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_exc!r}")


def unique(prefix: str) -> str:
    """A name no other test uses (topics, boards, Redis prefixes)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def eventually(predicate, timeout: float = 30.0, what: str = "condition", interval: float = 0.05):
    """Await a (sync or async) predicate until it returns a truthy value; TimeoutError at the deadline.

    Exceptions count as "not yet" (the servers may be restarting) and the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if inspect.isawaitable(last):
                last = await last
            if last:
                return last
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


def kill9(proc: subprocess.Popen[bytes] | None) -> None:
    """Kill a child process abruptly (SIGKILL), as a crash would, and reap it."""
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a running child; SIGKILL it if it has not exited within `timeout` seconds."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class InkstreamServer:
    """A real `inkstream serve` subprocess on a free port with its own data directory."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **self.env},
        )
        wait_until(self._healthy, timeout=30, what=f"inkstream serve on {self.port} (log {self.log_path})")

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text()[-2000:] if self.log_path else ""
            raise RuntimeError(f"server exited with {self.proc.returncode}:\n{tail}")
        with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
            return r.status == 200

    def kill9(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        kill9(self.proc)

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    """An open embedded event log and projection store in a fresh directory: (SqliteEventLog, SqliteProjectionStore)."""
    from engine.adapters.sqlite_log import SqliteEventLog
    from projections.sqlite_store import SqliteProjectionStore

    log = SqliteEventLog(tmp_path / "events.db")
    store = SqliteProjectionStore(tmp_path / "projections.db")
    await log.start()
    await store.start()
    yield log, store
    await log.close()
    await store.close()


@pytest.fixture
def inkstream_server(tmp_path: Path) -> Iterator[InkstreamServer]:
    """A running embedded `inkstream serve` (fresh data dir), stopped after the test."""
    server = InkstreamServer(data_dir=tmp_path / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()
