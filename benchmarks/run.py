"""Live delivery benchmark in one go: the same load against inkstream and two peer servers.

    python benchmarks/run.py [--boards 20 --clients 5 --rate 10 --duration 30] [--only inkstream,...]

Targets, one after the other, each fresh:
  inkstream   `inkstream serve` (embedded mode, durable SQLite log on, fresh data dir)
  reference   the reference Node server `@y/websocket-server` 0.1.1 with yjs 13 (tests/js)
  pycrdt-ws   pycrdt-websocket on Uvicorn (benchmarks/peers/pycrdt_websocket_server.py)
The load is benchmarks/loadgen.mjs (real y-websocket clients in one Node process). Results are
printed and written to the "Live delivery" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import array
import importlib.util
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from results_md import machine, replace_section, table

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "tests" / "js"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until true or raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def tcp_open(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:port."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (everything but idle and iowait)."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / CLK_TCK


@dataclass
class Target:
    """A server to measure: how to start it and the y-websocket base URL clients use."""

    name: str
    describe: str
    start: Callable[[int, Path], subprocess.Popen[bytes]]
    ws_url: Callable[[int], str]
    ready: Callable[[int], bool]


#: --pin: the CPU the server under test (and every process it starts) runs on, and the CPUs left to
#: the load generator. None: the scheduler places everything.
SERVER_CPUS: set[int] | None = None
LOADGEN_CPUS: set[int] | None = None


def _on(cpus: set[int] | None) -> Callable[[], None] | None:
    """A Popen preexec_fn confining the child (before it execs, so all its threads) to `cpus`."""
    return None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))


def _inkstream(port: int, work: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("inkstream")
    cmd = [exe] if exe else [sys.executable, "-m", "gateway"]
    return subprocess.Popen(
        [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(work / "data")],
        cwd=ROOT, stdout=open(work / "inkstream.log", "wb"), stderr=subprocess.STDOUT,
        preexec_fn=_on(SERVER_CPUS),
    )


def _inkstream_ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
        return r.status == 200


def _reference(port: int, work: Path) -> subprocess.Popen[bytes]:
    server = JS_DIR / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
    return subprocess.Popen(
        ["node", str(server)], cwd=JS_DIR, env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port)},
        stdout=open(work / "reference.log", "wb"), stderr=subprocess.STDOUT,
        preexec_fn=_on(SERVER_CPUS),
    )


def _pycrdt_ws(port: int, work: Path) -> subprocess.Popen[bytes]:
    script = ROOT / "benchmarks" / "peers" / "pycrdt_websocket_server.py"
    return subprocess.Popen(
        [sys.executable, str(script), "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, stdout=open(work / "pycrdt-ws.log", "wb"), stderr=subprocess.STDOUT,
        preexec_fn=_on(SERVER_CPUS),
    )


TARGETS = {
    "inkstream": Target("inkstream", "`inkstream serve` (durable SQLite log, default durability)",
                        _inkstream, lambda p: f"ws://127.0.0.1:{p}/ws", _inkstream_ready),
    "reference": Target("reference", "`@y/websocket-server` 0.1.1 + yjs 13 (Node, in memory)",
                        _reference, lambda p: f"ws://127.0.0.1:{p}", tcp_open),
    "pycrdt-ws": Target("pycrdt-ws", "pycrdt-websocket 0.16 on Uvicorn (in memory)",
                        _pycrdt_ws, lambda p: f"ws://127.0.0.1:{p}", tcp_open),
}


def ensure_js_deps() -> None:
    """`npm ci` in tests/js if node_modules is missing."""
    if not (JS_DIR / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR, check=True)


PYCRDT_WEBSOCKET = "pycrdt-websocket==0.16.5"


def ensure_peer_deps(names: list[str]) -> None:
    """Install the pycrdt-websocket peer into this interpreter if it is selected and missing."""
    if "pycrdt-ws" in names and importlib.util.find_spec("pycrdt.websocket") is None:
        print(f"installing the pycrdt-ws peer ({PYCRDT_WEBSOCKET})", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", PYCRDT_WEBSOCKET], check=True)


def run_target(target: Target, args: argparse.Namespace, work: Path) -> dict[str, object]:
    """Start the server, run the load generator against it, stop the server."""
    port = free_port()
    proc = target.start(port, work)
    try:
        wait_for(lambda: target.ready(port), 30, f"{target.name} on port {port}")
        loadgen = [
            "node", str(ROOT / "benchmarks" / "loadgen.mjs"), "--url", target.ws_url(port),
            "--boards", str(args.boards), "--clients", str(args.clients), "--rate", str(args.rate),
            "--duration", str(args.duration), "--drain", str(args.drain), "--label", target.name,
            "--samples", str(work / "latency.f32"),
        ]
        cpu0, all0, t0 = cpu_seconds(proc.pid), machine_busy_seconds(), time.monotonic()
        out = subprocess.run(loadgen, cwd=ROOT, stdout=subprocess.PIPE, check=True,
                             timeout=args.duration + args.drain + 180, preexec_fn=_on(LOADGEN_CPUS)).stdout
        cpu1, all1, t1 = cpu_seconds(proc.pid), machine_busy_seconds(), time.monotonic()
        result: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
        result["server_cpu_pct"] = round(100 * (cpu1 - cpu0) / (t1 - t0))
        # What everything else on the machine used meanwhile (other people's jobs skew the numbers).
        machine_pct = 100 * (all1 - all0) / (t1 - t0)
        result["other_cpu_pct"] = max(0, round(machine_pct - float(result["server_cpu_pct"])
                                               - float(result["loadgen_cpu_pct"])))
        result["server_alive"] = proc.poll() is None
        samples = array.array("f")
        samples.frombytes((work / "latency.f32").read_bytes())
        result["samples"] = samples  # every delivery's latency (ms), for pooling rounds; not printed
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def render(results: list[dict[str, object]], args: argparse.Namespace, command: str) -> str:
    """The markdown section."""
    rows = [[
        TARGETS[str(r["label"])].describe, r["round"], f"{r['clients_synced']}/{r['clients_total']}", r["join_all_ms"],
        r["sent"], r["expected_deliveries"], r["lost"], r["disconnects"],
        r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"],
        r["server_cpu_pct"], r["loadgen_cpu_pct"], r["loadgen_loop_lag_p99_ms"], r["loadgen_late_sends"],
        r["other_cpu_pct"],
    ] for r in results]
    headers = ["server", "round", "synced", "all joined (ms)", "updates sent", "deliveries expected",
               "missing after drain",
               "disconnects", "p50 ms", "p95 ms", "p99 ms", "max ms", "server CPU %",
               "loadgen CPU %", "loadgen loop lag p99 ms", "loadgen late sends", "other processes CPU %"]
    pooled, verdict = summary(results)
    pooled_headers = ["server", "rounds", "missing after drain", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms",
                      "median of the rounds' p99 ms", "median server CPU %"]
    return f"""\
{args.boards} boards x {args.clients} clients x {args.rate} updates/s per client = \
{args.boards * args.clients * args.rate} updates/s in, {args.duration} s, then up to {args.drain} s \
for stragglers. Real y-websocket 3 / yjs 13 clients in one Node process (benchmarks/loadgen.mjs).
Latency = receive time - send time stamped in the update, over every delivery to every other
client of the board; "missing after drain" = (sender, seq) pairs some client still lacks when the
drain period ends (lost, or later than the drain period).

