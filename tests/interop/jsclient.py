"""Drive real JavaScript Yjs clients (tests/js/agent.mjs: yjs + y-websocket on Node) from pytest.

Each `JsClient` is one Node process holding one `Y.Doc` and one `WebsocketProvider`, so a test
can kill a client abruptly (SIGKILL) like a crashed browser tab.
"""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
AGENT = JS_DIR / "agent.mjs"

_deps_lock = threading.Lock()
_deps_ready = False


def ensure_js_deps() -> None:
    """Install tests/js/node_modules with `npm ci` (from the committed lock file) if missing."""
    global _deps_ready
    with _deps_lock:
        if _deps_ready:
            return
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise RuntimeError("interop tests need Node.js and npm on PATH (Node >= 18)")
        marker = JS_DIR / "node_modules" / ".package-lock.json"
        lock = JS_DIR / "package-lock.json"
        if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=JS_DIR, check=True, timeout=600,
            )
        _deps_ready = True


class JsClientError(RuntimeError):
    """The Node agent answered a command with an error, or went away."""


class JsClient:
    """One Node process running tests/js/agent.mjs; `call(op, **args)` returns its JSON reply."""

    def __init__(self, name: str = "js") -> None:
        ensure_js_deps()
        self.name = name
        self.proc = subprocess.Popen(
            ["node", str(AGENT)], cwd=JS_DIR,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[str] = []
        self._next_id = 0
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.client_id: int | None = None

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                self._replies.put(json.loads(raw))
            except json.JSONDecodeError:
                self._stderr.append(f"[stdout] {raw.decode(errors='replace')}")
        self._replies.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace"))

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def call(self, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        """Send one command and wait (with a deadline) for its reply."""
        self._next_id += 1
        cmd_id = self._next_id
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps({**args, "seq": cmd_id, "op": op}) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise JsClientError(f"{self.name}: agent is gone ({exc}); stderr:\n{self.stderr}") from exc
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JsClientError(f"{self.name}: no reply to {op} within {timeout}s; stderr:\n{self.stderr}")
            try:
                reply = self._replies.get(timeout=remaining)
            except queue.Empty:
                continue
            if reply is None:
                raise JsClientError(f"{self.name}: agent exited during {op}; stderr:\n{self.stderr}")
            if reply.get("seq") != cmd_id:
                continue  # a late reply to a command that timed out earlier
            if not reply.get("ok"):
                raise JsClientError(f"{self.name}: {op} failed: {reply.get('error')}")
            return reply

    # Convenience wrappers for the common commands.
    def connect(self, ws_url: str, room: str, params: dict[str, str] | None = None,
                awareness: dict[str, Any] | None = None, timeout: float = 15.0) -> int:
        """Connect a WebsocketProvider to `ws_url/room` and wait until it is synced."""
        reply = self.call("connect", url=ws_url, room=room, params=params or {},
                          awareness=awareness, timeout=int(timeout * 1000))
        self.client_id = int(reply["clientID"])
        return self.client_id

    def snapshot(self) -> dict[str, Any]:
        """The client's document as JSON (shapes, meta, kv, list, notes) plus connection state."""
        return self.call("snapshot")

    def sizes(self) -> dict[str, Any]:
        """Cheap progress probe: root sizes, sync/connection state, closes seen."""
        return self.call("sizes")

    def awareness(self) -> dict[int, Any]:
        """Awareness states this client currently sees, by client id."""
        return {int(k): v for k, v in self.call("awareness")["states"].items()}

    def kill9(self) -> None:
        """Kill the client process abruptly; the OS closes its socket, no close frame is sent."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close(self) -> None:
        """End the agent: EOF on stdin makes it exit; SIGKILL if it does not."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                self.kill9()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

