"""Real servers for integration tests: start them once per session, inject faults.

    from tests.servers import ensure_servers, kill_server, start_server

    env = ensure_servers("kafka", "redis")      # {"INKSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:19092", ...}
    kill_server("redis")                        # kill -9, data stays
    start_server("redis")                       # back, waits until it answers

Everything goes through infra/dev/up and infra/dev/down (one way to start and stop a
server, for people and tests alike). With INKSTREAM_SERVERS_EXTERNAL=1 nothing is started:
the INKSTREAM_* settings are taken from the environment (e.g. docker-compose servers).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UP = ROOT / "infra" / "dev" / "up"
DOWN = ROOT / "infra" / "dev" / "down"
ENV_FILE = Path(os.environ.get("INKSTREAM_DEV_ENV_FILE", ROOT / "infra" / "dev" / "env"))
SERVICES = ("kafka", "redis", "mongo", "etcd")
SETTINGS = {
    "kafka": "INKSTREAM_KAFKA_BOOTSTRAP",
    "redis": "INKSTREAM_REDIS_URL",
    "mongo": "INKSTREAM_MONGO_URL",
    "etcd": "INKSTREAM_ETCD_URL",
}

_started: set[str] = set()
_lock = threading.Lock()


class ServerError(RuntimeError):
    """infra/dev/up or infra/dev/down failed; the message carries its output."""


def _external() -> bool:
    return os.environ.get("INKSTREAM_SERVERS_EXTERNAL", "") not in ("", "0")


def _check(names: tuple[str, ...]) -> None:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise ValueError(f"unknown server(s) {unknown}; known: {SERVICES}")


def _run(script: Path, *args: str, timeout: float = 600) -> None:
    proc = subprocess.run([str(script), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ServerError(f"{script.name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """Parse the `export NAME=value` lines infra/dev/up writes."""
    settings: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            settings[name] = value
    return settings


def ensure_servers(*names: str) -> dict[str, str]:
    """Start the named servers (default: all) unless this session already did; return the settings."""
    names = names or SERVICES
    _check(names)
    if _external():
        missing = [SETTINGS[n] for n in names if SETTINGS[n] not in os.environ]
        if missing:
            raise ServerError(f"INKSTREAM_SERVERS_EXTERNAL is set but {missing} are not")
        return {k: v for k, v in os.environ.items() if k.startswith("INKSTREAM_")}
    with _lock:
        todo = [n for n in names if n not in _started]
        if todo or not ENV_FILE.exists():
            _run(UP, *todo)
            _started.update(todo)
        return read_env_file()


def _check_local(name: str) -> None:
    _check((name,))
    if _external():
        raise ServerError(f"cannot start/stop {name}: servers are external (INKSTREAM_SERVERS_EXTERNAL)")


def start_server(name: str) -> None:
    """Start one server (after stop_server/kill_server) and wait until it answers."""
    _check_local(name)
    with _lock:
        _run(UP, name)
        _started.add(name)


def stop_server(name: str) -> None:
    """Stop one server gracefully (SIGTERM, SIGKILL after a deadline); its data stays."""
    _check_local(name)
    with _lock:
        _started.discard(name)
        _run(DOWN, name)


def kill_server(name: str) -> None:
    """Crash one server (SIGKILL, no shutdown hooks); its data stays."""
    _check_local(name)
    with _lock:
        _started.discard(name)
        _run(DOWN, "--kill", name)
