"""Distributed-mode subcommands: `inkstream gateway`, `inkstream processor`, `inkstream cluster`.

Settings come from INKSTREAM_* environment variables (e.g. `. infra/dev/env`), then flags.
`cluster` is a one-command local cluster for demos and tests: N gateways on consecutive ports,
one view processor and one MongoDB projector as child processes; Ctrl+C (or SIGTERM) stops them
all. A child that dies is reported and restarted after a short backoff, so the cluster keeps
serving (the log is the source of truth; a restarted processor resumes from its committed offset).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.settings import Settings

log = logging.getLogger("inkstream.cluster")

#: What the [distributed] extras (pyproject.toml) install, by import name.
DISTRIBUTED_MODULES = ("aiokafka", "faust", "redis", "pymongo", "beanie", "aetcd")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require_distributed(command: str) -> None:
    """Exit with one line naming the extras if `inkstream <command>` cannot import them (a plain `pip install .`)."""
    missing = [name for name in DISTRIBUTED_MODULES if not _importable(name)]
    if missing:
        raise SystemExit(
            f"inkstream {command} needs the distributed extras: pip install 'inkstream[distributed]' "
            f"(not installed: {', '.join(missing)})"
        )


def _servers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kafka-bootstrap", help="Kafka bootstrap servers host:port (INKSTREAM_KAFKA_BOOTSTRAP)")
    p.add_argument("--kafka-topic", help="the updates topic (INKSTREAM_KAFKA_TOPIC)")
    p.add_argument("--kafka-partitions", type=int, help="partitions if the topic is created (default 3)")
    p.add_argument("--redis-url", help="Redis for views and fan-out (INKSTREAM_REDIS_URL)")
    p.add_argument("--redis-prefix", help="key prefix in Redis (default inkstream; INKSTREAM_REDIS_PREFIX)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING (default INFO)")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the gateway, processor and cluster subcommands."""
    g = sub.add_parser("gateway", help="a distributed gateway (Kafka log, Redis views and fan-out, etcd)")
    g.add_argument("--host", help="interface to bind (default 127.0.0.1; INKSTREAM_HOST)")
    g.add_argument("--port", type=int, help="TCP port (default 8000; INKSTREAM_PORT)")
    g.add_argument("--mongo-url", help="MongoDB holding the update archive (INKSTREAM_MONGO_URL)")
    g.add_argument("--etcd-url", help="etcd for membership (INKSTREAM_ETCD_URL)")
    g.add_argument("--gateway-id", help="this gateway's id in the cluster (default host:port)")
    _servers(g)

    p = sub.add_parser("processor", help="fold the updates topic into the Redis views (faust worker)")
    p.add_argument("--group", help="consumer group (default inkstream-views.<topic>)")
    p.add_argument("--instance-id", help="static group membership id: a restart rejoins without a rebalance wait")
    p.add_argument("--batch", type=int, default=10_000, help="records per fetch and fold (default 10000)")
    _servers(p)

    c = sub.add_parser("cluster", help="run N gateways, a processor and a projector as child processes")
    c.add_argument("--gateways", type=int, default=2, help="how many gateways (default 2)")
    c.add_argument("--base-port", type=int, default=8000, help="port of the first gateway; the others follow")
    c.add_argument("--host", help="interface the gateways bind (default 127.0.0.1)")
    c.add_argument("--no-projector", action="store_true", help="do not start the MongoDB projector")
    _servers(c)


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings.load(
        kafka_bootstrap=args.kafka_bootstrap,
        kafka_topic=args.kafka_topic,
        kafka_partitions=args.kafka_partitions,
        redis_url=args.redis_url,
        redis_prefix=args.redis_prefix,
        log_level=args.log_level,
        **extra,
    )


def main(args: argparse.Namespace) -> int:
    """Run the chosen distributed subcommand."""
    require_distributed(args.command)
    if args.command == "gateway":
        return run_gateway(args)
    if args.command == "processor":
        return run_processor(args)
    return run_cluster(args)


