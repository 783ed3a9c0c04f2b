"""Time to serve a join on a board with 100k updates, server-side and as a client sees it.

    python benchmarks/join_time.py [--updates 100000] [--shapes 2000] [--joins 20]

Starts `inkstream serve` on a fresh data dir and writes the board through a pycrdt y-websocket
client (tests/interop/yws_client.py): `--shapes` shapes created, then moves of random shapes, one
update per transaction, `--updates` in all. Then measures, with fresh pycrdt clients (empty doc):
- warm join: the board is in memory (another client is connected);
- cold join: first join after a server restart (load = latest checkpoint + the log after it);
- rejoin: a client that already has the whole state reconnects (step 2 is nearly empty).
Client-observed = sync step 1 sent -> sync step 2 received (before applying it). Server-side =
the gateway's `inkstream_join_seconds` histogram (time to compute the step 2), mean over the joins.
Prints the numbers and writes the "Join time" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from pycrdt import Doc, Map  # noqa: E402
from results_md import machine, replace_section, table  # noqa: E402
from yws_client import YWebsocketClient  # noqa: E402

BOARD = "join-bench"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`inkstream serve` as a subprocess."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait for /healthz."""
        exe = shutil.which("inkstream")
        cmd = [exe] if exe else [sys.executable, "-m", "gateway"]
        self.proc = subprocess.Popen(
            [*cmd, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            cwd=ROOT, stdout=open(self.data_dir.parent / "server.log", "ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.get("/healthz").status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("inkstream serve did not come up")

    def stop(self) -> None:
        """Terminate and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path: str):
        """GET on the server's HTTP API."""
        return urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30)

    def version(self) -> int:
        """The board's version (0 if unknown)."""
        try:
            with self.get(f"/api/boards/{BOARD}") as r:
                return int(json.load(r)["version"])
        except urllib.error.HTTPError:
            return 0

    def wait_projected(self, timeout: float = 300) -> float:
        """Wait until the projector has folded the board up to its head (checkpoints written); seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            with self.get(f"/api/boards/{BOARD}/versions") as r:
                info = json.load(r)
            if info["projected"] >= self.version():
                return time.monotonic() - t0
            time.sleep(0.1)
        raise TimeoutError("the projector did not catch up")

    def join_metric(self) -> tuple[float, float]:
        """(sum, count) of the inkstream_join_seconds histogram."""
        total = count = 0.0
        with self.get("/metrics") as r:
            for line in r.read().decode().splitlines():
                if line.startswith("inkstream_join_seconds_sum"):
                    total = float(line.split()[-1])
                elif line.startswith("inkstream_join_seconds_count"):
                    count = float(line.split()[-1])
        return total, count

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/{BOARD}"


async def populate(server: Server, updates: int, shapes: int) -> float:
    """Write `updates` updates through one WebSocket client; return seconds until all are logged."""
    rng = random.Random(42)
    t0 = time.perf_counter()
    async with YWebsocketClient(server.ws) as client:
        await client.wait_synced()
        root = client.doc.get("shapes", type=Map)
        for i in range(updates):
            if i < shapes:
                with client.doc.transaction():
                    root[f"s{i}"] = Map({"type": "rect", "x": float(i), "y": 0.0, "w": 40.0, "h": 30.0,
                                         "stroke": "#222", "fill": "#fc0", "z": f"a{i:05d}"})
            else:
                shape = root[f"s{rng.randrange(shapes)}"]
                with client.doc.transaction():
                    shape["x"] = rng.random() * 1000
                    shape["y"] = rng.random() * 1000
            if i % 1000 == 999:
                await asyncio.sleep(0)  # let the sender drain
        await client.flush(within=300)
        deadline = time.monotonic() + 300
        while server.version() < updates:
            if time.monotonic() > deadline:
                raise TimeoutError(f"server has {server.version()} of {updates} updates")
            await asyncio.sleep(0.2)
    return time.perf_counter() - t0


async def join_once(server: Server, doc: Doc | None = None) -> tuple[float, float, int, Doc]:
    """One join: (client-observed ms to step 2, ms to apply it, step 2 bytes, the doc)."""
    client = YWebsocketClient(server.ws, doc=doc)
    await client.start()
    try:
        await client.wait_synced(within=120)
        assert client.step1_sent_at and client.step2_received_at and client.step2_applied_at
        observed = (client.step2_received_at - client.step1_sent_at) * 1000
        applied = (client.step2_applied_at - client.step2_received_at) * 1000
        return observed, applied, client.step2_bytes, client.doc
    finally:
        await client.stop()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


async def main() -> None:
    """Populate, then measure warm, cold and re-joins."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--shapes", type=int, default=2000)
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    command = "python benchmarks/join_time.py " + shlex.join(sys.argv[1:])
    rows = []
    with tempfile.TemporaryDirectory(prefix="inkstream-join-") as tmp:
        server = Server(Path(tmp) / "data")
        server.start()
        try:
            ingest = await populate(server, args.updates, args.shapes)
            print(f"populated {args.updates} updates in {ingest:.1f} s "
                  f"({args.updates / ingest:.0f} updates/s through one WebSocket)", flush=True)

            async def measure(name: str, runs: int, doc_factory) -> None:
                s0, c0 = server.join_metric()
                observed, applied, sizes = [], [], []
                for _ in range(runs):
                    o, a, size, _doc = await join_once(server, doc_factory())
                    observed.append(o)
                    applied.append(a)
                    sizes.append(size)
                s1, c1 = server.join_metric()
                server_ms = (s1 - s0) / (c1 - c0) * 1000 if c1 > c0 else float("nan")
                print(f"{name:42} n={runs:3}  client-observed p50 {pct(observed, 50):7.1f} ms  "
                      f"max {max(observed):7.1f} ms  server-side mean {server_ms:6.1f} ms  "
                      f"step 2 {sizes[0]} bytes  apply {pct(applied, 50):.1f} ms", flush=True)
                rows.append([name, runs, pct(observed, 50), max(observed), server_ms, sizes[0], pct(applied, 50)])

            # Cold: restart, then the very first join loads the board from checkpoint + log tail.
            # The projector (a child process) writes the checkpoints; wait for it, or the cold load
            # would replay whatever it had not folded yet and measure the projector's lag instead.
            lag = server.wait_projected()
            print(f"projector caught up {lag:.1f} s after the last update", flush=True)
            server.stop()
            server.start()
            await measure("cold (first join after restart)", 1, lambda: None)
            # Warm: keep a client connected so the board stays loaded.
            holder = YWebsocketClient(server.ws)
            await holder.start()
            await holder.wait_synced(within=120)
            await measure("warm (board in memory), empty client", args.joins, lambda: None)
            full = Doc()
            full.apply_update(holder.doc.get_update())
            await measure("rejoin, client already has everything", args.joins,
                          lambda: copy_doc(full))
            await holder.stop()
        finally:
            server.stop()
    if args.no_write:
        return
    body = f"""\
Board written through one pycrdt y-websocket client: {args.shapes} shapes, then moves, {args.updates} updates in
all (one transaction each); ingest took {ingest:.1f} s ({args.updates / ingest:.0f} updates/s). Target: <= 50 ms
server-side for a join on a 100k-update board.

```
{command.strip()}
```

{table(["join", "joins", "client-observed p50 ms", "client-observed max ms", "server-side mean ms",
        "step 2 bytes", "client apply p50 ms"], rows)}

Client-observed = sync step 1 sent -> step 2 received (before the client applies it); server-side =
`inkstream_join_seconds` (computing the step 2; for the cold join the board load before it is not
in that histogram but is in the client-observed time). Taken
{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}.
"""
    replace_section("Join time", body)


def copy_doc(source: Doc) -> Doc:
    """A new Doc holding `source`'s state (a client that reconnects with everything)."""
    doc = Doc()
    doc.apply_update(source.get_update())
    return doc


if __name__ == "__main__":
    asyncio.run(main())
