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
import http.client
import json
import os
import socket
import sqlite3
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from engine.adapters.sqlite_log import SqliteEventLog
from engine.board_id import validate_board_id
from engine.errors import InkstreamError
from engine.service import BoardService
from gateway.settings import Settings
from projections import excalidraw, svg
from projections.history import BoardHistory, import_scene
from projections.history_requests import import_result, page, version_or_at, versions_page
from projections.sqlite_archive import SqliteArchive
from projections.sqlite_store import SqliteProjectionStore

COMMANDS = ("history", "replay", "export", "import")


class CliError(Exception):
    """A mistake in what was asked, or where: reported in one line, exit status 1."""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the history subcommands."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("board", help="board id")
        p.add_argument("--url", help="a running server, http(s)://HOST:PORT (INKSTREAM_URL)")
        p.add_argument("--data-dir", type=Path, help="read the embedded data dir directly (default when no --url)")

    def version(p: argparse.ArgumentParser) -> None:
        p.add_argument("--version", type=int, help="version (default: the latest)")
        p.add_argument("--at", help="ISO-8601 time, e.g. 2026-12-03T15:00:00Z: the last version at or before it")
        p.add_argument("--out", type=Path, help="write to this file instead of stdout")

    p = sub.add_parser("history", help="list a board's versions: time, author, shapes added/changed/removed")
    common(p)
    p.add_argument("--after", type=int, help="versions after this one, oldest first")
    p.add_argument("--before", type=int, help="versions before this one, newest first")
    p.add_argument("--limit", type=int, default=50, help="versions per page, 1-1000 (default 50)")
    p.add_argument("--json", action="store_true", help="print the API's JSON")

    p = sub.add_parser("replay", help="the board as it was at a version (JSON, or the Yjs state with --yjs)")
    common(p)
    version(p)
    p.add_argument("--yjs", action="store_true", help="write the Yjs update (binary: --out FILE or redirect stdout)")

    p = sub.add_parser("export", help="export a board (or a version of it) as json, svg or excalidraw")
    common(p)
    p.add_argument("--format", choices=("json", "svg", "excalidraw"), default="json")
    version(p)

    p = sub.add_parser("import", help="add the shapes of an .excalidraw scene to a board")
    common(p)
    p.add_argument("file", type=Path, help="the .excalidraw file")
    p.add_argument("--user", default="anonymous", help="author recorded for the new version")


def main(args: argparse.Namespace) -> int:
    """Run one history subcommand; exit status 0 on success, 1 on an error the user can act on."""
    try:
        _check(args)
        if args.url:
            output = _remote(args)
        else:
            try:
                output = asyncio.run(_local(args))
            except sqlite3.Error as exc:
                raise CliError(f"cannot read the data in {args.data_dir}: {exc}") from None
        _emit(output, getattr(args, "out", None))
    except BrokenPipeError:  # stdout closed early (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    except (CliError, InkstreamError, ValueError, OSError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"inkstream {args.command}: {message}", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> None:
    """Refuse a bad request before reaching anything, with the same rules (and words) as the HTTP API."""
    if args.url is not None and args.data_dir is not None:
        raise CliError("give either --url or --data-dir, not both")
    if args.url is None and args.data_dir is None:
        args.url = os.environ.get("INKSTREAM_URL") or None
    if args.url is not None:
        args.url = _base_url(args.url)
    else:
        args.data_dir = args.data_dir or Settings.load().data_dir
    validate_board_id(args.board)
    if args.command == "history":
        args.after, args.before, args.limit = page(args.after, args.before, args.limit)
    if args.command in ("replay", "export"):
        args.version, args.when = version_or_at(args.version, args.at)
        if args.out is not None:
            _check_out(args.out)
        elif args.command == "replay" and args.yjs and sys.stdout.isatty():
            raise CliError("binary output (a Yjs update): use --out FILE or redirect stdout")
    if args.command == "import":
        args.scene = _read_scene(args.file)


