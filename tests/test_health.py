"""status table/JSON, the Nagios check and the STATUS line, from store contents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest

from feeds.config import load_config
from feeds.health import (
    evaluate_check,
    feed_rows,
    format_table,
    print_status,
    run_check,
    status_line,
)
from feeds.instance import InstanceLock
from feeds.politeness import HostGuard
from feeds.store import GoodData, Health, MemoryStore, open_store
from tests.conftest import write_config

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

CONFIG = """
[feeds.rates]
kind = "vietcombank"
url = "http://127.0.0.1:9/pXML.aspx"
every = "15m"
max_stale = "48h"

[feeds.weather]
kind = "open-meteo"
url = "http://127.0.0.2:9/v1/forecast"
every = "30m"
locations = [{ id = "hn", name = "Hà Nội", lat = 21.03, lon = 105.85 }]
"""


def _put(store: MemoryStore, feed: str, status: str, *, attempt_ago: float = 60, fetched_ago: float | None = 60,
         outcome: str = "ok", detail: str | None = None, failures: int = 0) -> None:
    store.set(
        f"health/{feed}",
        Health(feed=feed, last_attempt_at=NOW - timedelta(seconds=attempt_ago), outcome=outcome, detail=detail,
               status=status, consecutive_failures=failures,
               last_success_at=None if fetched_ago is None else NOW - timedelta(seconds=fetched_ago),
               next_attempt_at=NOW + timedelta(minutes=14), attempts={"ok": 3, outcome: failures or 3}),
    )
    if fetched_ago is not None:
        store.set(f"good/{feed}", GoodData({"x": 1}, NOW - timedelta(seconds=fetched_ago), None, "S", "http://x/"))


@pytest.fixture
def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_config(write_config(tmp_path, CONFIG))


@pytest.mark.parametrize(
    ("rates", "weather", "code", "word"),
    [
        (("fresh", {}), ("fresh", {}), 0, "OK"),
        (("stale", {"outcome": "dns", "detail": "temporary", "failures": 2}), ("fresh", {}), 1, "WARNING"),
        (("expired", {"outcome": "http_status", "detail": "503", "fetched_ago": 200000}), ("fresh", {}), 2, "CRITICAL"),
        (("unavailable", {"outcome": "dns", "fetched_ago": None}), ("fresh", {}), 2, "CRITICAL"),
        (("fresh", {"attempt_ago": 3 * 900 + 1}), ("fresh", {}), 2, "CRITICAL"),  # daemon dead
        (("fresh", {"attempt_ago": 3 * 900 - 1}), ("fresh", {}), 0, "OK"),
    ],
)
def test_check_levels(config, rates, weather, code, word) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStore()
    _put(store, "rates", rates[0], **rates[1])
    _put(store, "weather", weather[0], **weather[1])
    result = evaluate_check(feed_rows(config, store, NOW), NOW)
    assert result.code == code
    assert result.line.startswith(f"PORTAL-FEEDS {word} - ")
    assert "| 'rates_age'=" in result.line
    assert "\n" not in result.line


def test_check_never_attempted_is_critical_and_stale_warning_can_be_off(config) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStore()
    assert evaluate_check(feed_rows(config, store, NOW), NOW).code == 2
    _put(store, "rates", "stale", outcome="dns")
    _put(store, "weather", "fresh")
    assert evaluate_check(feed_rows(config, store, NOW), NOW, stale_warning=False).code == 0


def test_status_table_and_line(config) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStore()
    _put(store, "rates", "stale", outcome="dns", detail="nxdomain", failures=2, fetched_ago=7200)
    _put(store, "weather", "fresh")
    HostGuard(store, breaker_threshold=1).record_result("127.0.0.1", False, NOW, "dns")
    rows = feed_rows(config, store, NOW)
    table = format_table(rows, NOW)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["FEED", "STATUS", "AGE"]
    assert lines[1].split()[:3] == ["rates", "stale", "2h00m"]
    assert "dns (nxdomain)" in lines[1] and "open" in lines[1]
    assert lines[2].split()[:3] == ["weather", "fresh", "60s"]
    # columns aligned: STATUS starts at the same offset on every line
    assert len({line.index(w) for line, w in zip(lines, ["STATUS", "stale", "fresh"], strict=True)}) == 1
    assert status_line(rows) == "2 feeds: 1 fresh, 1 stale (rates: dns)"


def test_status_json_and_check_via_disk_store(config, capsys) -> None:  # type: ignore[no-untyped-def]
    store = open_store(config.cache_dir)
    try:
        store.set("health/rates", Health(feed="rates", last_attempt_at=NOW, status="fresh", outcome="ok"))
    finally:
        store.close()

    class Fixed:
        def now(self) -> datetime:
            return NOW

    out = StringIO()
    assert print_status(config, as_json=True, clock=Fixed(), out=out) == 1  # weather unknown
    doc = json.loads(out.getvalue())
    assert [f["feed"] for f in doc["feeds"]] == ["rates", "weather"]
    assert doc["feeds"][0]["status"] == "fresh" and doc["feeds"][1]["status"] == "unknown"
    assert doc["feeds"][0]["circuit"] == "closed"
    out = StringIO()
    # No daemon and no published file: nothing proves the feed is refreshed (issue 16).
    assert run_check(config, ["rates"], clock=Fixed(), out=out) == 2
    assert "daemon down" in out.getvalue() and "rates file missing" in out.getvalue()
    config.snapshot_dir.mkdir(parents=True, exist_ok=True)
    (config.snapshot_dir / "rates.json").write_text(json.dumps({"generated_at": NOW.isoformat()}))
    with InstanceLock(config.cache_dir, "run", config.path) as lock:
        lock.beat(NOW)
        out = StringIO()
        assert run_check(config, ["rates"], clock=Fixed(), out=out) == 0
    assert out.getvalue().startswith("PORTAL-FEEDS OK - 1/1 feeds fresh")


def test_scheduler_events_shown_while_recent(config) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStore()
    _put(store, "rates", "fresh")
    _put(store, "weather", "fresh")
    store.set("scheduler/rates", {"missed": 2})
    store.set("scheduler/rates/last", {"event": "missed", "at": NOW - timedelta(minutes=5)})
    rows = feed_rows(config, store, NOW)
    assert rows[0].to_json()["scheduler_events"] == {"missed": 2}
    assert rows[0].to_json()["last_scheduler_event"] == {"event": "missed", "at": "2026-11-24T07:55:00+00:00"}
    assert rows[1].to_json()["last_scheduler_event"] is None
    lines = format_table(rows, NOW).splitlines()
    assert "[scheduler missed 5m ago]" in lines[1]
    assert "scheduler" not in lines[2]
    later = NOW + timedelta(days=2)  # an old event no longer clutters the table
    assert "scheduler" not in format_table(feed_rows(config, store, later), later)
