"""Distributed-mode benchmark against the real servers (infra/dev/up): fold throughput and live delivery.

    python benchmarks/distributed.py                  # both parts; writes the "Distributed" section of RESULTS.md
    python benchmarks/distributed.py --fold-only --records 200000 --boards 20
    python benchmarks/distributed.py --delivery-only --duration 30

1. Processor fold throughput (one `inkstream processor` process): N realistic updates (one shape
   field set per update, spread over 20 boards) are produced to a fresh topic first; then the
   processor starts and we time from its first folded record to its last (Redis
   `{prefix}:partitions` reaching the end offsets), and the processor's CPU seconds meanwhile (the
   machine is shared: updates per CPU-second is the number that does not depend on its load).
   Measured twice: through the faust worker (steady state), and through the rebuild path a
   processor takes when the Redis views are missing (plain consumer replaying the topic).
2. Live delivery: 2 gateways + processor + projector; benchmarks/loadgen.mjs with 20 boards x 5
   clients x 10 updates/s, clients of each board split over the two gateways; reports all-pairs,
   same-gateway and cross-gateway latency percentiles and lost updates (must be 0); the projector's
   lag (records between the topic's end and what MongoDB has, sampled every 0.5 s); and how long
   each process takes to exit after SIGTERM.
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
    cpu_first = cpu_done = 0.0
    try:
        while True:
            positions = await redis.hgetall(f"{prefix}:partitions")
            folded = sum(int(v) + 1 for v in positions.values())
            now = time.perf_counter()
            if folded and first is None:
                first, cpu_first = now, _cpu_seconds(proc.pid)
            if folded >= total:
                cpu_done = _cpu_seconds(proc.pid)
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
        "path": "faust worker (batch fetcher)" if via_faust else "rebuild (views missing)",
        "records": total,
        "startup_s": round(first - started, 2),
        "fold_s": round(done - first, 2),
        "updates_per_s": round(total / max(done - first, 1e-9)),
        "cpu_s": round(cpu_done - cpu_first, 2),
        "updates_per_cpu_s": round(total / max(cpu_done - cpu_first, 1e-9)),
        "load_avg_1m": round(os.getloadavg()[0], 2),
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


def _cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _sample_projector_lag(env: dict[str, str], db: str, group: str, done: asyncio.Event) -> list[int]:
    """Records between the topic's end and the projector's MongoDB cursors, every 0.5 s until `done`."""
    from projections.mongo_store import MongoProjectionStore
    from tests.integration.projector_kit import end_offsets

    store = MongoProjectionStore(env["INKSTREAM_MONGO_URL"], db, group=group, topic=env["INKSTREAM_KAFKA_TOPIC"])
    await store.start()
    samples: list[int] = []
    try:
        while not done.is_set():
            await asyncio.sleep(0.5)  # the sampling period
            try:
                cursors = await store.cursors()
                ends = await end_offsets(env["INKSTREAM_KAFKA_BOOTSTRAP"], env["INKSTREAM_KAFKA_TOPIC"])
            except Exception as exc:  # a sample lost to a slow server is not a result
                print(f"projector lag sample failed: {exc}", file=sys.stderr)
                continue
            samples.append(sum(max(0, end - cursors.get(p, 0)) for p, end in ends.items()))
    finally:
        await store.close()
    return samples


def _pct(values: list[int], q: float) -> int | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


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


def delivery_benchmark(duration: int, work: Path, base_port: int, projector: bool = True) -> dict[str, Any]:
    topic = f"bench-live-{uuid.uuid4().hex[:8]}"
    prefix = f"bench-live-{uuid.uuid4().hex[:8]}"
    env = _env(topic, prefix)
    db, group = f"bench_{uuid.uuid4().hex[:8]}", f"bench-projector-{uuid.uuid4().hex[:8]}"
    names = ["processor"]
    procs = [_spawn(["processor"], env, work / "processor.log")]
    if projector:
        names.append("projector")
        procs.append(_spawn(["projector", "--mongo-db", db, "--group", group], env, work / "projector.log"))
    ports = [base_port, base_port + 1]
    for port in ports:
        names.append(f"gateway :{port}")
        procs.append(_spawn(["gateway", "--port", str(port)], env, work / f"gateway-{port}.log"))
    result: dict[str, Any] = {}
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
        cpu_before = {name: _cpu_seconds(p.pid) for name, p in zip(names, procs, strict=True)}
        out, lag = asyncio.run(_load_with_lag(cmd, env, db, group, duration + 200, projector))
        result = dict(json.loads(out.strip().splitlines()[-1]))
        result["cpu_s"] = {
            name: round(_cpu_seconds(p.pid) - cpu_before[name], 1) for name, p in zip(names, procs, strict=True)
        }
        result["projector_lag_records_p50"] = _pct(lag, 0.5)
        result["projector_lag_records_p99"] = _pct(lag, 0.99)
        result["projector_lag_records_max"] = max(lag, default=None)
        result["load_avg_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result), file=sys.stderr)
        return result
    finally:
        stopped = time.monotonic()
        for p in procs:
            p.terminate()
        stop_s: dict[str, float | str] = {}
        for name, p in zip(names, procs, strict=True):
            try:
                p.wait(timeout=max(0.1, stopped + 45 - time.monotonic()))
                stop_s[name] = round(time.monotonic() - stopped, 2)
            except subprocess.TimeoutExpired:
                print(f"{name} (pid {p.pid}) did not stop on SIGTERM within 45 s; killing it", file=sys.stderr)
                stop_s[name] = "killed after 45 s"
                p.kill()
                p.wait(timeout=10)
        result["sigterm_exit_s"] = stop_s


async def _nothing() -> list[int]:
    return []


async def _load_with_lag(
    cmd: list[str], env: dict[str, str], db: str, group: str, timeout: float, sample: bool
) -> tuple[str, list[int]]:
    """Run the load generator while sampling the projector's lag; its stdout and the samples."""
    done = asyncio.Event()
    sampler = asyncio.create_task(_sample_projector_lag(env, db, group, done) if sample else _nothing())
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        done.set()
        lag = await sampler
    if proc.returncode:
        raise RuntimeError(f"loadgen exited with {proc.returncode}")
    return stdout.decode(), lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--boards", type=int, default=20)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--base-port", type=int, default=18711)
    parser.add_argument("--fold-only", action="store_true")
    parser.add_argument("--delivery-only", action="store_true")
    parser.add_argument("--no-results", action="store_true", help="do not write benchmarks/RESULTS.md")
    parser.add_argument("--no-projector", action="store_true", help="live delivery without the MongoDB projector")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="inkstream-bench-"))
    report: dict[str, Any] = {"logs": str(work)}
    if not args.delivery_only:
        report["fold"] = asyncio.run(fold_benchmark(args.records, args.boards, work))
    if not args.fold_only:
        report["delivery"] = delivery_benchmark(args.duration, work, args.base_port, not args.no_projector)
    print(json.dumps(report, indent=2))
    if not args.no_results:
        write_results(report, " ".join(["python", "benchmarks/distributed.py", *sys.argv[1:]]))


