"""The wire format of the Kafka event log, shared by the producer (gateway) and every consumer.

One record per accepted update:

- key: the board id, UTF-8. Kafka's default partitioner keeps a board in one partition, so a
  board's order is its partition's order.
- value: the Yjs v1 update bytes (the effective delta the gateway's live board integrated).
- headers (all UTF-8 text): ``inkstream-time`` (seconds since the epoch, decimal), ``inkstream-client``,
  ``inkstream-user``, and the W3C trace context (``traceparent``, ``tracestate``) when there is one.

Versions are not on the wire: a board's versions are dense integers from 1 in partition order,
and every consumer (processor, projector) assigns them the same way by counting. That keeps the
producer free of a read-modify-write and makes every consumer's numbering agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from engine.events import ANONYMOUS, Provenance

HEADER_TIME = "inkstream-time"
HEADER_CLIENT = "inkstream-client"
HEADER_USER = "inkstream-user"
TRACE_HEADERS = ("traceparent", "tracestate")

#: Kafka record headers as aiokafka produces and consumes them.
Headers = Sequence[tuple[str, bytes]]


class MalformedRecord(ValueError):
    """A topic record that does not follow the wire format (no key, or a non-UTF-8 board id)."""


def encode_key(board: str) -> bytes:
    """The record key for `board`."""
    return board.encode("utf-8")


def decode_key(key: bytes | None) -> str:
    """The board id of a record key; MalformedRecord if there is none."""
    if not key:
        raise MalformedRecord("record has no key (expected the board id)")
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRecord(f"record key is not UTF-8: {key!r}") from exc


def encode_headers(provenance: Provenance, trace: Mapping[str, str] | None = None) -> list[tuple[str, bytes]]:
    """Record headers carrying `provenance` and, if given, the trace context (traceparent/tracestate)."""
    headers = [
        (HEADER_TIME, repr(float(provenance.time)).encode("ascii")),
        (HEADER_CLIENT, provenance.client_id.encode("utf-8")),
        (HEADER_USER, provenance.user.encode("utf-8")),
    ]
    for name in TRACE_HEADERS:
        if trace and trace.get(name):
            headers.append((name, trace[name].encode("utf-8")))
    return headers


def _header_map(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> dict[str, bytes]:
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name): bytes(value) for name, value in items if value is not None}


def decode_provenance(
    headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None, fallback_time: float
) -> Provenance:
    """Provenance from record headers; missing fields fall back to the record time / "anonymous"."""
    return provenance_from_map(_header_map(headers), fallback_time)


def provenance_from_map(found: Mapping[str, bytes | None], fallback_time: float) -> Provenance:
    """`decode_provenance` for headers already in a dict (name -> value; a None value counts as missing)."""
    try:
        when = float(found[HEADER_TIME].decode("ascii"))  # type: ignore[union-attr]
    except (KeyError, ValueError, UnicodeDecodeError, AttributeError):
        when = fallback_time
    client = (found.get(HEADER_CLIENT) or b"").decode("utf-8", "replace")
    user = (found.get(HEADER_USER) or b"").decode("utf-8", "replace") or ANONYMOUS
    return Provenance(time=when, client_id=client, user=user)


def decode_trace(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> dict[str, str]:
    """The W3C trace context carried by a record (empty if none), for propagators' `extract`."""
    found = _header_map(headers)
    return {name: found[name].decode("utf-8", "replace") for name in TRACE_HEADERS if name in found}
