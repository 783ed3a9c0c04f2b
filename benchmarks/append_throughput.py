"""Append throughput of the embedded event log (engine.adapters.sqlite_log.SqliteEventLog).

    python benchmarks/append_throughput.py [--seconds 5] [--appenders 1,16,256,1024] [--dir DIR]

Many concurrent appenders (asyncio tasks, each awaiting its own append before the next, as a
client connection does) write realistic small Yjs updates through the EventLog port, spread over
100 boards. Measured with the default durability (WAL, synchronous=NORMAL: survives kill -9) and
with fsync on every group commit (synchronous=FULL: survives power loss). Prints the numbers and
writes the "Embedded log append throughput" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pycrdt import Doc, Map  # noqa: E402
from results_md import machine, replace_section, table  # noqa: E402

from engine.adapters.sqlite_log import SqliteEventLog  # noqa: E402
from engine.events import Provenance  # noqa: E402

BOARDS = 100


def sample_updates(n: int = 64) -> list[bytes]:
    """Real Yjs updates of the size a whiteboard produces (moving a shape: x and y)."""
    doc = Doc()
    shapes = doc.get("shapes", type=Map)
    with doc.transaction():
        shapes["s"] = Map({"type": "rect", "x": 0.0, "y": 0.0, "w": 10.0, "h": 10.0})
    out = []
    for i in range(n):
        before = doc.get_state()
        with doc.transaction():
            shape = shapes["s"]
            shape["x"] = float(i)
            shape["y"] = float(2 * i)
        out.append(doc.get_update(before))
    return out


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile of `values` (nearest rank)."""
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


async def measure(path: Path, fsync: bool, appenders: int, seconds: float) -> dict[str, float]:
    """Run `appenders` concurrent appenders for `seconds`; return throughput and latencies."""
    batches: list[int] = []
    log = SqliteEventLog(path, fsync=fsync, on_commit=lambda size, _s: batches.append(size))
    await log.start()
    updates = sample_updates()
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def appender(i: int) -> int:
        board = f"bench-{i % BOARDS}"
        prov = Provenance(time=time.time(), client_id=f"c{i}", user="bench")
        n = 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            await log.append(board, updates[n % len(updates)], prov)
            latencies.append(time.perf_counter() - t0)
            n += 1
        return n

    t0 = time.perf_counter()
    counts = await asyncio.gather(*(appender(i) for i in range(appenders)))
    elapsed = time.perf_counter() - t0
    await log.close()
    total = sum(counts)
    return {
        "updates": total,
        "per_s": total / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_batch": (sum(batches) / len(batches)) if batches else float("nan"),
    }


async def main() -> None:
    """Measure every (durability, appenders) combination on a fresh database each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--appenders", default="1,16,256,1024")
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    command = "python benchmarks/append_throughput.py " + shlex.join(sys.argv[1:])
    rows = []
    with tempfile.TemporaryDirectory(prefix="inkstream-append-", dir=args.dir) as tmp:
        for fsync in (False, True):
            for appenders in (int(a) for a in args.appenders.split(",")):
                path = Path(tmp) / f"log-{fsync}-{appenders}.db"
                r = await measure(path, fsync, appenders, args.seconds)
                mode = "fsync every commit" if fsync else "default (WAL, synchronous=NORMAL)"
                print(f"{mode:36} appenders={appenders:5}  {r['per_s']:9.0f} updates/s  "
                      f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  batch {r['mean_batch']:.1f}",
                      flush=True)
                rows.append([mode, appenders, round(r["per_s"]), r["p50_ms"], r["p99_ms"], r["mean_batch"]])
    if args.no_write:
        return
    body = f"""\
SqliteEventLog through the EventLog port: concurrent appenders (each awaits its append before the
next, as a connection does), real ~40-byte Yjs updates over {BOARDS} boards, {args.seconds:g} s per row,
fresh database each. "Batch" = updates per group commit.

```
{command.strip()}
```

{table(["durability", "appenders", "updates/s", "append p50 ms", "append p99 ms", "mean batch"], rows)}

Taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}; database on the root
filesystem (virtual disk), so fsync cost is this VM's, not a bare-metal SSD's.
"""
    replace_section("Embedded log append throughput", body)


if __name__ == "__main__":
    asyncio.run(main())
