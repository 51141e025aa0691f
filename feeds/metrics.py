"""Prometheus metrics as a node_exporter textfile (written by the daemon after each attempt).

prometheus-client's ``write_to_textfile`` writes a temporary file and renames it over the
target, so node_exporter never reads a half-written file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from feeds.health import FeedRow

__all__ = ["FeedsCollector", "write_metrics"]


class FeedsCollector(Collector):
    """Turns health rows into metric families."""

    def __init__(self, rows: Sequence[FeedRow]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        last = GaugeMetricFamily(
            "portal_feeds_last_success_timestamp_seconds",
            "Unix time of the feed's last successful fetch.",
            labels=["feed"],
        )
        age = GaugeMetricFamily(
            "portal_feeds_data_age_seconds", "Age of the data the feed publishes.", labels=["feed"]
        )
        up = GaugeMetricFamily(
            "portal_feeds_up", "1 when the feed's latest snapshot is fresh, else 0.", labels=["feed"]
        )
        failures = GaugeMetricFamily(
            "portal_feeds_consecutive_failures", "Failed attempts since the last success.", labels=["feed"]
        )
        attempts = CounterMetricFamily(
            "portal_feeds_attempts", "Attempts by outcome (ok, held_back or an error kind).",
            labels=["feed", "outcome"],
        )
        for r in self.rows:
            if r.last_success_at is not None:
                last.add_metric([r.feed], r.last_success_at.timestamp())
            if r.data_age_s is not None:
                age.add_metric([r.feed], r.data_age_s)
            up.add_metric([r.feed], 1.0 if r.status == "fresh" else 0.0)
            failures.add_metric([r.feed], r.consecutive_failures)
            for outcome, n in sorted(r.attempts.items()):
                attempts.add_metric([r.feed, outcome], n)
        yield from (last, age, up, failures, attempts)


def write_metrics(path: Path, rows: Sequence[FeedRow]) -> None:
    """Write the textfile atomically."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FeedsCollector(rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