def run_gateway(args: argparse.Namespace) -> int:
    """Serve a distributed gateway until SIGINT/SIGTERM."""
    settings = _settings(args, host=args.host, port=args.port, mongo_url=args.mongo_url, etcd_url=args.etcd_url)
    if args.gateway_id:
        settings = replace(settings, gateway_id=args.gateway_id)
    from gateway.server import check_listen

    check_listen(settings.host, settings.port)
    settings.configure_logging()

    async def serve() -> None:
        from gateway.app import create_app
        from gateway.server import serve_app
        from gateway.system import build_distributed

        app = create_app(build_distributed(settings))
        log.info(
            "gateway on http://%s:%d (Kafka %s topic %s, Redis %s)",
            settings.host,
            settings.port,
            settings.kafka_bootstrap,
            settings.kafka_topic,
            settings.redis_url,
        )
        await serve_app(app, settings)

    from gateway.server import run_loop

    run_loop(serve(), settings.event_loop)
    return 0


def run_processor(args: argparse.Namespace) -> int:
    """Run the view processor (a faust worker) until SIGINT/SIGTERM."""
    if args.batch < 1:
        raise SystemExit(f"inkstream: --batch must be positive, not {args.batch}")
    from engine.stream.processor import Processor, ProcessorConfig

    settings = _settings(args)
    settings.configure_logging()
    config = ProcessorConfig(
        kafka_bootstrap=settings.kafka_bootstrap,
        kafka_topic=settings.kafka_topic,
        redis_url=settings.redis_url,
        redis_prefix=settings.redis_prefix,
        partitions=settings.kafka_partitions,
        group=args.group,
        instance_id=args.instance_id,
        batch=args.batch,
    )
    log.info("processor: topic %s -> Redis %s (prefix %s)", config.kafka_topic, config.redis_url, config.redis_prefix)
    Processor(config).run(settings.log_level)
    return 0


@dataclass(eq=False)
class _Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=dict(os.environ))
        self.started = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)


def _children(args: argparse.Namespace) -> list[_Child]:
    base = [sys.executable, "-m", "gateway"]
    shared: list[str] = []
    for flag in ("kafka_bootstrap", "kafka_topic", "kafka_partitions", "redis_url", "redis_prefix", "log_level"):
        value = getattr(args, flag)
        if value is not None:
            shared += [f"--{flag.replace('_', '-')}", str(value)]
    children = [_Child("processor", [*base, "processor", "--instance-id", "cluster-processor-1", *shared])]
    if not args.no_projector:
        projector = [*base, "projector"]
        for flag in ("kafka_bootstrap", "kafka_topic", "log_level"):
            value = getattr(args, flag)
            if value is not None:
                projector += [f"--{flag.replace('_', '-')}", str(value)]
        children.append(_Child("projector", projector))
    for i in range(args.gateways):
        port = args.base_port + i
        argv = [*base, "gateway", "--port", str(port), *shared]
        if args.host:
            argv += ["--host", args.host]
        children.append(_Child(f"gateway :{port}", argv))
    return children


def run_cluster(args: argparse.Namespace) -> int:
    """Start the children, restart any that dies, stop them all on SIGINT/SIGTERM."""
    # Refuse what would make every child exit at once (and be restarted forever), before starting any.
    settings = _settings(args, host=args.host, port=args.base_port)
    if args.gateways < 1:
        raise SystemExit(f"inkstream: --gateways must be positive, not {args.gateways}")
    if args.base_port + args.gateways - 1 > 65535:
        raise SystemExit(f"inkstream: --base-port {args.base_port} leaves no room for {args.gateways} gateways")
    from gateway.server import check_listen

    for i in range(args.gateways):
        check_listen(settings.host, args.base_port + i)
    settings.configure_logging()
    children = _children(args)
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for child in children:
        child.start()
    host = args.host or "127.0.0.1"
    urls = ", ".join(f"http://{host}:{args.base_port + i}" for i in range(args.gateways))
    log.info("cluster up: gateways %s; Ctrl+C stops everything", urls)
    try:
        while not stopping:
            for child in children:
                assert child.proc is not None
                code = child.proc.poll()
                if code is not None and not stopping:
                    backoff = min(10.0, 0.5 * 2**child.restarts)
                    if time.monotonic() - child.started > 30:
                        child.restarts = 0
                    log.error("%s exited with %s; restarting in %.1f s", child.name, code, backoff)
                    time.sleep(backoff)
                    child.restarts += 1
                    child.start()
            time.sleep(0.2)  # a supervision tick, not a wait for a condition
    finally:
        for child in children:
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.proc.kill()
                child.proc.wait()
        log.info("cluster stopped")
    return 0
