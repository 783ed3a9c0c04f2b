"""One typed settings object, read once at start-up from INKSTREAM_* environment variables and flags."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from engine.limits import Limits

_DEFAULT_LIMITS = Limits()
EVENT_LOOPS = ("uvloop", "asyncio")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")  # any case


def _env_bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Every setting, with its default. Env var = INKSTREAM_ + upper-case name."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("inkstream-data")
    fsync: bool = False  # fsync every group commit (survives power loss, not only process crashes)
    idle_unload_seconds: float = 60.0  # unload boards nobody is connected to after this long
    checkpoint_every: int = 1000  # versions between checkpoints
    projector_process: bool = True  # embedded: fold projections/history in a child process (else in the gateway's)
    keepalive_seconds: float = 10.0  # send something on idle sockets (y-websocket clients time out at 30 s)
    max_send_queue: int = 4096  # frames queued to one slow client before it is disconnected
    max_send_queue_bytes: int = 64 * 1024 * 1024  # bytes queued to one slow client before it is disconnected
    event_loop: str = "uvloop"  # "uvloop" (default; see gateway/server.py run_loop) or "asyncio"
    ws_compression: bool = False  # accept permessage-deflate (costs CPU per frame; see gateway/server.py)
    max_update_bytes: int = _DEFAULT_LIMITS.max_update_bytes
    max_frame_bytes: int = _DEFAULT_LIMITS.max_frame_bytes
    max_awareness_bytes: int = _DEFAULT_LIMITS.max_awareness_bytes
    max_board_bytes: int = _DEFAULT_LIMITS.max_board_bytes
    log_level: str = "INFO"
    # distributed mode
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic: str = "inkstream.updates"
    redis_url: str = "redis://127.0.0.1:6379/0"
    mongo_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_db: str = "inkstream"
    etcd_url: str = "http://127.0.0.1:2379"
    redis_prefix: str = "inkstream"  # key prefix of the Redis views and streams (side-by-side deployments, tests)
    kafka_partitions: int = 3  # partitions of the updates topic when a gateway or processor creates it
    fold_timeout_seconds: float = 30.0  # how long an append waits for the view processor's fold, then 503
    gateway_id: str = ""  # this gateway's id in etcd (default host:port)
    advertise_url: str = ""  # the URL other nodes and clients use for this gateway (default http://host:port)
    etcd_lease_ttl: int = 10  # seconds a crashed gateway stays listed

    @property
    def limits(self) -> Limits:
        """The size limits for client input."""
        return Limits(self.max_update_bytes, self.max_frame_bytes, self.max_awareness_bytes, self.max_board_bytes)

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then INKSTREAM_* environment variables, then explicit (non-None) overrides."""
        environ = dict(os.environ) if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"INKSTREAM_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _coerce(f.type, raw, f.name)
        settings = replace(cls(**values), **{k: v for k, v in overrides.items() if v is not None})
        settings.check()
        return settings

    def configure_logging(self) -> None:
        """Log to stderr at this process's level, in the one format every Inkstream service uses."""
        logging.basicConfig(level=self.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def check(self) -> None:
        """Refuse settings that cannot work (SystemExit with the setting's name), before anything starts."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise SystemExit(f"inkstream: {f.name} (INKSTREAM_{f.name.upper()}) must be positive, not {value}")
        if not 0 < self.port < 65536:
            raise SystemExit(f"inkstream: port must be 1-65535, not {self.port}")
        if self.max_update_bytes > self.max_frame_bytes:
            raise SystemExit("inkstream: max_update_bytes must not exceed max_frame_bytes")
        if self.event_loop not in EVENT_LOOPS:
            raise SystemExit(
                f"inkstream: event_loop (INKSTREAM_EVENT_LOOP) must be one of {', '.join(EVENT_LOOPS)}, "
                f"not {self.event_loop!r}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise SystemExit(
                f"inkstream: log_level (--log-level, INKSTREAM_LOG_LEVEL) must be one of {', '.join(LOG_LEVELS)}, "
                f"not {self.log_level!r}"
            )


def _coerce(kind: Any, raw: str, name: str) -> Any:
    kind = str(kind)
    try:
        if kind == "bool":
            return _env_bool(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise SystemExit(f"INKSTREAM_{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
