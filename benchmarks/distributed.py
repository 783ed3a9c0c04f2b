"""Distributed-mode benchmark against the real servers (infra/dev/up): fold throughput and live delivery.

    python benchmarks/distributed.py                  # both parts
    python benchmarks/distributed.py --fold-only --records 100000
    python benchmarks/distributed.py --delivery-only --duration 30

1. Processor fold throughput (one `inkstream processor` process): N realistic updates (one shape
   field set per update, spread over 20 boards) are produced to a fresh topic first; then the
   processor starts and we time from its first folded record to its last (Redis
   `{prefix}:partitions` reaching the end offsets). Measured twice: through the faust agent
   (steady state), and through the rebuild path a processor takes when the Redis views are missing
   (plain consumer replaying the topic).
2. Live delivery: 2 gateways + processor; benchmarks/loadgen.mjs with 20 boards x 5 clients x
   10 updates/s, clients of each board split over the two gateways; reports all-pairs and
   cross-gateway latency percentiles and lost updates (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaProducer  # noqa: E402
from pycrdt import Doc, Map  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from engine.events import Provenance  # noqa: E402
from engine.stream.records import encode_headers  # noqa: E402
from engine.stream.topic import ensure_topic  # noqa: E402
from tests.servers import ensure_servers  # noqa: E402


def _env(topic: str, prefix: str) -> dict[str, str]:
    return {
        **os.environ,
        **ensure_servers("kafka", "redis", "mongo", "etcd"),
        "INKSTREAM_KAFKA_TOPIC": topic,
        "INKSTREAM_REDIS_PREFIX": prefix,
        "INKSTREAM_KAFKA_PARTITIONS": "2",
        "INKSTREAM_LOG_LEVEL": "WARNING",
    }


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "gateway", *args], env=env, cwd=ROOT, stdout=out, stderr=out)


def _updates(boards: int, count: int) -> list[tuple[str, bytes]]:
    docs = {f"bench-{b}": Doc() for b in range(boards)}
    out = []
    for i in range(count):
        board = f"bench-{i % boards}"
        doc = docs[board]
        shapes = doc.get("shapes", type=Map)
        captured: list[bytes] = []
        sub = doc.observe(lambda e, c=captured: c.append(bytes(e.update)))
        shape_id = f"s{random.randrange(200)}"
        with doc.transaction():
            if shape_id not in shapes:
                shapes[shape_id] = Map({"type": "rect", "x": 0.0, "y": 0.0})
            else:
                shapes[shape_id]["x"] = float(i)
        doc.unobserve(sub)
        out.append((board, captured[0]))
    return out


async def _produce(bootstrap: str, topic: str, updates: list[tuple[str, bytes]]) -> None:
    await ensure_topic(bootstrap, topic, 2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i, (board, update) in enumerate(updates):
            headers = encode_headers(Provenance(time.time(), f"bench-{i % 97}", "bench"), None)
            futures.append(await producer.send(topic, update, key=board.encode(), headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _fold_run(env: dict[str, str], total: int, prefix: str, via_faust: bool, log: Path) -> dict[str, Any]:
    redis = Redis.from_url(env["INKSTREAM_REDIS_URL"])
    if via_faust:
        await redis.set(f"{prefix}:views", "bench")  # views "complete": the agent folds, no rebuild
    env = {**env, "INKSTREAM_REDIS_PREFIX": prefix}
    started = time.perf_counter()
    proc = _spawn(["processor", "--group", f"bench-{prefix}"], env, log)
    first: float | None = None
    try:
        while True:
            positions = await redis.hgetall(f"{prefix}:partitions")
            folded = sum(int(v) + 1 for v in positions.values())
            now = time.perf_counter()
            if folded and first is None:
                first = now
            if folded >= total:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"processor exited; see {log}")
            if now - started > 600:
                raise TimeoutError(f"folded {folded}/{total} after 600 s")
            await asyncio.sleep(0.01)
        done = time.perf_counter()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        await redis.aclose()
    assert first is not None
    return {
        "path": "faust agent" if via_faust else "rebuild (views missing)",
        "records": total,
        "startup_s": round(first - started, 2),
        "fold_s": round(done - first, 2),
        "updates_per_s": round(total / max(done - first, 1e-9)),
    }


async def fold_benchmark(records: int, boards: int, work: Path) -> list[dict[str, Any]]:
    topic = f"bench-fold-{uuid.uuid4().hex[:8]}"
    env = _env(topic, "unused")
    print(f"generating {records} updates over {boards} boards ...", file=sys.stderr)
    updates = _updates(boards, records)
    t0 = time.perf_counter()
    await _produce(env["INKSTREAM_KAFKA_BOOTSTRAP"], topic, updates)
    print(f"produced in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    results = []
    for via_faust in (True, False):
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        result = await _fold_run(env, records, prefix, via_faust, work / f"processor-{prefix}.log")
        print(json.dumps(result), file=sys.stderr)
        results.append(result)
    return results


def _wait_ready(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready")


def delivery_benchmark(duration: int, work: Path, base_port: int) -> dict[str, Any]:
    topic = f"bench-live-{uuid.uuid4().hex[:8]}"
    prefix = f"bench-live-{uuid.uuid4().hex[:8]}"
    env = _env(topic, prefix)
    procs = [_spawn(["processor"], env, work / "processor.log")]
    ports = [base_port, base_port + 1]
    for port in ports:
        procs.append(_spawn(["gateway", "--port", str(port)], env, work / f"gateway-{port}.log"))
    try:
        for port in ports:
            _wait_ready(f"http://127.0.0.1:{port}", time.monotonic() + 90)
        urls = ",".join(f"ws://127.0.0.1:{p}/ws" for p in ports)
        cmd = [
            "node",
            str(ROOT / "benchmarks" / "loadgen.mjs"),
            "--url",
            urls,
            "--boards",
            "20",
            "--clients",
            "5",
            "--rate",
            "10",
            "--duration",
            str(duration),
            "--drain",
            "30",
            "--label",
            "distributed-2-gateways",
        ]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=duration + 200, check=True)
        result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(result), file=sys.stderr)
        return result
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                print(f"pid {p.pid} did not stop on SIGTERM within 20 s; killing it", file=sys.stderr)
                p.kill()
                p.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--boards", type=int, default=20)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--base-port", type=int, default=18711)
    parser.add_argument("--fold-only", action="store_true")
    parser.add_argument("--delivery-only", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="inkstream-bench-"))
    report: dict[str, Any] = {"logs": str(work)}
    if not args.delivery_only:
        report["fold"] = asyncio.run(fold_benchmark(args.records, args.boards, work))
    if not args.fold_only:
        report["delivery"] = delivery_benchmark(args.duration, work, args.base_port)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
