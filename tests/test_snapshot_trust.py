"""Issue 8 §4: what a snapshot says and must never say -- no secrets in ``source.url``,
and a frozen upstream (fetch fine, data not moving) flagged by ``upstream_stale_since``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feeds.clock import VIETNAM_TZ, FakeClock
from feeds.frozen import upstream_stale_since
from feeds.health import evaluate_check, feed_rows
from feeds.redact import redact_url
from feeds.sources import met_no, open_meteo, vietcombank
from feeds.sources.vn_calendar import is_business_day, next_business_day
from feeds.store import GoodData
from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_fixture


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("http://portal:S3cretPassw0rd@host/x?apikey=SECRET123", "http://host/x"),
        ("https://u@host:8443/x?b=10&token=T0K&access_token=A&sig=S#frag", "https://host:8443/x?b=10"),
        ("https://host/x?API_KEY=k&Password=p&session_id=s&b=10", "https://host/x?b=10"),
        ("https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10",
         "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"),
        ("http://[::1]:8080/x?secret=1", "http://[::1]:8080/x"),
    ],
)
def test_redact_url(url: str, public: str) -> None:
    assert redact_url(url) == public


SECRET_FEED = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "http://portal:S3cretPassw0rd@bank.example/pXML.aspx?b=10&apikey=SECRET123"
every = "15m"
timeout = "5s"
deadline = "20s"
min_interval = "0s"
"""


def test_credentials_never_reach_the_snapshot(tmp_path: Path, validate_snapshot: Any) -> None:
    cfg = config_file(tmp_path, SECRET_FEED)
    coord, _, store, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert r.outcome == "ok"
    text = (tmp_path / "snapshots" / "exchange-rates.json").read_text(encoding="utf-8")
    for secret in ("S3cretPassw0rd", "SECRET123", "portal:", "apikey"):
        assert secret not in text
    assert validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")["source"]["url"] == (
        "http://bank.example/pXML.aspx?b=10"
    )
    # Good data stored by an older version with the raw URL is published redacted too.
    good = store.get("good/exchange-rates")
    store.set("good/exchange-rates", GoodData(good.data, good.fetched_at, good.as_of, good.source_name,
                                              "http://portal:S3cretPassw0rd@bank.example/?apikey=SECRET123"))
    coord.republish(cfg.feeds["exchange-rates"])
    assert "S3cret" not in (tmp_path / "snapshots" / "exchange-rates.json").read_text(encoding="utf-8")


def test_public_url_is_published_when_configured(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, SECRET_FEED + 'public_url = "https://www.vietcombank.com.vn/vi-VN/KHCN/Cong-cu-tien-ich/Ty-gia"\n')
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert r.snapshot["source"]["url"] == "https://www.vietcombank.com.vn/vi-VN/KHCN/Cong-cu-tien-ich/Ty-gia"


# -- frozen upstreams ---------------------------------------------------------------------


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VIETNAM_TZ)  # type: ignore[misc]


def test_calendar_knows_weekends_and_holidays() -> None:
    assert is_business_day(date(2026, 11, 24))  # a Tuesday
    assert not is_business_day(date(2026, 11, 28))  # Saturday
    assert not is_business_day(date(2026, 9, 2))  # National Day
    assert not is_business_day(date(2025, 1, 29))  # Tết
    assert next_business_day(date(2026, 11, 27)) == date(2026, 11, 30)  # Friday -> Monday
    assert next_business_day(date(2026, 2, 13)) == date(2026, 2, 23)  # across Tết 2026


@pytest.mark.parametrize(
    ("as_of", "now", "stale"),
    [
        (vn(2026, 11, 27, 15, 0), vn(2026, 11, 29, 20, 0), False),  # Friday's table on Sunday
        (vn(2026, 11, 27, 15, 0), vn(2026, 11, 30, 23, 0), False),  # ... on Monday evening
        (vn(2026, 11, 27, 15, 0), vn(2026, 12, 1, 0, 1), True),  # ... on Tuesday: frozen
        (vn(2026, 2, 13, 16, 0), vn(2026, 2, 20, 12, 0), False),  # before Tết, during Tết
        (vn(2026, 11, 24, 8, 0), vn(2026, 11, 25, 20, 0), False),
        (vn(2026, 11, 24, 8, 0), vn(2026, 11, 26, 0, 1), True),
        (vn(2022, 12, 21, 14, 36), vn(2026, 11, 24, 15, 0), True),
    ],
)
def test_vietcombank_allows_about_one_business_day(as_of: datetime, now: datetime, stale: bool) -> None:
    assert (upstream_stale_since("Vietcombank", as_of, now) is not None) is stale


def test_weather_sources_allow_hours() -> None:
    now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert upstream_stale_since(open_meteo.SOURCE_NAME, now - timedelta(hours=2), now) is None
    assert upstream_stale_since(open_meteo.SOURCE_NAME, now - timedelta(hours=4), now) == now - timedelta(hours=1)
    assert upstream_stale_since(met_no.SOURCE_NAME, now - timedelta(hours=11), now) is None
    assert upstream_stale_since(met_no.SOURCE_NAME, now - timedelta(hours=13), now) is not None
    assert upstream_stale_since(vietcombank.SOURCE_NAME, None, now) is None
    assert upstream_stale_since("Unknown", now - timedelta(days=9), now) is None


RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
timeout = "5s"
deadline = "20s"
min_interval = "0s"
"""


def test_a_frozen_table_is_flagged_in_the_snapshot_status_and_check(tmp_path: Path, validate_snapshot: Any) -> None:
    cfg = config_file(tmp_path, RATES)
    clock = FakeClock(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    # The bank's own DateTime says 2022: the fetch works, the data does not move.
    coord, clock, store, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())), clock=clock)
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    snap = validate_snapshot(tmp_path / "snapshots" / "exchange-rates.json")
    assert r.status == "fresh"
    assert snap["upstream_stale_since"] == "2022-12-23T00:00:00+07:00"  # end of Thu 22 Dec 2022
    rows = feed_rows(cfg, store, clock.now())
    assert rows[0].to_json()["upstream"]["upstream_stale_since"] is not None
    check = evaluate_check(rows, clock.now())
    assert check.code == 1 and "upstream data stale" in check.line


def test_a_current_table_is_not_flagged(tmp_path: Path, validate_snapshot: Any) -> None:
    cfg = config_file(tmp_path, RATES)
    clock = FakeClock(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    body = vcb_fixture().replace(b"12/21/2022 2:36:27 PM", b"11/24/2026 2:36:27 PM")
    coord, clock, store, _ = make_coordinator(cfg, Upstream(default=ok(body)), clock=clock)
    run(coord.refresh(cfg.feeds["exchange-rates"]))
    snap = json.loads((tmp_path / "snapshots" / "exchange-rates.json").read_text(encoding="utf-8"))
    assert snap["upstream_stale_since"] is None
    assert evaluate_check(feed_rows(cfg, store, clock.now()), clock.now()).code == 0
    # Three days later with no new table from the bank (served from the same body): flagged.
    clock.advance(3 * 86400)
    run(coord.refresh(cfg.feeds["exchange-rates"]))
    snap = json.loads((tmp_path / "snapshots" / "exchange-rates.json").read_text(encoding="utf-8"))
    assert snap["status"] == "fresh" and snap["upstream_stale_since"] == "2026-11-26T00:00:00+07:00"
