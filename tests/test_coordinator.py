"""One refresh: fresh -> stale (data intact) -> expired, unavailable on a cold cache,
politeness, retries on the fake clock, the validation gate, no raw error text published."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from feeds.store import GoodData, Health
from tests.helpers import Upstream, config_file, fail, make_coordinator, ok, vcb_fixture

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
timeout = "5s"
deadline = "20s"
"""


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def _snap(tmp_path: Path, feed: str = "exchange-rates") -> dict:  # type: ignore[type-arg]
    return json.loads((tmp_path / "snapshots" / f"{feed}.json").read_text(encoding="utf-8"))


def test_fresh_stale_expired_story(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(vcb_fixture(), headers={"Content-Type": "text/xml"}))
    coord, clock, store, _ = make_coordinator(cfg, up)

    r = run(coord.refresh(feed))
    assert (r.status, r.outcome) == ("fresh", "ok")
    snap = validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")
    assert snap["status"] == "fresh" and snap["stale_since"] is None
    assert len(snap["data"]["rates"]) == 20
    assert snap["as_of"].endswith("+07:00")
    assert snap["source"]["name"] == "Vietcombank"
    good_rates = snap["data"]["rates"]

    # The upstream breaks: 503 with a body naming the host.  The old data stays.
    clock.advance(900)
    up.default = ok(b"<html>Service Unavailable www.vietcombank.com.vn</html>", status=503)
    r = run(coord.refresh(feed))
    assert (r.status, r.outcome, r.detail) == ("stale", "http_status", "503")
    snap = validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")
    assert snap["data"]["rates"] == good_rates
    assert snap["stale_since"] is not None
    text = (tmp_path / "snapshots" / "exchange-rates.json").read_text()
    assert "vietcombank.com.vn" not in text.replace(feed.source.url, "")  # only the source url
    assert "Service Unavailable" not in text
    h: Health = store.get("health/exchange-rates")
    assert (h.outcome, h.detail, h.consecutive_failures) == ("http_status", "503", 1)
    first_stale = snap["stale_since"]

    # Garbage 200: invalid_payload, kept for inspection, never published.
    clock.advance(900)
    up.default = ok("<html><body>Lỗi hệ thống</body></html>".encode())
    r = run(coord.refresh(feed))
    assert (r.status, r.outcome) == ("stale", "invalid_payload")
    snap = validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")
    assert snap["stale_since"] == first_stale
    assert snap["data"]["rates"] == good_rates
    assert store.get("rejected/exchange-rates")[-1]["kind"] == "invalid_payload"
    assert store.get("health/exchange-rates").consecutive_failures == 2

    # Past max_stale: expired, data kept for the record.
    clock.advance(48 * 3600)
    r = run(coord.refresh(feed))
    assert r.status == "expired"
    snap = validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")
    assert snap["data"]["rates"] == good_rates

    # Recovery.
    clock.advance(900)
    up.default = ok(vcb_fixture())
    r = run(coord.refresh(feed))
    assert r.status == "fresh"
    assert validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")["stale_since"] is None
    assert store.get("health/exchange-rates").consecutive_failures == 0


def test_cold_cache_is_unavailable(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, RATES)
    up = Upstream(default=fail(httpx.ConnectError("[Errno 111] Connection refused")))
    coord, clock, store, _ = make_coordinator(cfg, up)
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert (r.status, r.outcome, r.detail) == ("unavailable", "connect", "refused")
    snap = validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")
    assert snap["data"] is None and snap["fetched_at"] is None and snap["source"] is None
    assert "Errno" not in json.dumps(snap)
    # connect failures are retried (the request never reached the host): several tries
    assert len(up.requests) > 1
    assert clock.monotonic() - 1000 <= 20  # within the deadline on the fake clock


def test_politeness_holds_back_without_failure(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, RATES)
    up = Upstream(default=ok(vcb_fixture()))
    coord, clock, store, _ = make_coordinator(cfg, up)
    feed = cfg.feeds["exchange-rates"]
    assert run(coord.refresh(feed)).status == "fresh"
    clock.advance(60)  # less than min_interval (5 min)
    r = run(coord.refresh(feed))
    assert (r.status, r.outcome, r.detail) == ("fresh", "held_back", "min_interval")
    assert len(up.requests) == 1
    assert store.get("health/exchange-rates").consecutive_failures == 0
    validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")
    clock.advance(241)
    assert run(coord.refresh(feed)).outcome == "ok"
    assert len(up.requests) == 2


