"""One writer process per data dir: a second `inkstream serve` or `inkstream import --data-dir` on a
directory a server uses is refused with a message (nothing written), reads keep working next to
it, and a server killed with -9 restarts at once on the same directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from pycrdt import Doc

from tests.conftest import ROOT, InkstreamServer, free_port, wait_until
from tests.gateway.test_projector_process import _alive, _children, _post_shape, _projected

IN_USE = "is in use by another inkstream process"


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def _latest(server: InkstreamServer, board: str) -> int:
    with urllib.request.urlopen(f"{server.url}/api/boards/{board}/versions", timeout=10) as r:
        return int(json.loads(r.read())["latest"])


def test_a_second_serve_on_a_used_data_dir_exits_with_a_message(inkstream_server: InkstreamServer) -> None:
    server = inkstream_server
    assert server.proc is not None
    second = run("serve", "--port", str(free_port()), "--data-dir", str(server.data_dir))
    assert second.returncode != 0
    assert "Traceback" not in second.stderr, second.stderr
    [line] = second.stderr.strip().splitlines()  # one line: which dir, who holds it, what to do
    assert line.startswith(f"inkstream: data directory {server.data_dir} {IN_USE} (pid {server.proc.pid}")
    assert "another --data-dir" in line
    assert _post_shape(server, "two-serves", Doc(), "a") == 1  # the running server is untouched


def test_import_next_to_a_server_is_refused_and_reads_keep_working(
    inkstream_server: InkstreamServer, tmp_path: Path
) -> None:
    server = inkstream_server
    assert server.proc is not None
    data = str(server.data_dir)
    doc: Doc = Doc()
    assert _post_shape(server, "imp", doc, "a") == 1
    assert _post_shape(server, "imp", doc, "b") == 2
    scene = tmp_path / "scene.excalidraw"
    assert run("export", "imp", "--format", "excalidraw", "--out", str(scene), "--url", server.url).returncode == 0

    refused = run("import", "imp", str(scene), "--data-dir", data)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr, refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"inkstream import: data directory {data} {IN_USE} (pid {server.proc.pid}")
    assert f"--url {server.url}" in line
    assert refused.stdout == ""

    # Read-only commands on the data dir work meanwhile, and nothing was written.
    listing = run("history", "imp", "--data-dir", data, "--json")
    assert listing.returncode == 0, listing.stderr
    assert [v["version"] for v in json.loads(listing.stdout)["versions"]] == [1, 2]
    replay = run("replay", "imp", "--data-dir", data)
    assert replay.returncode == 0 and len(json.loads(replay.stdout)["shapes"]) == 2
    assert run("export", "imp", "--format", "svg", "--data-dir", data).returncode == 0

    # The server goes on numbering versions (the bug: every POST answered 503 after the import).
    assert _post_shape(server, "imp", doc, "c") == 3
    assert _latest(server, "imp") == 3
    # Through the server, the import is fine.
    via_url = run("import", "imp", str(scene), "--url", server.url)
    assert via_url.returncode == 0, via_url.stderr
    assert json.loads(via_url.stdout)["version"] == 4
    assert _post_shape(server, "imp", doc, "d") == 5


def test_kill9_then_immediate_restart_while_the_old_projector_still_runs(tmp_path: Path) -> None:
    server = InkstreamServer(data_dir=tmp_path / "data")
    server.start()
    old_child: int | None = None
    try:
        assert server.proc is not None
        pid = server.proc.pid
        doc: Doc = Doc()
        version = _post_shape(server, "crash", doc, "a")
        wait_until(lambda: _projected(server, "crash") >= version, what="the first shape projected")
        [old_child] = _children(pid)
        os.kill(old_child, signal.SIGSTOP)  # the orphan cannot exit before the restart: deterministic
        server.kill9()

        server.start()  # at once, same data dir and port; the lock died with the killed process
        assert _alive(old_child)  # its projector child outlived it (stopped) and holds no lock
        assert _post_shape(server, "crash", doc, "b") == 2
        refused = run("serve", "--port", str(free_port()), "--data-dir", str(server.data_dir))
        assert refused.returncode != 0 and f"(pid {server.proc.pid}" in refused.stderr  # the new one holds it

        os.kill(old_child, signal.SIGCONT)  # it sees its parent gone and exits
        wait_until(lambda: not _alive(old_child), timeout=15, what="the orphaned projector to exit")
        old_child = None
        assert _post_shape(server, "crash", doc, "c") == 3
        wait_until(lambda: _projected(server, "crash") >= 3, what="the new projector to catch up")
    finally:
        if old_child is not None:
            os.kill(old_child, signal.SIGKILL)
        server.stop()