```
{command}
```

Every round's deliveries pooled, per server:

{table(pooled_headers, pooled)}

{verdict}

Round by round:

{table(headers, rows)}

Taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}.
CPU % is of one core (100 = one core busy; the machine has {len(os.sched_getaffinity(0))}). {_placement(args)}
"Other processes" is what the rest of the machine used during the run: when it is high,
the run competed with unrelated work and its latencies are pessimistic. With --repeat the targets
alternate (A B C A B C ...) so that background load hits each of them alike.
"""


def percentile(ordered: list[float], p: float) -> float | None:
    """The p-th percentile of sorted values, as loadgen.mjs takes it (the value at floor(p% of n))."""
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else None


def summary(results: list[dict[str, object]]) -> tuple[list[list[object]], str]:
    """Per target over all its rounds: the latencies of every round pooled, and the median round.

    One round's p99 moves with whatever else the machine did during those 30 s (the same server's
    p99 has ranged 3.5-17 ms between back-to-back rounds here). Pooling alternating rounds gives
    every target the same share of the disturbances, which is what a comparison needs.
    """
    rows = []
    pooled_p99: dict[str, float | None] = {}
    names = list(dict.fromkeys(str(r["label"]) for r in results))
    for name in names:
        mine = [r for r in results if r["label"] == name]
        pooled = sorted(x for r in mine for x in r["samples"])  # type: ignore[attr-defined]
        pooled_p99[name] = percentile(pooled, 99)
        rows.append([
            name, len(mine), sum(int(r["lost"]) for r in mine),  # type: ignore[call-overload]
            *(_ms(percentile(pooled, p)) for p in (50, 95, 99, 99.9)),
            _ms(statistics.median(float(r["p99_ms"]) for r in mine)),  # type: ignore[arg-type]
            statistics.median(float(r["server_cpu_pct"]) for r in mine),  # type: ignore[arg-type]
        ])
    verdict = ""
    if "inkstream" in pooled_p99 and "reference" in pooled_p99:
        ours, ref = pooled_p99["inkstream"], pooled_p99["reference"]
        by_round = {(r["label"], r["round"]): float(r["p99_ms"]) for r in results}  # type: ignore[arg-type]
        rounds = sorted({int(r["round"]) for r in results})  # type: ignore[call-overload]
        won = sum(by_round[("inkstream", n)] <= by_round[("reference", n)] for n in rounds)
        if ours is not None and ref is not None:
            verdict = (
                f"inkstream's pooled p99 is {ours:.2f} ms against the reference's {ref:.2f} ms "
                f"({ours / ref:.2f}x: {'at or below' if ours <= ref else 'above'} it); in single rounds "
                f"inkstream's p99 was at or below the reference's in {won} of {len(rounds)}."
            )
    return rows, verdict


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _placement(args: argparse.Namespace) -> str:
    """How the server and the load generator shared the CPUs (--pin)."""
    if args.pin:
        return (
            f"Pinned (--pin): the server under test and every process it starts on CPU {min(SERVER_CPUS or {0})}, "
            "the load generator on the others, as if on separate machines (inkstream's projector child "
            "shares the server's CPU). The generator's own pauses (its loop lag) still reach every "
            "target's latency alike."
        )
    return (
        "Not pinned (--no-pin): the load generator shares the cores with the server, so part of the "
        "latency is the scheduler trading the CPUs between them, and the generator's own loop lag."
    )


def main() -> None:
    """Run every selected target, print and record the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", type=int, default=20)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--drain", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the targets, alternating")
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated: " + ", ".join(TARGETS))
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument(
        "--pin", action=argparse.BooleanOptionalAction, default=len(os.sched_getaffinity(0)) >= 2,
        help="server under test on the first CPU, load generator on the others, as if on separate "
        "machines (default when there are 2+ CPUs; every target is treated the same)",
    )
    args = parser.parse_args()
    global SERVER_CPUS, LOADGEN_CPUS
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs at least 2 CPUs")
        SERVER_CPUS, LOADGEN_CPUS = {cpus[0]}, set(cpus[1:])
    if args.rate == int(args.rate):
        args.rate = int(args.rate)
    names = args.only.split(",")
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    ensure_js_deps()
    ensure_peer_deps(names)
    command = "python benchmarks/run.py " + shlex.join(sys.argv[1:])
    results = []
    with tempfile.TemporaryDirectory(prefix="inkstream-bench-") as tmp:
        rounds = [(r, name) for r in range(args.repeat) for name in names]
        for round_, name in rounds:
            work = Path(tmp) / f"{name}-{round_}"
            work.mkdir()
            print(f"== {name} (round {round_ + 1})", file=sys.stderr, flush=True)
            result = run_target(TARGETS[name], args, work)
            result["round"] = round_ + 1
            print(json.dumps({k: v for k, v in result.items() if k != "samples"}), flush=True)
            results.append(result)
    pooled, verdict = summary(results)
    for row in pooled:
        print("pooled:", json.dumps(dict(zip(("server", "rounds", "lost", "p50_ms", "p95_ms", "p99_ms", "p999_ms",
                                               "median_round_p99_ms", "median_server_cpu_pct"), row, strict=True))))
    if verdict:
        print(verdict)
    if not args.no_write:
        replace_section("Live delivery", render(results, args, command.strip()))
        print("wrote the 'Live delivery' section of benchmarks/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
