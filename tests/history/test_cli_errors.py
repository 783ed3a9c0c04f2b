"""The `inkstream` CLI never answers a user's mistake with a traceback: one line on stderr, exit status 1.

Every case runs the real command (`python -m gateway`, or the `inkstream` console script) in a
subprocess, against a real `inkstream serve` for `--url` and its data dir for `--data-dir`. The
history commands must behave the same both ways: same output, same checks, same words.
"""

from __future__ import annotations

import http.server
import json
import os
import pty
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.cluster import DISTRIBUTED_MODULES, _importable
from tests.conftest import ROOT, InkstreamServer, free_port, wait_until
from tests.history.support import projected, replica, shapes

CONSOLE_SCRIPT = Path(sys.executable).with_name("inkstream")
SCENE = {"type": "excalidraw", "elements": [{"type": "rectangle", "id": "r", "x": 5, "y": 6, "width": 7, "height": 8}]}
BOARD = "clierr"

needs_extras = pytest.mark.skipif(
    not all(_importable(m) for m in DISTRIBUTED_MODULES), reason="the [distributed] extras are not installed"
)


UNSET = ("INKSTREAM_URL", "INKSTREAM_DATA_DIR", "INKSTREAM_LOG_LEVEL")


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in UNSET}, **extra}


def cli(*args: str, env: dict[str, str] | None = None, stdout: int = subprocess.PIPE, script: bool = False):
    """Run `inkstream ARGS` (python -m gateway, or the console script) and capture what it says."""
    argv = [str(CONSOLE_SCRIPT)] if script and CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "gateway"]
    return subprocess.run(
        [*argv, *args], cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, env=env or _env(), timeout=120
    )


def one_line_error(result: subprocess.CompletedProcess[bytes], *fragments: str) -> str:
    """Assert a clean failure: exit status 1, exactly one line on stderr containing every fragment."""
    err = result.stderr.decode()
    assert result.returncode == 1, (result.returncode, err)
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InkstreamServer]:
    """One real `inkstream serve` with a board of two versions, imported through the CLI, projected."""
    server = InkstreamServer(data_dir=tmp_path_factory.mktemp("cli-errors") / "data")
    server.start()
    try:
        scene = server.data_dir.parent / "scene.excalidraw"
        scene.write_text(json.dumps(SCENE))
        for user in ("ann", "bob"):
            result = cli("import", BOARD, str(scene), "--url", server.url, "--user", user)
            assert result.returncode == 0, result.stderr
        with httpx.Client(base_url=server.url) as client:
            wait_until(lambda: projected(client, BOARD), what="projected")
        yield server
    finally:
        server.stop()


def both(server: InkstreamServer) -> tuple[list[str], list[str]]:
    return ["--url", server.url], ["--data-dir", str(server.data_dir)]


def _steady(scene: bytes) -> str:
    body = json.loads(scene)
    for element in body["elements"]:
        for key in ("seed", "versionNonce", "updated"):
            element.pop(key)
    return json.dumps(body, indent=2) + "\n"


def test_url_and_data_dir_print_the_same(server: InkstreamServer) -> None:
    url, data = both(server)
    listing = json.loads(cli("history", BOARD, "--json", *url).stdout)
    assert [v["user"] for v in listing["versions"]] == ["ann", "bob"]
    t1 = listing["versions"][0]["time"]
    for args in (
        ["history", BOARD],
        ["history", BOARD, "--json"],
        ["history", BOARD, "--before", "3", "--limit", "1", "--json"],
        ["replay", BOARD],
        ["replay", BOARD, "--version", "1"],
        ["replay", BOARD, "--at", t1],
        ["export", BOARD],
        ["export", BOARD, "--format", "excalidraw", "--version", "1"],
        ["export", BOARD, "--format", "svg", "--at", t1],
    ):
        over_http, direct = cli(*args, *url), cli(*args, *data)
        assert over_http.returncode == 0 and direct.returncode == 0, (args, over_http.stderr, direct.stderr)
        if "excalidraw" in args:  # elements carry random seeds and the export time
            assert _steady(over_http.stdout) == _steady(direct.stdout)
        else:
            assert over_http.stdout == direct.stdout, args
        if args[0] != "history" or "--json" in args:
            if "svg" not in args:
                assert over_http.stdout.endswith(b"}\n") and b'\n  "' in over_http.stdout, args  # pretty JSON
    page = json.loads(cli("history", BOARD, "--before", "3", "--limit", "1", "--json", *data).stdout)
    assert page["next"] == {"before": 2} and page["projected"] == 2  # the API's page, not a local imitation

    # export --at: the version at that time, as replay --at gives it
    for via in (url, data):
        at_v1 = json.loads(cli("export", BOARD, "--at", t1, *via).stdout)
        assert at_v1["version"] == 1 and len(at_v1["shapes"]) == 1
        assert at_v1 == json.loads(cli("replay", BOARD, "--at", t1, *via).stdout)
        latest = cli("replay", BOARD, "--yjs", *via)  # stdout is a pipe here: binary is fine
        assert latest.returncode == 0 and len(shapes(replica(latest.stdout))) == 2


