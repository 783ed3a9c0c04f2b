"""What a history request means, for the HTTP API (gateway/history_api.py) and the CLI
(gateway/history_cli.py) alike: the rules for its parameters, the page of versions and the
answer to an import. One definition, so `inkstream history|replay|export|import` behaves the
same with `--url` as with `--data-dir`: same checks, same messages, same output.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.events import Event
from projections.excalidraw import ImportedScene
from projections.history import BoardHistory, VersionInfo

#: Largest page of versions.
MAX_PAGE = 1000


class BadParam(ValueError):
    """A query or body parameter that does not parse."""


def parse_int(value: Any, name: str, minimum: int = 0) -> int:
    """`value` (an int or its decimal text) as an int >= `minimum`; BadParam naming `name` otherwise."""
    if isinstance(value, bool):
        raise BadParam(f"{name} must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    else:
        raise BadParam(f"{name} must be an integer, not {value!r}")
    if number < minimum:
        raise BadParam(f"{name} must be >= {minimum}")
    return number


def parse_time(raw: str) -> float:
    """An ISO-8601 time as a POSIX timestamp; a time without zone is UTC."""
    text = raw.strip()
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(text.replace(" ", "+"))  # a '+' in a URL query arrives as ' '
        except ValueError:
            raise BadParam(f"at must be an ISO-8601 time such as 2026-12-03T15:00:00Z, not {raw!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def version_or_at(version: Any, at: str | None) -> tuple[int | None, float | None]:
    """The version a request asks for, `version` (>= 1) or `at` (a time), at most one of them."""
    number = None if version is None else parse_int(version, "version", minimum=1)
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
        "deleted": imported.deleted,
    }