def _base_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 -- raises ValueError if the port is not a number in 0-65535
    except ValueError:
        parts = parts._replace(scheme="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise CliError(f"--url must be http(s)://HOST:PORT, not {raw!r}")
    return url


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise CliError(f"cannot write --out {out}: it is a directory")
    if not out.parent.is_dir():
        raise CliError(f"cannot write --out {out}: there is no directory {out.parent}")


def _read_scene(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        scene = json.loads(data)
    except ValueError:
        raise CliError(f"{path} is not JSON (an .excalidraw scene is)") from None
    excalidraw.from_scene(scene)  # InvalidScene, worded as the API's answer, before reaching the board
    return data


def _emit(output: bytes | str, out: Path | None) -> None:
    data = output.encode() if isinstance(output, str) else output
    if out is not None:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise CliError(f"cannot write --out {out}: {exc.strerror or exc}") from None
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


def _http(base: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(base + path, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        raise CliError(_refused(base, exc)) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        raise CliError(_unreachable(base, exc)) from None


def _refused(base: str, exc: urllib.error.HTTPError) -> str:
    """The API's own words for an error answer ({"error", "detail"}), else the HTTP status."""
    try:
        detail = json.loads(exc.read())["detail"]
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    return f"{base} answered HTTP {exc.code} {exc.reason}; is it an Inkstream server?"


def _unreachable(base: str, exc: Exception) -> str:
    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot reach {base} (connection refused); is `inkstream serve` running?"
    if isinstance(reason, socket.gaierror):
        return f"cannot reach {base} (unknown host: {reason.strerror or reason})"
    if isinstance(reason, TimeoutError):
        return f"cannot reach {base} (no answer in time)"
    why = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return f"cannot reach {base} ({why})"


def _json(base: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise CliError(f"{base} did not answer with JSON; is it an Inkstream server?") from None


def _remote(args: argparse.Namespace) -> bytes | str:
    base = args.url
    board = f"/api/boards/{urllib.parse.quote(args.board, safe='')}"

    def query(**params: Any) -> str:
        kept = {k: v for k, v in params.items() if v is not None}
        return "?" + urllib.parse.urlencode(kept) if kept else ""

    if args.command == "history":
        page_path = "/versions" + query(after=args.after, before=args.before, limit=args.limit)
        return _listing(_json(base, _http(base, board + page_path)), args.json)
    if args.command == "replay":
        version = args.version
        if version is None and args.at is None:
            latest = _json(base, _http(base, board))
            version = latest.get("version") if isinstance(latest, dict) else None
            if not isinstance(version, int):
                raise CliError(f"{base} did not answer like an Inkstream server (no board version)")
        answer = _http(base, board + ("/state" if args.yjs else "") + query(version=version, at=args.at))
        return answer if args.yjs else _dump(_json(base, answer))
    if args.command == "export":
        answer = _http(base, board + "/export" + query(format=args.format, version=args.version, at=args.at))
        return answer if args.format == "svg" else _dump(_json(base, answer))
    headers = {"content-type": "application/json", "x-inkstream-user": args.user}
    return _dump(_json(base, _http(base, board + "/import", data=args.scene, headers=headers)))


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
            return _listing(await versions_page(history, board, args.after, args.before, args.limit), args.json)
        if args.command == "replay":
            version = await history.resolve(board, version=args.version, at=args.when)
            if args.yjs:
                return await history.state_at(board, version)
            return _dump(await history.render_at(board, version))
        if args.command == "export":
            version = await history.resolve(board, version=args.version, at=args.when)
            rendered = await history.render_at(board, version)
            if args.format == "svg":
                return svg.to_svg(rendered)
            return _dump(excalidraw.to_scene(rendered["shapes"]) if args.format == "excalidraw" else rendered)
        service = BoardService(log, store)
        try:
            event, imported = await import_scene(service, board, json.loads(args.scene), args.user)
        finally:
            await service.close()
        version = event.version if event is not None else await log.head(board)
        return _dump(import_result(version, event, imported))
