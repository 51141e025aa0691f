"""A wall clock stepped back (NTP correction, VM restore) never freezes a feed (issue 16).

Every time the store or the published file kept from before the step lies "in the future"
afterwards.  Waiting for the clock to catch up -- the last request's politeness window, an
open breaker's cool-down, an ``Expires``, the never-older rule's file time -- would stop the
feed for the size of the step while its file still said ``fresh``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from feeds.clock import FakeClock
from feeds.politeness import HostGuard
from feeds.store import MemoryStore
from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_dated

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
"""



def _step_back(clock: FakeClock, seconds: float) -> None:
    clock._now -= timedelta(seconds=seconds)  # the wall clock only; monotonic goes on


def test_a_fetch_after_a_step_back_is_published(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    path = tmp_path / "snapshots" / "exchange-rates.json"
    up = Upstream(default=ok(vcb_dated("11/24/2026 2:55:00 PM")))
    coord, clock, store, _ = make_coordinator(cfg, up)
    asyncio.run(coord.refresh(feed))
    before = json.loads(path.read_text(encoding="utf-8"))
    clock.advance(600)
    _step_back(clock, 3600)
    up.default = ok(vcb_dated("11/24/2026 3:05:00 PM"))
    r = asyncio.run(coord.refresh(feed))
    after = validate_snapshot(path)
    assert r.outcome == "ok" and r.status == "fresh"
    # The new table is published, stamped on the corrected clock.
    assert after["as_of"] != before["as_of"]
    assert after["fetched_at"] == r.snapshot["fetched_at"]
    assert len(up.requests) == 2


def test_the_politeness_window_never_outlasts_min_interval_after_a_step_back() -> None:
    clock = FakeClock()
    store = MemoryStore()
    guard = HostGuard(store, monotonic=clock.monotonic)
    assert guard.claim("bank", 300, clock.now())
    clock.advance(100)
    _step_back(clock, 3600)
    # Our own last request was 100 s ago (monotonic): 200 s more, not an hour and more.
    assert guard.wait_needed("bank", 300, clock.now()) == 200
    clock.advance(200)
    assert guard.wait_needed("bank", 300, clock.now()) == 0
    assert guard.claim("bank", 300, clock.now())
    # Another process's request ahead of the clock (no monotonic record): asked now.
    other = HostGuard(store)
    store.set("polite/bank", {"last_request_at": clock.now() + timedelta(hours=2), "not_before": None})
    assert other.wait_needed("bank", 300, clock.now()) == 0


def test_a_retry_after_never_holds_longer_than_its_cap_after_a_step_back() -> None:
    clock = FakeClock()
    store = MemoryStore()
    guard = HostGuard(store, retry_after_max=3600)
    guard.defer("bank", clock.now() + timedelta(seconds=3600))
    _step_back(clock, 86400)
    assert guard.wait_needed("bank", 0, clock.now()) == 3600


def test_an_open_breaker_is_probed_after_a_step_back() -> None:
    clock = FakeClock()
    store = MemoryStore()
    guard = HostGuard(store, breaker_threshold=1, breaker_cooldown=600)
    guard.record_result("bank", False, clock.now(), "http_status")
    assert guard.breaker("bank", clock.now()).state == "open"
    _step_back(clock, 3600)
    assert guard.breaker("bank", clock.now()).state == "half_open"
