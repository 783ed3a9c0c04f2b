"""The event model: every accepted update is an Event with a per-board version and provenance."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

ANONYMOUS = "anonymous"
MAX_USER_NAME = 64  # characters of an author name kept in provenance


def author_name(raw: object) -> str | None:
    """An author name as provenance keeps it, or None if `raw` holds none.

    Names come from clients (a query parameter, a header, the awareness state) and end up in
    history listings, terminals and the web app: control and format characters, unpaired
    surrogates and line breaks are dropped, runs of white space become one space, and at most
    MAX_USER_NAME characters are kept.
    """
    if not isinstance(raw, str):
        return None
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in raw
        if ch.isspace() or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"} or ch == "\u200d"
    )
    name = " ".join(kept.split())[:MAX_USER_NAME].strip()
    return name or None


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
