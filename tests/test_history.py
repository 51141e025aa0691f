"""Issue 21: rates history — the archive, the day rule, the change arithmetic.

Real tables (the shared Vietcombank samples) restamped across Vietnam midnight, a weekend and
Tết; a frozen table adds no day; the archive alone holds history (the cache is not needed).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import history
from feeds.clock import VIETNAM_TZ
from feeds.sources import vietcombank
from tests.helpers import vcb_fixture, vcb_moved

FEED = "exchange-rates"


def table(at: datetime, bump: Decimal = Decimal(0)) -> dict[str, Any]:
    """The real recorded table, its rates moved by ``bump`` (USD sell by exactly ``bump``)."""
    parsed = vietcombank.parse(vcb_fixture())
    data = parsed.to_data()
    for r in data["rates"]:
        for c in history.COLUMNS:
            if r[c] is not None:
                r[c] = r[c] + bump
    return {"as_of": at, "data": data}


def put(tmp: Path, at: datetime, bump: Decimal = Decimal(0), today: date | None = None) -> bool:
    t = table(at, bump)
    return history.record(tmp, FEED, as_of=t["as_of"], fetched_at=at + timedelta(seconds=30), source="Vietcombank",
                          data=t["data"], today=today or history.vietnam_day(at))


def vn(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=VIETNAM_TZ)


def test_the_last_table_of_each_vietnam_day_is_kept(tmp_path: Path) -> None:
    assert put(tmp_path, vn(2026, 12, 3, 8, 30))
    assert put(tmp_path, vn(2026, 12, 3, 15, 53), Decimal(10))
    assert not put(tmp_path, vn(2026, 12, 3, 15, 53), Decimal(10))  # the same table again (frozen)
    assert not put(tmp_path, vn(2026, 12, 3, 9, 0), Decimal(5))  # an older one of that day
    # 23:59 and 00:01 Vietnam time are two days (16:59 and 17:01 UTC).
    assert put(tmp_path, datetime(2026, 12, 3, 16, 59, tzinfo=UTC), Decimal(15))
    assert put(tmp_path, datetime(2026, 12, 3, 17, 1, tzinfo=UTC), Decimal(20))
    assert history.archived_days(tmp_path, FEED) == [date(2026, 12, 3), date(2026, 12, 4)]
    day3 = history.read_day(tmp_path, FEED, date(2026, 12, 3))
    assert day3 is not None and day3["as_of"] == vn(2026, 12, 3, 23, 59)
    doc = json.loads((tmp_path / "history" / FEED / "2026-12-03.json").read_text(encoding="utf-8"))
    assert doc["as_of"] == "2026-12-03T23:59:00+07:00" and doc["date"] == "2026-12-03"


def test_previous_skips_weekends_and_tet(tmp_path: Path) -> None:
    put(tmp_path, vn(2027, 2, 4, 15, 0))  # Thursday before Tết 2027 (6 Feb)
    # Nothing from Friday 5 Feb to Wednesday 10 Feb (Tết); the bank publishes again on the 11th.
    prev = history.previous(tmp_path, FEED, vn(2027, 2, 11, 8, 0))
    assert prev is not None and prev["date"] == date(2027, 2, 4)
    put(tmp_path, vn(2026, 12, 4, 15, 0))  # a Friday
    prev = history.previous(tmp_path, FEED, vn(2026, 12, 7, 8, 0))  # Monday: Friday's table
    assert prev is not None and prev["date"] == date(2026, 12, 4)
    # The same day's earlier table is not "previous": only an earlier day is.
    assert history.previous(tmp_path, FEED, vn(2026, 12, 4, 16, 0)) is None or \
        history.previous(tmp_path, FEED, vn(2026, 12, 4, 16, 0))["date"] < date(2026, 12, 4)


def test_change_is_exact(tmp_path: Path) -> None:
    put(tmp_path, vn(2026, 12, 3, 15, 0))
    now = table(vn(2026, 12, 4, 15, 0), Decimal(20))
    data = history.with_change(now["data"], history.previous(tmp_path, FEED, now["as_of"]))
    usd = next(r for r in data["rates"] if r["code"] == "USD")
    before = next(r for r in table(vn(2026, 12, 3))["data"]["rates"] if r["code"] == "USD")
    assert usd["change"]["sell"] == Decimal(20)
    assert usd["previous"]["sell"] == before["sell"] and usd["previous"]["as_of"] == "2026-12-03T15:00:00+07:00"
    assert usd["change"]["sell_pct"] == (Decimal(20) * 100 / before["sell"]).quantize(Decimal("0.01"))
    assert isinstance(usd["change"]["sell"], Decimal)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2),
       st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2))
def test_change_arithmetic_is_decimal_exact(before: Decimal, now: Decimal) -> None:
    ch = history.change_of({"sell": now, "buy_transfer": None, "buy_cash": now}, {"sell": before, "buy_transfer": before, "buy_cash": None})
    assert ch["sell"] == now - before and before + ch["sell"] == now
    assert ch["buy_transfer"] is None and ch["buy_cash"] is None and ch["buy_cash_pct"] is None
    assert abs(ch["sell_pct"] - (now - before) * 100 / before) <= Decimal("0.005")


def test_retention_and_no_table_ahead_of_the_clock(tmp_path: Path) -> None:
    for i in range(5):
        put(tmp_path, vn(2026, 1, 1 + i, 15, 0), today=date(2026, 1, 5))
    put(tmp_path, vn(2026, 1, 9, 15, 0), today=date(2026, 1, 9))
    history.prune(tmp_path, FEED, today=date(2026, 1, 9), keep_days=5)
    assert history.archived_days(tmp_path, FEED) == [date(2026, 1, 4), date(2026, 1, 5), date(2026, 1, 9)]
    assert not put(tmp_path, vn(2026, 3, 1, 15, 0), today=date(2026, 1, 9))  # dated ahead


def test_damaged_or_foreign_day_files_are_ignored(tmp_path: Path) -> None:
    put(tmp_path, vn(2026, 12, 3, 15, 0))
    folder = tmp_path / "history" / FEED
    (folder / "2026-12-04.json").write_bytes(b'{"schema_version": 1, "date": ')
    (folder / "notes.txt").write_text("x")
    (folder / "2026-12-05.json").write_text(json.dumps({"schema_version": 1, "date": "2026-12-06", "as_of": "x", "rates": []}))
    prev = history.previous(tmp_path, FEED, vn(2026, 12, 6, 9, 0))
    assert prev is not None and prev["date"] == date(2026, 12, 3)
    # A damaged day is replaced by the next good table of that day.
    assert put(tmp_path, vn(2026, 12, 4, 15, 0))
    assert history.read_day(tmp_path, FEED, date(2026, 12, 4)) is not None
    (folder / "2026-12-05.json").unlink()  # (not a day file of ours: the schema check would say so)


def test_history_document_is_small_for_twenty_currencies(tmp_path: Path) -> None:
    start = vn(2026, 11, 1, 15, 0)
    for i in range(40):
        put(tmp_path, start + timedelta(days=i), Decimal(i))
    doc = history.history_document(tmp_path, FEED, generated_at=vn(2026, 12, 10), days=30)
    assert len(doc["days"]) == 30 and doc["days"][-1] == "2026-12-10"
    assert len(doc["currencies"]) == 20
    usd = doc["currencies"]["USD"]["sell"]
    assert usd[-1] - usd[0] == Decimal(29)
    body = history.compact(doc).encode()
    assert json.loads(body, parse_float=Decimal)["currencies"]["USD"]["sell"] == usd  # exact
    assert len(body) < 16_000, len(body)


@pytest.mark.parametrize("keep", [400])
def test_the_archive_alone_holds_history(tmp_path: Path, keep: int) -> None:
    """No cache involved: history is the published folder (deleting the cache loses no day)."""
    put(tmp_path, vn(2026, 12, 3, 15, 0))
    put(tmp_path, vn(2026, 12, 4, 15, 0), Decimal(20))
    assert [p.name for p in sorted((tmp_path / "history" / FEED).iterdir())] == ["2026-12-03.json", "2026-12-04.json"]
    assert history.previous(tmp_path, FEED, vn(2026, 12, 5, 9, 0))["date"] == date(2026, 12, 4)


# -- through the real coordinator ---------------------------------------------------------

RATES_FEED = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
min_interval = "0s"
"""


