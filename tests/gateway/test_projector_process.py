"""The embedded projector runs in a child process of `inkstream serve`: it keeps projections and
history current, is restarted if it dies, and never outlives its gateway (not even a kill -9)."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

from pycrdt import Doc, Map

from tests.conftest import InkstreamServer, wait_until


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"projections.projector_process" in cmdline:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _post_shape(server: InkstreamServer, board: str, doc: Doc, shape: str) -> int:
    shapes = doc.get("shapes", type=Map)
    before = doc.get_state()
    shapes[shape] = Map({"type": "rect", "x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0})
    request = urllib.request.Request(
        f"{server.url}/api/boards/{board}/updates",
        data=doc.get_update(before),
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return int(json.loads(r.read())["version"])


def _projected(server: InkstreamServer, board: str) -> int:
    with urllib.request.urlopen(f"{server.url}/api/boards/{board}/versions", timeout=10) as r:
        return int(json.loads(r.read())["projected"])


def _listed_shapes(server: InkstreamServer, board: str) -> int | None:
    with urllib.request.urlopen(f"{server.url}/api/boards", timeout=10) as r:
        return next((b["shapes"] for b in json.loads(r.read()) if b["id"] == board), None)


def test_projector_child_is_restarted_and_catches_up(inkstream_server: InkstreamServer) -> None:
    server = inkstream_server
    assert server.proc is not None
    wait_until(lambda: len(_children(server.proc.pid)) == 1, what="the projector child process")
    [child] = _children(server.proc.pid)
    doc: Doc = Doc()
    version = _post_shape(server, "proj-restart", doc, "a")
    wait_until(lambda: _projected(server, "proj-restart") >= version, what="history of the first shape")

    os.kill(child, signal.SIGKILL)
    version = _post_shape(server, "proj-restart", doc, "b")  # written while no projector runs
    wait_until(lambda: [p for p in _children(server.proc.pid) if p != child], timeout=15, what="a new projector")
    wait_until(lambda: _projected(server, "proj-restart") >= version, what="history after the restart")
    wait_until(lambda: _listed_shapes(server, "proj-restart") == 2, what="summary after the restart")


def test_projector_child_exits_with_its_gateway(tmp_path: Path) -> None:
    for ending in ("kill9", "stop"):
        server = InkstreamServer(data_dir=tmp_path / ending)
        server.start()
        try:
            assert server.proc is not None
            pid = server.proc.pid
            wait_until(lambda: len(_children(pid)) == 1, what="the projector child process")  # noqa: B023
            [child] = _children(pid)
            if ending == "kill9":
                server.kill9()
            else:
                server.stop()
            wait_until(lambda: not _alive(child), timeout=10, what=f"the projector to exit after {ending}")  # noqa: B023
        finally:
            server.stop()


def _threads(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def test_background_work_yields_the_cpu_to_the_gateway(inkstream_server: InkstreamServer) -> None:
    """The projector child (every thread of it) and the gateway's WAL checkpointer run SCHED_IDLE,
    so the gateway's event loop (a normal thread) preempts them whenever it wakes (engine.priority)."""
    server = inkstream_server
    assert server.proc is not None
    wait_until(lambda: len(_children(server.proc.pid)) == 1, what="the projector child process")
    [child] = _children(server.proc.pid)
    # (once it has started: its interpreter lowers its priority first thing, before any thread starts)
    wait_until(lambda: {os.sched_getscheduler(t) for t in _threads(child)} == {os.SCHED_IDLE}, what="SCHED_IDLE")
    version = _post_shape(server, "priority", Doc(), "a")  # work for it: the threads it starts inherit it
    wait_until(lambda: _projected(server, "priority") >= version, what="the shape projected")
    assert {os.sched_getscheduler(t) for t in _threads(child)} == {os.SCHED_IDLE}
    gateway = {t: os.sched_getscheduler(t) for t in _threads(server.proc.pid)}
    assert gateway[server.proc.pid] == os.SCHED_OTHER  # the main thread: the event loop
    assert os.SCHED_IDLE in gateway.values()  # the checkpointer
