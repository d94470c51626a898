"""Prometheus metrics of the shared machinery, on the registry of the app that owns it.

Each app has its own ``CollectorRegistry`` (tests build many apps in one process).
Metric names are stable: ops dashboards query them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BusMetrics:
    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        labels = {"service": service}
        self.service = service
        self.outbox_published = Counter(
            "outbox_published_total",
            "Outbox events published to Kafka",
            ["service"],
            registry=registry,
        ).labels(**labels)
        self.outbox_publish_errors = Counter(
            "outbox_publish_errors_total",
            "Failed outbox publish attempts (broker unreachable)",
            ["service"],
            registry=registry,
        ).labels(**labels)
        self.outbox_backlog = Gauge(
            "outbox_backlog",
            "Outbox events not yet published",
            ["service"],
            registry=registry,
        ).labels(**labels)
        self.consumer_events = Counter(
            "consumer_events_total",
            "Events seen by a consumer, by outcome (applied, duplicate, ignored, dead_lettered)",
            ["service", "consumer", "outcome"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "consumer_lag",
            "Messages behind the end of each partition",
            ["service", "consumer", "topic", "partition"],
            registry=registry,
        )
        self.consumer_batch_seconds = Histogram(
            "consumer_batch_seconds",
            "Time to apply one batch of events",
            ["service", "consumer"],
            registry=registry,
        )
