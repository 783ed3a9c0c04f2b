"""History subcommands: `inkstream history | replay | export | import`.

Two ways to reach a board:

- `--url http://host:port` (or INKSTREAM_URL): talk to a running server's HTTP API. Use this
  whenever a server owns the data dir, and always for `import` while one is running.
- `--data-dir DIR` (the default, INKSTREAM_DATA_DIR or ./inkstream-data): open the embedded data
  dir directly. `history`, `replay` and `export` only read (SQLite WAL allows that next to a
  running server) and take no lock; versions the server's projector has not reached yet are
  listed without a summary. `import` appends to the log itself, so it takes the data dir's writer
  lock (engine.adapters.data_dir_lock) like `inkstream serve` does: with a server running on that
  dir it is refused (exit status 1, nothing written) and says to use `--url`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from engine.adapters.sqlite_log import SqliteEventLog
from engine.errors import InkstreamError
from engine.service import BoardService
from gateway.settings import Settings
from projections import excalidraw, svg
from projections.history import BoardHistory, import_scene
from projections.sqlite_archive import SqliteArchive
from projections.sqlite_store import SqliteProjectionStore

COMMANDS = ("history", "replay", "export", "import")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the history subcommands."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("board", help="board id")
        p.add_argument("--url", default=os.environ.get("INKSTREAM_URL"), help="a running server (INKSTREAM_URL)")
        p.add_argument("--data-dir", type=Path, help="read the embedded data dir directly (default when no --url)")

    p = sub.add_parser("history", help="list a board's versions: time, author, shapes added/changed/removed")
    common(p)
    p.add_argument("--after", type=int, help="versions after this one, oldest first")
    p.add_argument("--before", type=int, help="versions before this one, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print the API's JSON")

    p = sub.add_parser("replay", help="the board as it was at a version (JSON, or the Yjs state with --yjs)")
    common(p)
    p.add_argument("--version", type=int, help="version (default: the latest)")
    p.add_argument("--at", help="ISO-8601 time: the last version at or before it")
    p.add_argument("--yjs", action="store_true", help="write the Yjs update instead of JSON")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")

    p = sub.add_parser("export", help="export a board (or a version of it) as json, svg or excalidraw")
    common(p)
    p.add_argument("--format", choices=("json", "svg", "excalidraw"), default="json")
    p.add_argument("--version", type=int, help="version (default: the latest)")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")

    p = sub.add_parser("import", help="add the shapes of an .excalidraw scene to a board")
    common(p)
    p.add_argument("file", type=Path, help="the .excalidraw file")
    p.add_argument("--user", default="anonymous", help="author recorded for the new version")


def main(args: argparse.Namespace) -> int:
    """Run one history subcommand; exit status 0 on success, 1 on an error the user can act on."""
    try:
        if args.url:
            output = _remote(args)
        else:
            output = asyncio.run(_local(args))
    except (InkstreamError, ValueError, OSError) as exc:
        print(f"inkstream {args.command}: {exc}", file=sys.stderr)
        return 1
    _emit(output, getattr(args, "out", None))
    return 0


def _emit(output: bytes | str, out: Path | None) -> None:
    data = output.encode() if isinstance(output, str) else output
    if out is not None:
        out.write_bytes(data)
        print(f"wrote {len(data)} bytes to {out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


def _listing(body: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return _dump(body)
    lines = [f"board {body['id']}: {body['latest']} versions"]
    for v in body["versions"]:
        s = v["summary"]
        what = "(not projected yet)" if s is None else f"+{s['added']} ~{s['changed']} -{s['removed']}"
        if s and s["meta"]:
            what += " meta"
        lines.append(f"{v['version']:>8}  {v['time']}  {v['user']:<16} {what}")
    return "\n".join(lines) + "\n"


# -- over HTTP -----------------------------------------------------------------------------------


def _http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("detail", detail)
        except ValueError:
            pass
        raise ValueError(f"{exc.code}: {detail}") from None


def _remote(args: argparse.Namespace) -> bytes | str:
    base = f"{args.url.rstrip('/')}/api/boards/{urllib.parse.quote(args.board, safe='')}"

    def query(**params: Any) -> str:
        kept = {k: v for k, v in params.items() if v is not None}
        return "?" + urllib.parse.urlencode(kept) if kept else ""

    if args.command == "history":
        body = json.loads(_http(base + "/versions" + query(after=args.after, before=args.before, limit=args.limit)))
        return _listing(body, args.json)
    if args.command == "replay":
        path = "/state" if args.yjs else ""
        version = args.version
        if version is None and args.at is None:
            version = json.loads(_http(base))["version"]
        return _http(base + path + query(version=version, at=args.at))
    if args.command == "export":
        return _http(base + "/export" + query(format=args.format, version=args.version))
    scene = args.file.read_bytes()
    headers = {"content-type": "application/json", "x-inkstream-user": args.user}
    return _dump(json.loads(_http(base + "/import", data=scene, headers=headers)))


# -- the data dir directly -----------------------------------------------------------------------


@asynccontextmanager
async def _opened(data_dir: Path, write: bool) -> AsyncIterator[tuple[SqliteEventLog, SqliteProjectionStore]]:
    """The data dir's log and projections; `write` opens the log for appends (takes the writer lock,
    DataDirInUse if a server or another command holds it), otherwise it is only read."""
    if not (data_dir / "events.db").exists():
        raise ValueError(f"no Inkstream data in {data_dir} (give --data-dir or --url)")
    log = SqliteEventLog(data_dir / "events.db", reader_only=not write)
    store = SqliteProjectionStore(data_dir / "projections.db")
    await log.start()
    try:
        await store.start()
    except BaseException:
        await log.close()
        raise
    try:
        yield log, store
    finally:
        await log.close()
        await store.close()


async def _local(args: argparse.Namespace) -> bytes | str:
    data_dir = args.data_dir or Settings.load().data_dir
    async with _opened(data_dir, write=args.command == "import") as (log, store):
        history = BoardHistory(SqliteArchive(log, store))
        board = args.board
        if args.command == "history":
            rows = await history.versions(board, after=args.after, before=args.before, limit=args.limit)
            versions = [
                {
                    "version": r.version,
                    "time": _iso(r.time),
                    "client": r.client,
                    "user": r.user,
                    "summary": r.summary,
                }
                for r in rows
            ]
            body = {"id": board, "latest": await log.head(board), "versions": versions}
            return _listing(body, args.json)
        if args.command == "replay":
            at = _parse_time(args.at) if args.at else None
            version = await history.resolve(board, version=args.version, at=at)
            if args.yjs:
                return await history.state_at(board, version)
            return _dump(await history.render_at(board, version))
        if args.command == "export":
            version = await history.resolve(board, version=args.version)
            rendered = await history.render_at(board, version)
            if args.format == "svg":
                return svg.to_svg(rendered)
            return _dump(excalidraw.to_scene(rendered["shapes"]) if args.format == "excalidraw" else rendered)
        service = BoardService(log, store)
        try:
            scene = json.loads(args.file.read_bytes())
            event, imported = await import_scene(service, board, scene, args.user)
        finally:
            await service.close()
        version = event.version if event is not None else await log.head(board)
        return _dump({"version": version, "imported": len(imported.shapes), "skipped": imported.skipped})


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_time(raw: str) -> float:
    when = dt.datetime.fromisoformat(raw)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