def test_5xx_not_retried_within_min_interval_but_retried_without(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    up = Upstream(default=ok(vcb_fixture()), script=[ok(b"", status=503)])
    coord, clock, _, _ = make_coordinator(cfg, up)
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert r.outcome == "http_status" and len(up.requests) == 1  # polite: one request per 5 min

    cfg2 = config_file(tmp_path, RATES + 'min_interval = "0s"\n')
    up2 = Upstream(default=ok(vcb_fixture()), script=[ok(b"", status=503), ok(b"", status=502)])
    coord2, clock2, _, _ = make_coordinator(cfg2, up2)
    r = run(coord2.refresh(cfg2.feeds["exchange-rates"]))
    assert r.outcome == "ok" and len(up2.requests) == 3
    assert len(clock2.sleeps) == 2 and all(0 <= s <= 8 for s in clock2.sleeps)


def test_404_not_retried(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES + 'min_interval = "0s"\n')
    up = Upstream(default=ok(b"", status=404))
    coord, _, _, _ = make_coordinator(cfg, up)
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert (r.outcome, r.detail, len(up.requests)) == ("http_status", "404", 1)


def test_retry_after_honoured_then_deferred(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES + 'min_interval = "0s"\n')
    up = Upstream(default=ok(vcb_fixture()), script=[ok(b"", status=429, headers={"Retry-After": "3"})])
    coord, clock, _, _ = make_coordinator(cfg, up)
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert r.outcome == "ok" and clock.sleeps == [3.0]

    # Longer than the deadline: stop now, and the next run waits for it.
    up.script = [ok(b"", status=503, headers={"Retry-After": "120"})]
    clock.advance(900)
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert (r.outcome, r.status) == ("http_status", "stale")
    n = len(up.requests)
    clock.advance(60)
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert r.outcome == "held_back" and len(up.requests) == n
    clock.advance(61)
    assert run(coord.refresh(cfg.feeds["exchange-rates"])).outcome == "ok"


def test_rate_moving_too_far_is_rejected(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    up = Upstream(default=ok(vcb_fixture()))
    coord, clock, store, _ = make_coordinator(cfg, up)
    feed = cfg.feeds["exchange-rates"]
    run(coord.refresh(feed))
    good: GoodData = store.get("good/exchange-rates")
    usd = next(r for r in good.data["rates"] if r["code"] == "USD")
    body = vcb_fixture().replace(f'{usd["sell"]:,.2f}'.encode(), f'{usd["sell"] * Decimal("1.5"):,.2f}'.encode())
    assert body != vcb_fixture()
    up.default = ok(body)
    clock.advance(900)
    r = run(coord.refresh(feed))
    assert (r.outcome, r.detail, r.status) == ("rejected", "moved_too_far", "stale")
    assert store.get("good/exchange-rates") == good
    assert store.get("rejected/exchange-rates")[-1]["body"] == body


def test_deadline_bounds_a_hanging_upstream(tmp_path: Path) -> None:
    """A real-time bound: an upstream that never answers still gets a publish by the deadline."""
    cfg = config_file(tmp_path, RATES.replace('deadline = "20s"', 'deadline = "1s"').replace('timeout = "5s"', 'timeout = "1s"'))

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    from feeds.clock import SystemClock
    from feeds.coordinator import Coordinator
    from feeds.store import MemoryStore

    async def go():  # type: ignore[no-untyped-def]
        client = httpx.AsyncClient(transport=httpx.MockTransport(hang))
        coord = Coordinator(cfg, MemoryStore(), client, SystemClock())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await coord.refresh(cfg.feeds["exchange-rates"])
        return r, loop.time() - t0

    r, took = run(go())
    assert (r.status, r.outcome) == ("unavailable", "timeout")
    assert took < 3
    assert (tmp_path / "snapshots" / "exchange-rates.json").exists()


@pytest.mark.parametrize("status", ["fresh", "stale"])
def test_republish_keeps_true_status(tmp_path: Path, status: str, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, RATES)
    up = Upstream(default=ok(vcb_fixture()))
    coord, clock, store, _ = make_coordinator(cfg, up)
    feed = cfg.feeds["exchange-rates"]
    run(coord.refresh(feed))
    if status == "stale":
        clock.advance(900)
        up.default = ok(b"", status=500)
        run(coord.refresh(feed))
    (tmp_path / "snapshots" / "exchange-rates.json").unlink()
    clock.advance(5)
    r = coord.republish(feed)
    assert r.status == status
    assert validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")["status"] == status
