"""Prometheus metrics of the record outbox, registered on a registry the caller passes in.

One ``OutboxMetrics`` per registry, shared by the writer and every dispatcher of a process (a
metric can be registered only once per registry). Backlog gauges are set by ``refresh_backlog``,
which the dispatchers call about once a second, because a collector cannot await Redis.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.appended = Counter(
            "hotline_records_appended",
            "Call records handed to the outbox, by where they went first (redis or the local spool)",
            ["via"],
            registry=registry,
        )
        self.recovered = Counter(
            "hotline_records_spool_recovered",
            "Spooled call records moved into Redis after it came back",
            registry=registry,
        )
        self.delivered = Counter(
            "hotline_records_delivered",
            "Call records the order system confirmed (created, accepted, duplicate)",
            ["result"],
            registry=registry,
        )
        self.attempts_failed = Counter(
            "hotline_records_delivery_failures",
            "Delivery attempts that will be retried, by reason",
            ["reason"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "hotline_records_dead_lettered",
            "Call records the order system refused (4xx) and that wait in the dead-letter stream",
            registry=registry,
        )
        self.latency = Histogram(
            "hotline_records_delivery_seconds",
            "From the record's arrival in the outbox stream to the order system's confirmation",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
            registry=registry,
        )
        self.backlog = Gauge(
            "hotline_records_outbox_backlog",
            "Call records in the outbox stream not yet confirmed by the order system",
            registry=registry,
        )
        self.pending = Gauge(
            "hotline_records_outbox_pending",
            "Call records read by a dispatcher and not yet confirmed (in flight or being retried)",
            registry=registry,
        )
        self.dead_letters = Gauge(
            "hotline_records_dead_letters",
            "Call records in the dead-letter stream (need a person: see the API's dead-letter list)",
            registry=registry,
        )
