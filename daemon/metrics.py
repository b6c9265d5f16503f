"""Prometheus metrics: `skilld_*` families read from the stores at scrape time, plus live extraction timings.

Counts come from SQLite through a read-only connection of their own (WAL lets it read beside the writer),
so a scrape never waits for the pipeline's lock and the numbers survive restarts. Extraction latency and
failures are measured in this process, as Prometheus counters and histograms usually are.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter as Tally  # prometheus_client's Counter is the metric
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.health import Health
from daemon.status import status_report
from storage.db import open_read_only
from storage.events import EventStore
from storage.learning import SKILL_COUNT, LearningStore
from storage.models import ModelRegistry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class StoreCollector(Collector):
    """Families computed from the stores on each scrape."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self._conn is None:
                self._conn = open_read_only(self.home / "skilld.db")
            yield from self._families(self._conn)

    def _families(self, conn: sqlite3.Connection) -> Iterator[Metric]:
        report = status_report(EventStore(conn), self.home)
        learning = LearningStore(conn)
        counts = learning.counts()
        sources = report["sources"]

        # A gauge: retention and `forget` delete events.
        events = GaugeMetricFamily("skilld_events", "Events stored, one per valid line, by source.", labels=["source"])
        dead = GaugeMetricFamily(
            "skilld_dead_letters", "Lines kept aside with their reason, by source.", labels=["source"]
        )
        lag = GaugeMetricFamily("skilld_lag_bytes", "Bytes of telemetry not read yet, by source.", labels=["source"])
        lines = CounterMetricFamily("skilld_lines_read", "Telemetry lines read, by source.", labels=["source"])
        for s in sources:
            events.add_metric([s["name"]], s["events"])
            dead.add_metric([s["name"]], s["dead_letters"])
            lag.add_metric([s["name"]], s["lag_bytes"])
            lines.add_metric([s["name"]], s["lines"])
        yield from (events, dead, lag, lines)

        yield GaugeMetricFamily(
            "skilld_interactions", "Interactions after folding and joining.", report["interactions"]
        )
        queue = GaugeMetricFamily("skilld_extraction_queue", "Extraction queue items by state.", labels=["state"])
        for state in ("pending", "waiting", "parked"):
            queue.add_metric([state], counts[f"{state}_extractions"])
        queue.add_metric(["done"], counts["extracted"])
        yield queue

        below, count, total = learning.score_histogram(SCORE_BUCKETS)
        buckets = [(f"{bound:g}", n) for bound, n in zip(SCORE_BUCKETS, below, strict=True)] + [("+Inf", count)]
        histogram = HistogramMetricFamily("skilld_value_score", "Value scores of scored interactions.")
        histogram.add_metric([], buckets, sum_value=total)
        yield histogram
        yield GaugeMetricFamily(
            "skilld_high_value_interactions", "Interactions at or above the threshold.", counts["high_value"]
        )

        yield GaugeMetricFamily("skilld_skills", "Skill patterns in the library.", learning.cursor(SKILL_COUNT))
        yield GaugeMetricFamily(
            "skilld_dataset_examples", "Records in the fine-tuning dataset.", report["dataset_examples"]
        )

        versions = Tally(version["status"] for version in ModelRegistry(conn).versions())
        yield CounterMetricFamily("skilld_finetune_runs", "Fine-tuning runs started.", sum(versions.values()))
        by_status = GaugeMetricFamily("skilld_model_versions", "Fine-tuned versions by status.", labels=["status"])
        for status, count in sorted(versions.items()):
            by_status.add_metric([status], count)
        yield by_status


# The stages that report faults (daemon/health.py), each always exported so a dashboard sees 0 as well as 1.
STAGES = ("telemetry", "ingest", "scoring", "extraction", "publish")


class HealthCollector(Collector):
    """`skilld_degraded{stage}`: 1 while a fault pauses the stage."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        degraded = {p["stage"] for p in self.health.problems()}
        family = GaugeMetricFamily("skilld_degraded", "1 while a fault pauses the stage.", labels=["stage"])
        for stage in sorted(set(STAGES) | degraded):
            family.add_metric([stage], int(stage in degraded))
        yield family


class Metrics:
    """skilld's metrics registry: the store's families and the extraction stage's own measurements."""

    def __init__(self, home: Path, health: Health | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.store = StoreCollector(home)
        self.registry.register(self.store)
        self.registry.register(HealthCollector(health or Health()))
        self.extraction_seconds = Histogram(
            "skilld_extraction_seconds",
            "Time to extract one skill with the local model.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.extraction_failures = Counter(
            "skilld_extraction_failures", "Extraction attempts that failed.", registry=self.registry
        )
        labels = ["check"]  # value_score, source_mix, topic_mix
        self.drift_psi = Gauge(
            "skilld_drift_psi", "PSI of the recent window against the reference.", labels, registry=self.registry
        )
        self.drift_detected = Gauge(
            "skilld_drift_detected", "1 when the last check found drift.", labels, registry=self.registry
        )
        self.drift_measured = Gauge(
            "skilld_drift_measured", "1 when the last check had enough interactions.", labels, registry=self.registry
        )
        self.drift_checks = Counter("skilld_drift_checks", "Drift checks run.", registry=self.registry)

    def record_drift(self, checks: list[dict[str, Any]]) -> None:
        """The figures of one drift check (daemon/insights.py)."""
        self.drift_checks.inc()
        for check in checks:
            measured = check["ks"] is not None or check["p_value"] is not None
            self.drift_measured.labels(check["name"]).set(int(measured))
            self.drift_detected.labels(check["name"]).set(int(check["drifted"]))
            if measured:  # too few interactions: no PSI to show (0 would read as "stable")
                self.drift_psi.labels(check["name"]).set(check["psi"])

    def exposition(self) -> bytes:
        """The text exposition format, for `GET /metrics`."""
        return generate_latest(self.registry)

    def close(self) -> None:
        self.store.close()