def test_two_days_of_tables_give_the_change_and_a_lost_cache_loses_no_day(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_dated

    cfg = config_file(tmp_path, RATES_FEED)
    feed = cfg.feeds["exchange-rates"]
    clock_start = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)  # 15:00 in Hà Nội
    from feeds.clock import FakeClock

    clock = FakeClock(clock_start)
    up = Upstream(default=ok(vcb_dated("12/3/2026 2:55:00 PM")))
    coord, clock, _, _ = make_coordinator(cfg, up, clock=clock)
    asyncio.run(coord.refresh(feed))
    # The same table again an hour later (a frozen source): no new day, no change yet.
    clock.advance(3600)
    asyncio.run(coord.refresh(feed))
    assert history.archived_days(cfg.snapshot_dir, "exchange-rates") == [date(2026, 12, 3)]
    snap = validate_snapshot(cfg.snapshot_dir / "exchange-rates.json")
    assert all("change" not in r for r in snap["data"]["rates"])
    # Next day (Friday): USD up 20 đồng.
    clock.advance(86400 - 3600)
    up.default = ok(vcb_moved(vcb_dated("12/4/2026 2:55:00 PM"), 20))
    asyncio.run(coord.refresh(feed))
    snap = validate_snapshot(cfg.snapshot_dir / "exchange-rates.json")
    usd = next(r for r in snap["data"]["rates"] if r["code"] == "USD")
    assert usd["change"]["sell"] == 20 and usd["change"]["buy_transfer"] == 20
    assert usd["previous"]["as_of"] == "2026-12-03T14:55:00+07:00"
    side = json.loads((cfg.snapshot_dir / "exchange-rates.history.json").read_text(encoding="utf-8"))
    assert side["days"] == ["2026-12-03", "2026-12-04"]
    assert side["currencies"]["USD"]["sell"][1] - side["currencies"]["USD"]["sell"][0] == 20
    html = (cfg.snapshot_dir / "exchange-rates.html").read_text(encoding="utf-8")
    assert "&#9650; 20" in html and "t&#259;ng 20 &#273;&#7891;ng" in html  # "▲ 20", "tăng 20 đồng"
    # A refused table (USD sell 1: out of bounds) adds nothing.
    clock.advance(3600)
    up.default = ok(vcb_moved(vcb_dated("12/4/2026 4:00:00 PM"), -26000))
    asyncio.run(coord.refresh(feed))
    held = history.read_day(cfg.snapshot_dir, "exchange-rates", date(2026, 12, 4))
    assert held is not None and held["as_of"] == vn(2026, 12, 4, 14, 55)
    # The cache lost: a new coordinator on an empty store still finds every day.
    import shutil

    shutil.rmtree(cfg.cache_dir, ignore_errors=True)
    coord2, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_moved(vcb_dated("12/7/2026 9:00:00 AM"), 40))), clock=clock)
    clock.advance(3 * 86400)  # Monday
    asyncio.run(coord2.refresh(feed))
    assert history.archived_days(cfg.snapshot_dir, "exchange-rates") == [date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 7)]
    snap = validate_snapshot(cfg.snapshot_dir / "exchange-rates.json")
    usd = next(r for r in snap["data"]["rates"] if r["code"] == "USD")
    assert usd["previous"]["as_of"] == "2026-12-04T14:55:00+07:00" and usd["change"]["sell"] == 20


