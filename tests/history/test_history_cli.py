"""`inkstream history | replay | export | import`, against a running server (--url) and a data dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from engine.model import render
from tests.conftest import ROOT, InkstreamServer, wait_until
from tests.history.support import add_shape, move, post, projected, replica


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, timeout=120)


def test_cli_against_server_and_data_dir(inkstream_server: InkstreamServer, tmp_path: Path) -> None:
    url = inkstream_server.url
    doc = replica()
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(bytes(e.update)))
    add_shape(doc, "a")
    move(doc, "a", 3, 4)
    with httpx.Client(base_url=url) as client:
        for u in updates:
            post(client, "cli", u, user="ann")
        wait_until(lambda: projected(client, "cli"), what="projected")

    listing = run("history", "cli", "--url", url)
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout.decode()
    assert "2 versions" in text and "ann" in text and "+1 ~0 -0" in text and "+0 ~1 -0" in text
    as_json = json.loads(run("history", "cli", "--url", url, "--json").stdout)
    assert [v["version"] for v in as_json["versions"]] == [1, 2]

    one = json.loads(run("replay", "cli", "--version", "1", "--url", url).stdout)
    assert one["shapes"][0]["x"] == 0.0
    out = tmp_path / "v2.bin"
    assert run("replay", "cli", "--version", "2", "--yjs", "--out", str(out), "--url", url).returncode == 0
    assert render(replica(out.read_bytes()), "cli", 2)["shapes"][0]["x"] == 3.0
    missing = run("replay", "cli", "--version", "9", "--url", url)
    assert missing.returncode == 1  # the API's words, as with --data-dir; no status code
    assert missing.stderr == b"inkstream replay: board cli has versions 1..2; there is no version 9\n"

    svg = run("export", "cli", "--format", "svg", "--url", url).stdout.decode()
    assert svg.startswith("<?xml") and 'data-shape-id="a"' in svg
    scene = tmp_path / "scene.excalidraw"
    assert run("export", "cli", "--format", "excalidraw", "--out", str(scene), "--url", url).returncode == 0
    imported = json.loads(run("import", "copy", str(scene), "--url", url, "--user", "bob").stdout)
    assert imported["version"] == 1 and imported["imported"] == 1

    # the data dir directly (read-only next to the running server)
    data = str(inkstream_server.data_dir)
    local = json.loads(run("history", "cli", "--data-dir", data, "--json").stdout)
    assert [v["version"] for v in local["versions"]] == [1, 2]
    assert json.loads(run("replay", "cli", "--version", "1", "--data-dir", data).stdout) == one
    assert run("export", "cli", "--format", "svg", "--data-dir", data).stdout.decode() == svg

    # import into a data dir no server uses
    inkstream_server.stop()
    offline = json.loads(run("import", "offline", str(scene), "--data-dir", data).stdout)
    assert offline["version"] == 1 and offline["imported"] == 1
    inkstream_server.start()
    with httpx.Client(base_url=url) as client:
        assert client.get("/api/boards/offline").json()["shapes"][0]["type"] == "rect"
    bad = run("history", "cli", "--data-dir", str(tmp_path / "nothing"))
    assert bad.returncode == 1 and b"no Inkstream data" in bad.stderr