@pytest.mark.parametrize(
    ("args", "api_path"),
    [
        (["history", "bad!id"], "/api/boards/bad!id/versions"),
        (["history", BOARD, "--limit", "0"], f"/api/boards/{BOARD}/versions?limit=0"),
        (["history", BOARD, "--limit", "1001"], f"/api/boards/{BOARD}/versions?limit=1001"),
        (["history", BOARD, "--after", "-1"], f"/api/boards/{BOARD}/versions?after=-1"),
        (["history", BOARD, "--after", "1", "--before", "2"], f"/api/boards/{BOARD}/versions?after=1&before=2"),
        (["history", "nosuchboard"], "/api/boards/nosuchboard/versions"),
        (["replay", BOARD, "--at", "notadate"], f"/api/boards/{BOARD}?at=notadate"),
        (["replay", BOARD, "--version", "-1"], f"/api/boards/{BOARD}?version=-1"),
        (["replay", BOARD, "--version", "9"], f"/api/boards/{BOARD}?version=9"),
        (["replay", BOARD, "--version", "1", "--at", "2026-01-01"], f"/api/boards/{BOARD}?version=1&at=2026-01-01"),
        (["export", BOARD, "--at", "1999-01-01T00:00:00Z"], f"/api/boards/{BOARD}/export?at=1999-01-01T00:00:00Z"),
        (["export", "nosuchboard", "--format", "svg"], "/api/boards/nosuchboard/export?format=svg"),
    ],
)
def test_url_and_data_dir_refuse_the_same_in_the_apis_words(
    server: InkstreamServer, args: list[str], api_path: str
) -> None:
    url, data = both(server)
    detail = httpx.get(server.url + api_path).json()["detail"]
    over_http = one_line_error(cli(*args, *url), detail)
    assert one_line_error(cli(*args, *data), detail) == over_http


