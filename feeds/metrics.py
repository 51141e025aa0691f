"""Prometheus metrics as a node_exporter textfile (written by the daemon after each attempt).

Written like a snapshot (``feeds.publish.write_atomic``): a temporary file renamed over the
target, so node_exporter never reads a half-written file, and mode 0644 whatever the
service's ``UMask=0077``, so node_exporter (another user) can read it.

A textfile keeps its last values when the daemon dies, so ``data_age_seconds`` freezes:
``portal_feeds_last_run_timestamp_seconds`` (the time of this write) lets an alert on
``time() - portal_feeds_last_run_timestamp_seconds`` catch a dead daemon (docs/deploy.md).

``portal_feeds_scheduler_events_total{feed,event}`` counts what the daemon noticed about its
own schedule and files: ``stalled`` (the liveness check re-planned a feed), ``file_rewritten``
(a published file was missing or damaged), ``missed``, ``still_running``, ``job_error``.
Ages are never negative, even just after the wall clock stepped back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from feeds.health import FeedRow

__all__ = ["FeedsCollector", "write_metrics"]


class FeedsCollector(Collector):
    """Turns health rows into metric families."""

    def __init__(self, rows: Sequence[FeedRow], now: datetime | None = None) -> None:
        self.rows = rows
        self.now = now

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
        run = GaugeMetricFamily(
            "portal_feeds_last_run_timestamp_seconds",
            "Unix time the daemon last wrote this file (after each attempt): alert on time() minus it.",
        )
        if self.now is not None:
            run.add_metric([], self.now.timestamp())
        attempted = GaugeMetricFamily(
            "portal_feeds_last_attempt_timestamp_seconds",
            "Unix time of the feed's last attempt, successful or not.",
            labels=["feed"],
        )
        events = CounterMetricFamily(
            "portal_feeds_scheduler_events",
            "Scheduler events by kind: stalled, file_rewritten, missed, still_running, job_error.",
            labels=["feed", "event"],
        )
        for r in self.rows:
            if r.last_attempt_at is not None:
                attempted.add_metric([r.feed], r.last_attempt_at.timestamp())
            if r.last_success_at is not None:
                last.add_metric([r.feed], r.last_success_at.timestamp())
            if r.data_age_s is not None:
                age.add_metric([r.feed], max(0.0, r.data_age_s))
            up.add_metric([r.feed], 1.0 if r.status == "fresh" else 0.0)
            failures.add_metric([r.feed], r.consecutive_failures)
            for outcome, n in sorted(r.attempts.items()):
                attempts.add_metric([r.feed, outcome], n)
            for event, n in sorted(r.scheduler_events.items()):
                events.add_metric([r.feed, event], n)
        yield from (run, attempted, last, age, up, failures, attempts, events)


def write_metrics(path: Path, rows: Sequence[FeedRow], now: datetime | None = None) -> None:
    """Write the textfile atomically, mode 0644; ``now`` is the last-run timestamp."""
    from feeds.publish import write_atomic

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FeedsCollector(rows, now))
    write_atomic(path, generate_latest(registry), mode=0o644)
