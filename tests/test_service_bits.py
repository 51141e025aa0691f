"""Smaller pieces of the service: triggers, journal logging, metrics textfile, and the
fresh -> stale -> expired story against a real server with an injected clock."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from feeds.app import open_runtime
from feeds.clock import FakeClock
from feeds.config import load_config
from feeds.daemon import build_trigger
from feeds.health import FeedRow
from feeds.logs import JournalFormatter, stdout_is_journal
from feeds.metrics import write_metrics
from feeds.testing.upstream import UpstreamSimulator
from tests.helpers import config_file


def test_triggers(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, """
[feeds.a]
kind = "vietcombank"
every = "15m"
[feeds.b]
kind = "vietcombank"
at = "*/15 7-18 * * 1-6"
""")
    interval = build_trigger(cfg.feeds["a"])
    assert interval.interval.total_seconds() == 900 and interval.jitter == 90
    cron = build_trigger(cfg.feeds["b"])
    # Tuesday 2026-11-24 06:50 UTC = 13:50 in Vietnam: next run 14:00 local
    nxt = cron.get_next_fire_time(None, datetime(2026, 11, 24, 6, 50, tzinfo=UTC))
    assert nxt is not None and nxt.astimezone(UTC) == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    # Saturday 18:50 local -> Monday 07:00 local (Sunday excluded)
    nxt = cron.get_next_fire_time(None, datetime(2026, 11, 28, 11, 50, tzinfo=UTC))
    assert nxt is not None and nxt.astimezone(UTC) == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def test_journal_prefixes(tmp_path: Path) -> None:
    rec = logging.LogRecord("feeds.x", logging.WARNING, __file__, 1, "attempt feed=%s", ("a",), None)
    assert JournalFormatter("%(name)s: %(message)s").format(rec) == "<4>feeds.x: attempt feed=a"
    rec.levelno = logging.INFO
    assert JournalFormatter("%(message)s").format(rec).startswith("<6>")
    f = open(tmp_path / "out", "w")  # noqa: SIM115
    st = os.fstat(f.fileno())
    assert stdout_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f)
    assert not stdout_is_journal({"JOURNAL_STREAM": "1:2"}, f)
    assert not stdout_is_journal({}, sys.stdout)
    f.close()


def test_metrics_textfile_parses_and_is_replaced_atomically(tmp_path: Path) -> None:
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    row = FeedRow("rates", "exchange_rates", "stale", 120.0, now - timedelta(seconds=120), now, "dns",
                  "nxdomain", 2, "closed", None, 900, "Vietcombank", False, False, {"ok": 5, "dns": 2})
    path = tmp_path / "prom" / "portal_feeds.prom"
    write_metrics(path, [row])
    first = path.stat().st_ino
    write_metrics(path, [row])
    assert path.stat().st_ino != first  # a new file renamed over the old one
    assert [p.name for p in path.parent.iterdir()] == ["portal_feeds.prom"]
    fams = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    assert fams["portal_feeds_up"].samples[0].value == 0.0
    assert fams["portal_feeds_data_age_seconds"].samples[0].value == 120.0
    assert fams["portal_feeds_last_success_timestamp_seconds"].samples[0].value == (now - timedelta(seconds=120)).timestamp()
    attempts = {s.labels["outcome"]: s.value for s in fams["portal_feeds_attempts"].samples if s.name.endswith("_total")}
    assert attempts == {"ok": 5.0, "dns": 2.0}


def test_story_against_real_server_with_injected_clock(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    sim = UpstreamSimulator().start()
    path = tmp_path / "c.toml"
    path.write_text(f"""
[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"
[feeds.rates]
kind = "vietcombank"
url = "{sim.url('vietcombank')}"
max_stale = "48h"
timeout = "1s"
deadline = "2s"
""")
    cfg = load_config(path)
    clock = FakeClock()
    sim.now = lambda: clock.now().timestamp()  # the bank's DateTime follows the fake clock
    snap_path = tmp_path / "snapshots" / "rates.json"

    async def attempt() -> str:
        async with open_runtime(cfg, clock=clock) as rt:
            return (await rt.coordinator.refresh(cfg.feeds["rates"])).status

    try:
        assert asyncio.run(attempt()) == "fresh"
        good = json.loads(snap_path.read_text())["data"]
    finally:
        sim.stop()  # the upstream goes away: connection refused
    clock.advance(900)
    assert asyncio.run(attempt()) == "stale"
    assert validate_snapshot(snap_path)["data"] == good
    clock.advance(48 * 3600)
    assert asyncio.run(attempt()) == "expired"
    assert validate_snapshot(snap_path)["data"] == good
    # a cold cache elsewhere: unavailable
    cold = load_config(path)
    object.__setattr__(cold, "cache_dir", tmp_path / "cold-cache")
    object.__setattr__(cold, "snapshot_dir", tmp_path / "cold-snapshots")

    async def cold_attempt() -> str:
        async with open_runtime(cold, clock=clock) as rt:
            return (await rt.coordinator.refresh(cold.feeds["rates"])).status

    assert asyncio.run(cold_attempt()) == "unavailable"
    assert validate_snapshot(tmp_path / "cold-snapshots" / "rates.json")["data"] is None
    _ = io


def test_crontab_day_of_week_translation() -> None:
    from feeds.daemon import crontab_day_of_week as t

    assert t("1-6") == "mon,tue,wed,thu,fri,sat"
    assert t("0") == t("7") == "sun"
    assert t("0-2") == "sun,mon,tue"
    assert t("*/2") == "sun,tue,thu,sat"
    assert t("1,3,5") == "mon,wed,fri"
    assert t("*") == "*"


def test_scheduler_events_are_logged_and_recorded(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent

    from feeds.daemon import Daemon
    from feeds.notify import Notifier
    from feeds.store import MemoryStore

    cfg = config_file(tmp_path, '[feeds.rates]\nkind = "vietcombank"\n')
    d = Daemon(None, cfg, notifier=Notifier(None))
    store = MemoryStore()
    d.rt = SimpleNamespace(store=store)  # type: ignore[assignment]
    when = datetime(2026, 11, 24, tzinfo=UTC)
    d._on_event(JobExecutionEvent(EVENT_JOB_ERROR, "rates", None, when, exception=KeyError("bug")))
    d._on_event(JobExecutionEvent(EVENT_JOB_MISSED, "rates", None, when))
    assert store.get("scheduler/rates") == {"job_error": 1, "missed": 1}
    assert store.get("scheduler/rates/last") == {"event": "missed", "at": when}
    assert "scheduler event=job_error feed=rates error=KeyError" in caplog.text