class _NotInkstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/versions?limit=50"):
            body, status = b"hello, I am a static site", 200
        else:
            body, status = b"<html>\n<body>Not Found</body>\n</html>\n", 404
        self.send_response(status)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_url_mistakes(server: InkstreamServer) -> None:
    nothing = f"http://127.0.0.1:{free_port()}"
    one_line_error(cli("replay", "b1", "--url", nothing), f"cannot reach {nothing} (connection refused)", "serve")
    one_line_error(cli("history", "b1", "--url", "not-a-url"), "--url must be http(s)://HOST:PORT", "'not-a-url'")
    one_line_error(cli("history", "b1", "--url", "http://127.0.0.1:99999"), "--url must be http(s)://HOST:PORT")
    one_line_error(cli("export", "b1", "--url", "ftp://127.0.0.1:21"), "--url must be http(s)://HOST:PORT")
    one_line_error(cli("history", "b1", env=_env(INKSTREAM_URL="nope")), "--url must be http(s)://HOST:PORT")
    one_line_error(cli("history", "b1", "--url", server.url, "--data-dir", "x"), "either --url or --data-dir")
    # --data-dir wins over INKSTREAM_URL when given
    direct = cli("history", BOARD, "--data-dir", str(server.data_dir), env=_env(INKSTREAM_URL="nope"))
    assert direct.returncode == 0, direct.stderr

    # a real HTTP server that is not Inkstream
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotInkstream)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        other = f"http://127.0.0.1:{httpd.server_address[1]}"
        one_line_error(cli("history", "b1", "--url", other), f"{other} did not answer with JSON")
        one_line_error(cli("replay", "b1", "--url", other), f"{other} answered HTTP 404")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_out_that_cannot_be_written(server: InkstreamServer, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for via in both(server):
        for out in (Path("/nonexistent/dir/x.json"), tmp_path, a_file / "x.json"):
            one_line_error(cli("replay", BOARD, *via, "--out", str(out)), f"cannot write --out {out}")
            one_line_error(cli("export", BOARD, "--format", "svg", *via, "--out", str(out)), "cannot write --out")
        good = tmp_path / f"ok-{via[0].strip('-')}.json"
        written = cli("replay", BOARD, "--yjs", *via, "--out", str(good))
        assert written.returncode == 0 and b"wrote" in written.stderr and good.stat().st_size > 0


def test_replay_yjs_refuses_a_terminal(server: InkstreamServer) -> None:
    for via in both(server):
        master, slave = pty.openpty()
        try:
            result = cli("replay", BOARD, "--yjs", *via, stdout=slave)
            one_line_error(result, "binary output", "--out FILE or redirect")
            ready, _, _ = select.select([master], [], [], 0)
            assert not ready  # nothing was written to the terminal
        finally:
            os.close(master)
            os.close(slave)


def test_import_mistakes_read_the_same_both_ways(server: InkstreamServer, tmp_path: Path) -> None:
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello")
    not_scene = tmp_path / "list.json"
    not_scene.write_text("[1, 2]")
    api = httpx.post(f"{server.url}/api/boards/{BOARD}/import", content=b"[1, 2]").json()["detail"]
    for via in both(server):
        one_line_error(cli("import", BOARD, str(tmp_path / "missing.excalidraw"), *via), "cannot read", "missing")
        one_line_error(cli("import", BOARD, str(not_json), *via), f"{not_json} is not JSON")
        one_line_error(cli("import", BOARD, str(not_scene), *via), api)
        one_line_error(cli("import", "bad/id", str(not_scene), *via), "board id may contain only")


def test_a_closed_stdout_is_not_a_traceback(server: InkstreamServer) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "export", BOARD, "--format", "svg", "--url", server.url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` that has already exited
    err = proc.stderr.read()
    assert proc.wait(timeout=120) != 0 and b"Traceback" not in err, err


# -- every subcommand's settings ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "projector", "gateway", "processor", "cluster"])
def test_log_level_is_checked_by_every_server_command(command: str) -> None:
    if command != "serve" and not all(_importable(m) for m in DISTRIBUTED_MODULES):
        pytest.skip("the [distributed] extras are not installed")
    one_line_error(cli(command, "--log-level", "LOUD"), "log_level", "'LOUD'", "DEBUG, INFO, WARNING")
    one_line_error(cli(command, env=_env(INKSTREAM_LOG_LEVEL="loud")), "INKSTREAM_LOG_LEVEL", "'loud'")


@needs_extras
def test_distributed_flags_that_cannot_work() -> None:
    one_line_error(cli("processor", "--batch", "0"), "--batch must be positive")
    one_line_error(cli("projector", "--board-interval", "0"), "--board-interval must be positive")
    one_line_error(cli("cluster", "--gateways", "0"), "--gateways must be positive")
    one_line_error(cli("cluster", "--base-port", "65535", "--gateways", "2"), "no room for 2 gateways")
    one_line_error(cli("gateway", "--port", "99999"), "port must be 1-65535")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        one_line_error(cli("gateway", "--port", port), f"cannot listen on 127.0.0.1:{port}")
        one_line_error(cli("cluster", "--base-port", port, "--gateways", "1"), f"cannot listen on 127.0.0.1:{port}")


def test_distributed_commands_without_the_extras(server: InkstreamServer, tmp_path: Path) -> None:
    """As after a plain `pip install .`: `import redis` and `import aiokafka` fail in every process."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NotInstalled:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('redis', 'aiokafka'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _NotInstalled())\n"
    )
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    env = _env(PYTHONPATH=path)
    blocked = subprocess.run([sys.executable, "-c", "import redis"], env=env, capture_output=True)
    assert blocked.returncode != 0 and b"No module named 'redis'" in blocked.stderr
    for command in ("gateway", "processor", "projector", "cluster"):
        result = cli(command, env=env, script=True)
        assert result.stderr.decode() == (
            f"inkstream {command} needs the distributed extras: pip install 'inkstream[distributed]' "
            "(not installed: aiokafka, redis)\n"
        )
        assert result.returncode == 1
    # what the embedded mode needs is all there
    listing = cli("history", BOARD, "--data-dir", str(server.data_dir), env=env, script=True)
    assert listing.returncode == 0 and b"2 versions" in listing.stdout, listing.stderr
