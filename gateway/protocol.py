"""The y-websocket wire protocol: strict decoding of client frames and encoding of server frames.

Frame = varUint message type, then:
- SYNC (0): varUint sync type, then a varUint8Array payload: STEP1 (0) a state vector,
  STEP2 (1) an update, UPDATE (2) an update.
- AWARENESS (1): a varUint8Array holding the awareness update
  (varUint count, then per client: varUint client id, varUint clock, varString JSON state).
- AUTH (2) and QUERY_AWARENESS (3) as in y-websocket.
Anything else, truncated data or trailing bytes is a ProtocolError: the client gets a close code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MSG_SYNC = 0
MSG_AWARENESS = 1
MSG_AUTH = 2
MSG_QUERY_AWARENESS = 3

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2


class ProtocolError(ValueError):
    """A frame that does not follow the y-websocket protocol."""


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        result = 0
        shift = 0
        while True:
            if self.pos >= len(self.data):
                raise ProtocolError("truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ProtocolError("varint too long")

    def bytes_(self) -> bytes:
        length = self.uint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError(f"declared length {length} exceeds the frame")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def string(self) -> str:
        try:
            return self.bytes_().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("string is not valid UTF-8") from exc

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError(f"{len(self.data) - self.pos} unexpected trailing bytes")


def write_uint(value: int) -> bytes:
    """Encode a non-negative integer as a varUint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_bytes(payload: bytes) -> bytes:
    """Encode bytes as a varUint8Array."""
    return write_uint(len(payload)) + payload


@dataclass(frozen=True, slots=True)
class SyncMessage:
    """A sync-protocol message: step (STEP1/STEP2/UPDATE) and its payload."""

    step: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    """An awareness update, raw (to relay as-is) and decoded."""

    raw: bytes  # the whole frame, relayed unchanged
    entries: list[tuple[int, int, Any]]  # (client id, clock, state or None)


@dataclass(frozen=True, slots=True)
class OtherMessage:
    """AUTH or QUERY_AWARENESS."""

    kind: int


Message = SyncMessage | AwarenessMessage | OtherMessage


def _no_constants(name: str) -> Any:
    raise ProtocolError(f"awareness state contains {name}, which JavaScript's JSON.parse rejects")


def decode_awareness(payload: bytes) -> list[tuple[int, int, Any]]:
    """Decode an awareness update into (client id, clock, state) triples; state None = removed."""
    reader = _Reader(payload)
    count = reader.uint()
    if count > 10_000:
        raise ProtocolError("too many awareness entries")
    entries = []
    for _ in range(count):
        client_id = reader.uint()
        clock = reader.uint()
        try:
            state = json.loads(reader.string(), parse_constant=_no_constants)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ProtocolError("awareness state is not JSON (or nested too deeply)") from exc
        entries.append((client_id, clock, state))
    reader.end()
    return entries


def decode(frame: bytes) -> Message:
    """Decode one client frame; raise ProtocolError on anything malformed."""
    if not frame:
        raise ProtocolError("empty frame")
    reader = _Reader(frame)
    kind = reader.uint()
    if kind == MSG_SYNC:
        step = reader.uint()
        if step not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE):
            raise ProtocolError(f"unknown sync message type {step}")
        payload = reader.bytes_()
        reader.end()
        return SyncMessage(step, payload)
    if kind == MSG_AWARENESS:
        payload = reader.bytes_()
        reader.end()
        return AwarenessMessage(frame, decode_awareness(payload))
    if kind == MSG_QUERY_AWARENESS:
        reader.end()
        return OtherMessage(kind)
    if kind == MSG_AUTH:
        return OtherMessage(kind)
    raise ProtocolError(f"unknown message type {kind}")


def update_payload(frame: bytes) -> bytes | None:
    """The update inside a sync UPDATE frame this server encoded, or None for any other frame."""
    if len(frame) < 3 or frame[0] != MSG_SYNC or frame[1] != SYNC_UPDATE:
        return None
    reader = _Reader(frame)
    reader.pos = 2
    try:
        payload = reader.bytes_()
        reader.end()
    except ProtocolError:
        return None
    return payload


def sync_step1(state_vector: bytes) -> bytes:
    """Server frame: sync step 1 with our state vector."""
    return bytes([MSG_SYNC, SYNC_STEP1]) + write_bytes(state_vector)


def sync_step2(update: bytes) -> bytes:
    """Server frame: sync step 2 with what the peer is missing (for that one peer only)."""
    return bytes([MSG_SYNC, SYNC_STEP2]) + write_bytes(update)


def sync_update(update: bytes) -> bytes:
    """Server frame: an accepted update."""
    return bytes([MSG_SYNC, SYNC_UPDATE]) + write_bytes(update)


def awareness(entries: list[tuple[int, int, Any]]) -> bytes:
    """Server frame: an awareness update with the given (client id, clock, state) entries."""
    body = bytearray(write_uint(len(entries)))
    for client_id, clock, state in entries:
        body += write_uint(client_id) + write_uint(clock)
        body += write_bytes(json.dumps(state, separators=(",", ":")).encode())
    return bytes([MSG_AWARENESS]) + write_bytes(bytes(body))
