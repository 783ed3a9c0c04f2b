"""What a history request means, for the HTTP API (gateway/history_api.py) and the CLI
(gateway/history_cli.py) alike: the rules for its parameters, the page of versions and the
answer to an import. One definition, so `inkstream history|replay|export|import` behaves the
same with `--url` as with `--data-dir`: same checks, same messages, same output.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from engine.events import Event
from projections.excalidraw import ImportedScene
from projections.history import BoardHistory, VersionInfo

#: Largest page of versions.
MAX_PAGE = 1000
#: Integer parameters: ASCII digits, at most 18 of them (int() of thousands of digits raises, and
#: Unicode digits such as "²" pass str.isdigit but not int()).
_INT_TEXT = re.compile(r"\s*-?[0-9]{1,18}\s*")
#: Longest `at` worth parsing (an ISO-8601 time with microseconds and a zone has 32 characters).
MAX_TIME_TEXT = 64
#: At most this much of a parameter is quoted back in an error.
ECHO_LIMIT = 100


def quote(value: Any) -> str:
    """repr() of a parameter for an error message, cut to ECHO_LIMIT characters with '…'."""
    text = repr(value)
    return text if len(text) <= ECHO_LIMIT else text[: ECHO_LIMIT - 1] + "…"


class BadParam(ValueError):
    """A query or body parameter that does not parse."""


def parse_int(value: Any, name: str, minimum: int = 0) -> int:
    """`value` (an int or its decimal text) as an int >= `minimum`; BadParam naming `name` otherwise."""
    if isinstance(value, bool):
        raise BadParam(f"{name} must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value):
        number = int(value)
    else:
        raise BadParam(f"{name} must be an integer, not {quote(value)}")
    if number < minimum:
        raise BadParam(f"{name} must be >= {minimum}")
    if number >= 10**18:
        raise BadParam(f"{name} is out of range: {quote(number)}")
    return number


def parse_time(raw: str) -> float:
    """An ISO-8601 time as a POSIX timestamp; a time without zone is UTC."""
    text = raw.strip()
    when = None
    if len(text) <= MAX_TIME_TEXT:
        for candidate in (text, text.replace(" ", "+")):  # a '+' in a URL query arrives as ' '
            try:
                when = dt.datetime.fromisoformat(candidate)
                break
            except ValueError:
                continue
    if when is None:
        raise BadParam(f"at must be an ISO-8601 time such as 2026-12-03T15:00:00Z, not {quote(raw)}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def version_or_at(version: Any, at: str | None) -> tuple[int | None, float | None]:
    """The version a request asks for, `version` (>= 0; 0 is the empty board) or `at` (a time), not both."""
    number = None if version is None else parse_int(version, "version")
    if number is not None and at is not None:
        raise BadParam("give either version or at, not both")
    return number, None if at is None else parse_time(at)


def page(after: Any, before: Any, limit: Any, default: int = 100) -> tuple[int | None, int | None, int]:
    """A page of versions: `after` >= 0 or `before` >= 1 (not both), 1 <= `limit` <= MAX_PAGE."""
    first = None if after is None else parse_int(after, "after")
    last = None if before is None else parse_int(before, "before", minimum=1)
    size = default if limit is None else parse_int(limit, "limit", minimum=1)
    if first is not None and last is not None:
        raise BadParam("give either after or before, not both")
    if size > MAX_PAGE:
        raise BadParam(f"limit must be <= {MAX_PAGE}")
    return first, last, size


def iso(ts: float) -> str:
    """A POSIX timestamp as ISO-8601 UTC with a Z."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def version_json(v: VersionInfo) -> dict[str, Any]:
    """One version of a board as the API lists it."""
    return {"version": v.version, "time": iso(v.time), "client": v.client, "user": v.user, "summary": v.summary}


async def versions_page(
    history: BoardHistory, board: str, after: int | None, before: int | None, limit: int
) -> dict[str, Any]:
    """`{"id", "latest", "projected", "versions", "next"}`: a page of versions and where the next one starts."""
    rows = await history.versions(board, after=after, before=before, limit=limit)
    latest = await history.archive.head(board)
    projected = await history.archive.projected(board)
    nxt: dict[str, int] | None = None
    if rows and len(rows) == limit:
        nxt = {"before": rows[-1].version} if before is not None else {"after": rows[-1].version}
        if before is not None and rows[-1].version <= 1:
            nxt = None
        if before is None and rows[-1].version >= latest:
            nxt = None
    return {
        "id": board,
        "latest": latest,
        "projected": projected,
        "versions": [version_json(v) for v in rows],
        "next": nxt,
    }


def import_result(version: int, event: Event | None, imported: ImportedScene) -> dict[str, Any]:
    """The answer to an import: the board's version after it, and what was imported or skipped."""
    return {
        "version": version,
        "changed": event is not None,
        "imported": len(imported.shapes),
        "skipped": imported.skipped,
        "invalid": imported.invalid,  # why the elements counted in skipped["invalid"] were (the first few)
        "deleted": imported.deleted,
    }