def write_results(report: dict[str, Any], command: str) -> None:
    """Replace the "Distributed" section of benchmarks/RESULTS.md (other sections are kept)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from results_md import machine, replace_section, table

    parts = [
        f"`{command}` -- real Kafka 4.4 (KRaft), Redis, MongoDB-wire dev server and etcd from `infra/dev/up`, "
        f"all on the same machine. Taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}."
    ]
    fold = report.get("fold")
    if fold:
        parts.append(
            "**Processor fold throughput** (one `inkstream processor` process, topic pre-loaded, 2 partitions; "
            "updates/s is wall clock on a shared machine, updates per CPU-second is the process's own cost):\n\n"
            + table(
                ["path", "records", "fold s", "updates/s", "CPU s", "updates/CPU-s", "load avg 1m"],
                [
                    [
                        r["path"],
                        r["records"],
                        r["fold_s"],
                        r["updates_per_s"],
                        r["cpu_s"],
                        r["updates_per_cpu_s"],
                        r["load_avg_1m"],
                    ]
                    for r in fold
                ],
            )
        )
    live = report.get("delivery")
    if live:
        parts.append(
            f"**Live delivery**: {live['boards']} boards x {live['clients_per_board']} clients x "
            f"{live['rate_per_client']} updates/s for {live['duration_s']} s, clients of each board split over "
            f"{live.get('gateways', 1)} gateways (processor and projector running); {live['sent']} updates sent, "
            f"**{live['lost']} lost**, {live['disconnects']} disconnects, load average {live['load_avg_1m']}.\n\n"
            + table(
                ["deliveries", "samples", "p50 ms", "p99 ms", "max ms"],
                [
                    ["all pairs", live["latency_samples"], live["p50_ms"], live["p99_ms"], live["max_ms"]],
                    [
                        "same gateway",
                        live.get("local_samples"),
                        live.get("local_p50_ms"),
                        live.get("local_p99_ms"),
                        live.get("local_max_ms"),
                    ],
                    [
                        "cross gateway",
                        live.get("cross_samples"),
                        live.get("cross_p50_ms"),
                        live.get("cross_p99_ms"),
                        live.get("cross_max_ms"),
                    ],
                ],
            )
            + f"\n\nProjector lag under this load (records between the topic's end and MongoDB, sampled every "
            f"0.5 s): p50 {live['projector_lag_records_p50']}, p99 {live['projector_lag_records_p99']}, max "
            f"{live['projector_lag_records_max']} (the MongoDB-wire dev server takes ~750 writes/s).\n\n"
            f"Seconds to exit after SIGTERM at the end: {live.get('sigterm_exit_s')}."
        )
    replace_section("Distributed", "\n\n".join(parts))


if __name__ == "__main__":
    main()
