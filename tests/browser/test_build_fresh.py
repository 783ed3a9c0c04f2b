"""The committed web app build (gateway/static/app) must match its source (gateway/web).

Recomputes the source hash exactly as gateway/web/build.mjs does — sha256 over
"<path>\\0<sha256 hex of file>\\n" for build.mjs, index.html, package.json,
package-lock.json and every file under src/, sorted by path — and compares it with
the hash recorded in gateway/static/app/build-manifest.json. No npm needed.
Fix a failure with: cd gateway/web && npm ci && npm run build
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "gateway" / "web"
APP = ROOT / "gateway" / "static" / "app"
MANIFEST = APP / "build-manifest.json"
REBUILD = "stale web app build: run `cd gateway/web && npm ci && npm run build` and commit gateway/static/app"


def source_files() -> list[str]:
    files = ["build.mjs", "index.html", "package.json", "package-lock.json"]
    files += [p.relative_to(WEB).as_posix() for p in (WEB / "src").rglob("*") if p.is_file()]
    return sorted(files)


def source_hash(files: list[str]) -> str:
    h = hashlib.sha256()
    for f in files:
        digest = hashlib.sha256((WEB / f).read_bytes()).hexdigest()
        h.update(f"{f}\0{digest}\n".encode())
    return h.hexdigest()


def manifest() -> dict:
    assert MANIFEST.is_file(), f"missing {MANIFEST.relative_to(ROOT)}; {REBUILD}"
    return json.loads(MANIFEST.read_text())


def test_build_matches_source() -> None:
    m = manifest()
    files = source_files()
    assert m["sources"] == files, f"source file list changed; {REBUILD}"
    assert m["source_hash"] == source_hash(files), REBUILD


def test_build_outputs_exist_and_are_referenced() -> None:
    m = manifest()
    index = (APP / "index.html").read_text()
    for kind in ("js", "css"):
        name = m["outputs"][kind]
        assert (APP / name).is_file(), f"missing {name}; {REBUILD}"
        assert f"/static/app/{name}" in index, f"index.html does not reference {name}; {REBUILD}"
    # nothing else (an old hashed bundle) lingers in the build directory
    expected = {m["outputs"]["js"], m["outputs"]["css"], "index.html", "build-manifest.json"}
    assert {p.name for p in APP.iterdir()} == expected


def test_index_has_no_unresolved_placeholders() -> None:
    index = (APP / "index.html").read_text()
    assert not re.search(r"%[A-Z]+%", index)