def test_cli_history_and_import(tmp_path: Path) -> None:
    """`history import` files real tables through the parser and gate; `history FEED CODE` prints the days."""
    import subprocess
    import sys

    samples = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "vietcombank"
    cfg = tmp_path / "portal-feeds.toml"
    cfg.write_text('[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n' + RATES_FEED
                   + '\n[feeds.weather]\nkind = "open-meteo"\nurl = "https://api.open-meteo.com/v1/forecast"\n'
                   'locations = "vietnam-provinces"\n', encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "feeds", *args, "--config", str(cfg)],
                              capture_output=True, text=True, timeout=60)

    p = cli("history", "import", str(samples / "vcb-2026-06-13-partial.xml"), str(samples / "vcb-2026-06-18-partial.xml"),
            str(samples / "truncated.xml"))
    assert p.returncode == 1, p  # one file refused
    lines = p.stdout.splitlines()
    assert lines[0].startswith("imported") and "2026-06-13" in lines[0]
    assert lines[1].startswith("imported") and "2026-06-18" in lines[1]
    assert lines[2].startswith("refused") and "invalid_payload" in lines[2]
    p = cli("history", "exchange-rates", "USD", "--days", "30")
    assert p.returncode == 0, p
    assert "2026-06-13" in p.stdout and "2026-06-18" in p.stdout and "26,431.00" in p.stdout and "+19.00" in p.stdout
    p = cli("history", "exchange-rates", "USD", "--json")
    doc = json.loads(p.stdout)
    assert doc["days"] == ["2026-06-13", "2026-06-18"] and doc["currencies"]["USD"]["sell"] == ["26412", "26431"]
    assert cli("history", "weather").returncode == 2
    assert cli("history", "nosuch").returncode == 2
    assert cli("history", "exchange-rates", "XYZ").returncode == 2
    # Deleting the cache loses no day: the archive is the history.
    import shutil

    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    assert "2026-06-18" in cli("history", "exchange-rates", "USD").stdout


