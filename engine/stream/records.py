"""Event-log records as the view processor sees them, on top of the wire format (engine.wire).

The processor adds one header to the wire format: `inkstream-gateway`, the gateway waiting for the
record's fold (the pub/sub channel that gets its version). Versions follow engine.wire: dense per
board from 1 in partition order, counted by every consumer; a record without a board key has no
version and is skipped by everyone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from engine.events import Provenance
from engine.wire import Headers, MalformedRecord, decode_key, provenance_from_map
from engine.wire import encode_headers as encode_wire_headers

HEADER_GATEWAY = "inkstream-gateway"


@dataclass(frozen=True, slots=True)
class Record:
    """One event-log record as the view processor needs it."""

    partition: int
    offset: int
    board: str
    update: bytes
    provenance: Provenance
    gateway: str | None = None


def encode_headers(provenance: Provenance, gateway: str | None) -> list[tuple[str, bytes]]:
    """Wire headers (provenance + the current W3C trace context) plus the waiting gateway."""
    trace: dict[str, str] = {}
    with contextlib.suppress(Exception):  # tracing is best effort: never fail an append over it
        from opentelemetry import propagate

        propagate.inject(trace)
    headers = encode_wire_headers(provenance, trace)
    if gateway:
        headers.append((HEADER_GATEWAY, gateway.encode()))
    return headers


def decode_record(
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers | None,
    timestamp_ms: int | None,
) -> Record | None:
    """A consumed Kafka record as a Record; None if it has no board key (it takes no version)."""
    try:
        board = decode_key(key)
    except MalformedRecord:
        return None
    found: dict[str, bytes | None] = dict(headers or ())  # one dict for every header (the fold's hot path)
    gateway = found.get(HEADER_GATEWAY)
    return Record(
        partition,
        offset,
        board,
        value or b"",
        provenance_from_map(found, fallback_time=(timestamp_ms or 0) / 1000),
        gateway.decode(errors="replace") if gateway else None,
    )
