"""Issue 20: one attempt, one shape.  Each refresh makes its own ``feeds.attempt.Attempt``
(feed, start, deadline, forced, errors) and hands it to the fetch strategies; attempts running
at once never share a forced flag or a list of failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from feeds.errors import FeedError
from feeds.fetching import fetch_feed
from feeds.pipeline import HeldBack
from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_fixture

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
min_interval = "5m"
"""


def test_a_forced_attempt_forces_only_itself(tmp_path: Path) -> None:
    """``fetch --force`` while the scheduled attempt of the same feed runs: the forced one asks
    now; the other still keeps the politeness window (it was forced too when the coordinator
    kept one forced flag per feed)."""
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(vcb_fixture()))
    coord, _, _, _ = make_coordinator(cfg, up)

    async def main() -> tuple[str, str]:
        forced = asyncio.create_task(coord.refresh(feed, force=True))
        scheduled = asyncio.create_task(coord.refresh(feed))
        a, b = await asyncio.gather(forced, scheduled)
        return a.outcome, b.outcome

    assert asyncio.run(main()) == ("ok", "held_back")
    assert len(up.requests) == 1


def test_an_attempt_carries_its_own_state(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES.replace('min_interval = "5m"', 'min_interval = "0s"'))
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=lambda req: httpx.Response(503))
    coord, clock, _, _ = make_coordinator(cfg, up)
    first = coord.attempt(feed)
    assert (first.feed, first.forced, first.errors) == (feed, False, [])
    assert first.started == clock.now() and first.deadline_at == first.t0 + feed.deadline
    with pytest.raises(FeedError) as raised:
        asyncio.run(fetch_feed(first, coord.host_limits))
    # Every failure met (the retries too) is the attempt's, in order; the last is what failed.
    assert len(first.errors) == len(up.requests) >= 2
    assert all(e.kind == "http_status" for e in first.errors) and raised.value.kind == "http_status"
    second = coord.attempt(feed, force=True)
    assert second.forced and second.errors == [] and first.errors is not second.errors


def test_the_strategies_are_held_back_through_the_attempt(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(vcb_fixture()))
    coord, _, _, _ = make_coordinator(cfg, up)
    got = asyncio.run(fetch_feed(coord.attempt(feed), coord.host_limits))
    assert got.data["rates"] and len(up.requests) == 1
    with pytest.raises(HeldBack):
        asyncio.run(fetch_feed(coord.attempt(feed), coord.host_limits))
    asyncio.run(fetch_feed(coord.attempt(feed, force=True), coord.host_limits))
    assert len(up.requests) == 2


def test_replacing_a_seam_replaces_it_for_every_step(tmp_path: Path) -> None:
    """A reload's new config (``coord.config = ...``, feeds.daemon) reaches the request path and
    the publish step alike; so do a new store and clock."""
    from dataclasses import replace

    from feeds.clock import FakeClock
    from feeds.store import MemoryStore

    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    other = tmp_path / "elsewhere"
    other.mkdir()
    coord.config = replace(cfg, snapshot_dir=other)
    store, clock = MemoryStore(), FakeClock()
    coord.store, coord.clock = store, clock
    assert coord.pipeline.config.snapshot_dir == other and coord.publisher.config.snapshot_dir == other
    assert coord.pipeline.store is store is coord.publisher.store
    assert coord.pipeline.clock is clock is coord.publisher.clock
    r = asyncio.run(coord.refresh(feed))
    assert r.status == "fresh" and (other / "exchange-rates.json").exists()
    assert not (tmp_path / "snapshots" / "exchange-rates.json").exists()
    assert store.get("health/exchange-rates").outcome == "ok"
