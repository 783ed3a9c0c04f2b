"""The `inkstream` command line."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from engine.adapters.data_dir_lock import lock_data_dir
from engine.errors import DataDirInUse
from gateway import history_cli
from gateway.settings import Settings


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the whole embedded system in one process (no external servers)")
    p.add_argument("--host", help="interface to bind (default 127.0.0.1; INKSTREAM_HOST)")
    p.add_argument("--port", type=int, help="TCP port (default 8000; INKSTREAM_PORT)")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="where the event log and projections live (default ./inkstream-data; INKSTREAM_DATA_DIR)",
    )
    p.add_argument(
        "--fsync",
        action="store_true",
        default=None,
        help="fsync every group commit: survive power loss, not only crashes (INKSTREAM_FSYNC)",
    )
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING (default INFO)")


def _projector_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("projector", help="fold the Kafka updates topic into MongoDB (faust worker, own consumer group)")
    p.add_argument("--kafka-bootstrap", help="Kafka bootstrap servers host:port (INKSTREAM_KAFKA_BOOTSTRAP)")
    p.add_argument("--kafka-topic", help="the updates topic (INKSTREAM_KAFKA_TOPIC)")
    p.add_argument("--mongo-url", help="MongoDB connection string (INKSTREAM_MONGO_URL)")
    p.add_argument("--mongo-db", help="MongoDB database (INKSTREAM_MONGO_DB)")
    p.add_argument("--group", default="inkstream-projector", help="Kafka consumer group (default inkstream-projector)")
    p.add_argument("--checkpoint-every", type=int, help="versions between checkpoints (INKSTREAM_CHECKPOINT_EVERY)")
    p.add_argument(
        "--board-interval",
        type=float,
        default=5.0,
        help="seconds between rewrites of a busy board's MongoDB document (the archive is written at once)",
    )
    p.add_argument("--instance-id", help="static group membership id: a restart rejoins without a rebalance wait")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING (default INFO)")


def _distributed_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from gateway import cluster

    cluster.add_parsers(sub)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="inkstream", description="Collaborative whiteboard on an event-sourced Yjs CRDT engine."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _projector_parser(sub)
    _distributed_parsers(sub)
    history_cli.add_parsers(sub)
    return parser


async def serve(settings: Settings) -> None:
    """Run the embedded system (Uvicorn, gateway/server.py) until SIGINT/SIGTERM."""
    from gateway.app import create_app
    from gateway.server import check_listen, serve_app, tune_gc
    from gateway.system import build_embedded

    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".inkstream-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SystemExit(
            f"inkstream: data directory {settings.data_dir} is not writable: {exc.strerror or exc}"
        ) from None
    # One writer per data dir, for the life of this process (the OS drops the lock when it exits,
    # kill -9 included). The event log takes it again when it opens, as every writer does.
    try:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        lock_data_dir(settings.data_dir, "inkstream serve", f"http://{host}:{settings.port}")
    except DataDirInUse as exc:
        raise SystemExit(
            "inkstream: "
            + exc.explain("stop it first, or give this server another --data-dir (one writer per data dir)")
        ) from None
    check_listen(settings.host, settings.port)
    app = create_app(build_embedded(settings))
    tune_gc()
    logging.getLogger("inkstream").info(
        "serving on http://%s:%d (data in %s)", settings.host, settings.port, settings.data_dir.resolve()
    )
    await serve_app(app, settings)


def projector(args: argparse.Namespace) -> int:
    """Run the MongoDB projector worker until SIGINT/SIGTERM."""
    from gateway.cluster import require_distributed

    require_distributed("projector")
    if args.board_interval <= 0:
        raise SystemExit(f"inkstream: --board-interval must be positive, not {args.board_interval}")
    from projections.mongo_projector import ProjectorConfig, run_worker

    settings = Settings.load(
        kafka_bootstrap=args.kafka_bootstrap,
        kafka_topic=args.kafka_topic,
        mongo_url=args.mongo_url,
        mongo_db=args.mongo_db,
        checkpoint_every=args.checkpoint_every,
        log_level=args.log_level,
    )
    settings.configure_logging()
    config = ProjectorConfig(
        kafka_bootstrap=settings.kafka_bootstrap,
        topic=settings.kafka_topic,
        mongo_url=settings.mongo_url,
        mongo_db=settings.mongo_db,
        group=args.group,
        checkpoint_every=settings.checkpoint_every,
        board_interval=args.board_interval,
        instance_id=args.instance_id,
    )
    return run_worker(config, settings.log_level)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `inkstream` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        settings = Settings.load(
            host=args.host, port=args.port, data_dir=args.data_dir, fsync=args.fsync, log_level=args.log_level
        )
        settings.configure_logging()
        from gateway.server import run_loop

        run_loop(serve(settings), settings.event_loop)
        return 0
    if args.command == "projector":
        return projector(args)
    if args.command in history_cli.COMMANDS:
        return history_cli.main(args)
    if args.command in ("gateway", "processor", "cluster"):
        from gateway import cluster

        return cluster.main(args)
    return 2