def test_a_damaged_or_hostile_archive_never_costs_the_published_data(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    """The archive lives in the published folder: a day file with a time that overflows or an amount
    of 1e-30 is not history — the fresh table is published as fresh, without a change, never set aside."""
    import asyncio

    from feeds.clock import FakeClock
    from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_dated

    cfg = config_file(tmp_path, RATES_FEED)
    folder = cfg.snapshot_dir / "history" / "exchange-rates"
    folder.mkdir(parents=True)
    base = {"schema_version": 1, "feed": "exchange-rates", "fetched_at": "2026-12-02T15:00:00+07:00", "source": "x"}
    (folder / "0001-01-01.json").write_text(json.dumps({**base, "date": "0001-01-01", "as_of": "0001-01-01T00:00:00+14:00",
                                                       "rates": [{"code": "USD", "buy_cash": 1, "buy_transfer": 1, "sell": 1}]}))
    (folder / "2026-12-02.json").write_text(json.dumps({**base, "date": "2026-12-02", "as_of": "2026-12-02T15:00:00+07:00",
                                                       "rates": [{"code": "USD", "buy_cash": 1e-30, "buy_transfer": 1e-30, "sell": 1e-30}]}))
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_dated("12/3/2026 2:55:00 PM"))),
                                      clock=FakeClock(datetime(2026, 12, 3, 8, 0, tzinfo=UTC)))
    result = asyncio.run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert result.status == "fresh", result
    snap = validate_snapshot(cfg.snapshot_dir / "exchange-rates.json")
    usd = next(r for r in snap["data"]["rates"] if r["code"] == "USD")
    assert "change" not in usd or usd["change"]["sell"] is None
    assert not (cfg.cache_dir / "setaside").exists() or not any((cfg.cache_dir / "setaside").iterdir())
    for f in ("0001-01-01.json", "2026-12-02.json"):
        (folder / f).unlink(missing_ok=True)  # (the year-1 one is past retention: removed; not valid day files: the schema check of the suite would say so)
