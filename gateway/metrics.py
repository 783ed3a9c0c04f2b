"""Prometheus metrics of one gateway process (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Counters, gauges and histograms exposed at GET /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge("inkstream_connections", "Open WebSocket connections", registry=self.registry)
        self.boards_loaded = Gauge("inkstream_boards_loaded", "Boards held in memory", registry=self.registry)
        self.updates_accepted = Counter(
            "inkstream_updates_accepted", "Updates accepted into the event log", registry=self.registry
        )
        self.updates_rejected = Counter(
            "inkstream_updates_rejected", "Client input rejected, by reason", ["reason"], registry=self.registry
        )
        self.append_seconds = Histogram(
            "inkstream_append_seconds",
            "Time from validation to durable append of one update",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.commit_batch = Histogram(
            "inkstream_log_commit_batch_size",
            "Updates per group commit of the embedded log",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
            registry=self.registry,
        )
        self.join_seconds = Histogram(
            "inkstream_join_seconds",
            "Server time to answer a client's sync step 1",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )

        self.board_renders = Counter(
            "inkstream_board_renders",
            "Live boards rendered to JSON for GET /api/boards/{id} (the others were served from the cache)",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
