"""The event model: every accepted update is an Event with a per-board version and provenance."""

from __future__ import annotations

from dataclasses import dataclass

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who sent an update and when the log accepted it."""

    time: float  # seconds since the epoch, when accepted
    client_id: str  # connection / request id, or the Yjs client id when known
    user: str = ANONYMOUS  # display name from the connection, "anonymous" if none


#: The version of an accepted Event whose version the log has not assigned yet (EventLog.append).
VERSION_PENDING = 0


@dataclass(frozen=True, slots=True)
class Event:
    """One accepted update of one board. Versions are dense integers from 1 in log order."""

    board: str
    version: int
    update: bytes
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class BoardHead:
    """The latest version of a board in the log and when it was written."""

    board: str
    version: int
    updated: float
