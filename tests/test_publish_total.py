"""Publishing is total (issue 16, reproduction 3 and part of 5).

Nothing between "an answer arrived" and "the file is on disk" raises past the attempt:
hostile dates and numbers are refused where they are read (``invalid_payload``, detail
``bad_time`` / ``out_of_bounds``) and never stored; stored data that can no longer be
published is set aside; any other failure in the publish path is a ``local`` fault.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.errors import InvalidPayloadError
from feeds.models import Location
from feeds.sources import met_no, open_meteo, vietcombank
from feeds.store import GoodData, Health
from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_dated, vcb_fixture

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
timeout = "5s"
deadline = "20s"
"""

WEATHER = """
[feeds.weather]
kind = "open-meteo"
url = "https://api.open-meteo.com/v1/forecast"
locations = [{ id = "hn", name = "Hà Nội", lat = 21.03, lon = 105.85 }]
timeout = "2s"
deadline = "4s"
"""

HN = Location("hn", "Hà Nội", 21.03, 105.85)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def _snap(tmp_path: Path, feed: str = "exchange-rates") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((tmp_path / "snapshots" / f"{feed}.json").read_text(encoding="utf-8"))
    return doc



def meteo(time: str, lat: Any = 21.0, lon: Any = 105.875) -> bytes:
    return json.dumps(
        {
            "latitude": lat,
            "longitude": lon,
            "utc_offset_seconds": 25200,
            "current": {"time": time, "temperature_2m": 24.5, "relative_humidity_2m": 80, "weather_code": 3},
        }
    ).encode()


# -- the parsers: bounded where read, never an OverflowError -----------------------------------
@pytest.mark.parametrize(
    "text",
    ["12/31/9999 11:59:59 PM", "1/1/0001 1:00:00 AM", "6/1/1905 10:00:00 AM", "1/1/1970 7:00:00 AM",
     "12/31/1999 11:59:59 PM"],
)
def test_vietcombank_dates_outside_the_static_bounds_are_refused(text: str) -> None:
    with pytest.raises(InvalidPayloadError) as exc:
        vietcombank.parse(vcb_dated(text))
    assert exc.value.detail == "bad_time"


def test_vietcombank_date_in_bounds_is_vietnam_time_to_the_minute() -> None:
    rates = vietcombank.parse(vcb_dated("1/1/2000 7:00:00 AM"))
    assert rates.as_of is not None and rates.as_of.isoformat() == "2000-01-01T07:00:00+07:00"


@pytest.mark.parametrize("time", ["9999-12-31T23:00", "0001-01-01T00:00", "1905-06-01T10:00", "1970-01-01T07:00"])
def test_open_meteo_times_outside_the_static_bounds_are_refused(time: str) -> None:
    with pytest.raises(InvalidPayloadError) as exc:
        open_meteo.parse(meteo(time), [HN])
    assert exc.value.detail == "bad_time"


@pytest.mark.parametrize("big", [10**400, -(10**400), 10**20])
def test_a_huge_coordinate_is_refused_not_an_overflow(big: int) -> None:
    with pytest.raises(InvalidPayloadError) as exc:
        open_meteo.parse(meteo("2026-11-24T15:00", lat=big), [HN])
    assert exc.value.detail == "out_of_bounds"
    body = json.dumps({"type": "Feature", "geometry": {"coordinates": [big, 21.0]}, "properties": {}})
    with pytest.raises(InvalidPayloadError) as exc:
        met_no.parse(body.encode(), [HN])
    assert exc.value.detail == "out_of_bounds"


def test_a_huge_number_in_a_value_is_refused() -> None:
    body = meteo("2026-11-24T15:00").replace(b"24.5", b"1" + b"0" * 400)
    with pytest.raises(InvalidPayloadError):
        open_meteo.parse(body, [HN])


def test_met_no_times_before_2000_are_refused() -> None:
    with pytest.raises(InvalidPayloadError) as exc:
        met_no._time("1999-12-31T23:00:00Z")
    assert exc.value.detail == "bad_time"


# -- the clock-relative bound: no later than now + 1 day ------------------------------------------
@pytest.mark.parametrize("text", ["1/1/2031 9:00:00 AM", "1/1/2100 9:00:00 AM", "11/26/2026 9:00:00 AM"])
def test_a_future_bank_date_is_refused_and_never_stored(tmp_path: Path, text: str) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(vcb_dated(text)))
    coord, clock, store, _ = make_coordinator(cfg, up)  # now: 2026-11-24 08:00 UTC
    r = run(coord.refresh(feed))
    assert (r.outcome, r.detail) == ("invalid_payload", "bad_time")
    assert store.get("good/exchange-rates") is None
    assert _snap(tmp_path)["status"] == "unavailable"


def test_tomorrow_is_still_accepted(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    coord, clock, store, _ = make_coordinator(cfg, Upstream(default=ok(vcb_dated("11/25/2026 2:00:00 PM"))))
    r = run(coord.refresh(feed))
    assert (r.status, r.outcome) == ("fresh", "ok")
    assert _snap(tmp_path)["as_of"] == "2026-11-25T14:00:00+07:00"


def test_a_future_weather_time_is_refused(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, WEATHER)
    feed = cfg.feeds["weather"]
    coord, clock, store, _ = make_coordinator(cfg, Upstream(default=ok(meteo("2031-01-01T10:00"))))
    r = run(coord.refresh(feed))
    assert (r.outcome, r.detail) == ("invalid_payload", "bad_time")
    assert store.get("good/weather") is None
    assert _snap(tmp_path, "weather")["status"] == "unavailable"


def test_weather_in_bounds_is_published(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, WEATHER)
    feed = cfg.feeds["weather"]
    coord, clock, store, _ = make_coordinator(cfg, Upstream(default=ok(meteo("2026-11-24T15:00"))))
    r = run(coord.refresh(feed))
    assert (r.status, r.outcome) == ("fresh", "ok")
    assert _snap(tmp_path, "weather")["data"]["locations"][0]["current"]["time"] == "2026-11-24T15:00:00+07:00"


# -- stored data that can no longer be published ---------------------------------------------------
@pytest.mark.parametrize(
    "as_of",
    [datetime(9999, 12, 31, 16, 59, 59, tzinfo=UTC), datetime(1, 1, 1, 0, 0, tzinfo=UTC),
     datetime(1905, 6, 1, 3, 0, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)],
)
def test_stored_bad_data_then_503_is_set_aside_and_the_file_stays(
    tmp_path: Path, as_of: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(vcb_fixture()))
    coord, clock, store, _ = make_coordinator(cfg, up)
    assert run(coord.refresh(feed)).outcome == "ok"
    published = _snap(tmp_path)
    # An older version stored data with a date it should have refused; then the bank fails.
    good: GoodData = store.get("good/exchange-rates")
    bad = GoodData(good.data, good.fetched_at, as_of, good.source_name, good.source_url)
    store.set("good/exchange-rates", bad)
    clock.advance(900)
    up.default = ok(b"busy", status=503)
    with caplog.at_level(logging.ERROR, logger="feeds"):
        r = run(coord.refresh(feed))
        r2 = (clock.advance(900), run(coord.refresh(feed)))[1]
    assert (r.outcome, r.detail) == ("http_status", "503")
    assert r.status == "stale" and r2.status == "stale"
    snap = _snap(tmp_path)
    assert snap["data"] == published["data"] and snap["as_of"] == published["as_of"]
    assert snap["fetched_at"] == published["fetched_at"]
    assert store.get("setaside/exchange-rates")["good"] == bad
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR and "set aside" in rec.getMessage()]
    assert len(errors) == 1, [rec.getMessage() for rec in caplog.records]
    # The republish on a warm start does not raise either.
    assert coord.republish(feed).status == "stale"


def test_stored_bad_data_and_no_file_publishes_unavailable(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    coord, clock, store, _ = make_coordinator(cfg, Upstream(default=ok(b"busy", status=503)))
    store.set(
        "good/exchange-rates",
        GoodData({"base": "VND", "rates": []}, clock.now(), datetime(9999, 12, 31, tzinfo=UTC), "Vietcombank",
                 "https://portal.vietcombank.com.vn/x"),
    )
    r = coord.republish(feed)
    assert r.status == "unavailable"
    assert store.get("good/exchange-rates") is None
    r = run(coord.refresh(feed))
    assert (r.status, r.outcome) == ("unavailable", "http_status")


def test_an_unexpected_exception_in_publish_is_a_local_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(vcb_fixture()))
    coord, clock, store, _ = make_coordinator(cfg, up)
    run(coord.refresh(feed))
    before = _snap(tmp_path)

    def boom(*a: Any, **k: Any) -> None:
        raise OverflowError("date value out of range")

    monkeypatch.setattr("feeds.coordinator.write_companions", boom)
    clock.advance(900)
    r = run(coord.refresh(feed))
    assert r.outcome == "local" and r.detail == "publish:internal"
    h: Health = store.get("health/exchange-rates")
    assert h.outcome == "local"
    r = coord.republish(feed)
    assert r.outcome == "local"
    assert _snap(tmp_path)["data"] == before["data"]


# -- offsets and the ECMA-262 pattern semantics --------------------------------------------------
def test_isoformat_writes_whole_minute_offsets() -> None:
    from feeds.clock import VIETNAM_TZ
    from feeds.models import isoformat
    from feeds.timezone import load_zone, restamp

    assert isoformat(datetime(2026, 1, 1, 7, tzinfo=VIETNAM_TZ)) == "2026-01-01T07:00:00+07:00"
    hcm = load_zone("Asia/Ho_Chi_Minh")
    # LMT +07:06:40 before 1906 in the tz database: written to the whole minute, never seconds.
    text = isoformat(datetime(1900, 6, 1, 12, tzinfo=hcm))
    assert text is not None and text[-6] in "+-" and text[-3] == ":"
    stamped = restamp("1900-06-01T05:00:00+00:00", hcm)
    assert stamped is not None and stamped[-3] == ":" and stamped.count(":") == 3


@pytest.mark.parametrize(
    ("stamp", "valid"),
    [
        ("2026-11-24T15:00:00+07:00", True),
        ("２０２６-11-24T15:00:00+07:00", False),  # full-width digits: \d is ASCII in ECMA-262
        ("2026-11-24T15:00:00+07:00\n", False),  # $ is the end of input in ECMA-262
        ("2026-11-24T15:00:00+07:06:30", False),
    ],
)
def test_the_gate_reads_patterns_as_ecma_262(stamp: str, valid: bool) -> None:
    from feeds import bounds

    doc = {
        "schema_version": 1, "feed": "x", "kind": "exchange_rates", "status": "unavailable",
        "generated_at": stamp, "fetched_at": None, "as_of": None, "stale_since": stamp,
        "next_update_at": None, "source": None, "data": None,
    }
    assert (bounds.schema_problem(doc) is None) is valid


def test_pattern_translation() -> None:
    from feeds import bounds

    t = bounds.ecma_pattern
    assert t(r"^\d{4}$") == r"^[0-9]{4}\Z"
    assert t(r"^[\d-]+$") == r"^[0-9-]+\Z"
    assert t(r"a\\d\$") == r"a\\d\$"
    assert t(r"[$]") == r"[$]"


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^[A-Za-z0-9][A-Za-z0-9_.-]*$(?![\s\S])", "exchange-rates", True),
        (r"^[A-Za-z0-9][A-Za-z0-9_.-]*$(?![\s\S])", "exchange-rates\n", False),
        (r"^\d+$", "٣", False),  # Arabic-Indic digit
        (r"^\s$", "\ufeff", True),  # ECMA WhiteSpace includes the BOM
        (r"^\s$", "\x1c", False),  # Python's \s includes the file separator, ECMA's not
        (r"^[^\S]$", " ", True),
        (r"^[^\S]$", "a", False),
        (r"^a.b$", "a\u2028b", False),
        (r"^[\w-]+$", "é", False),
    ],
)
def test_ecma_semantics(pattern: str, text: str, matches: bool) -> None:
    import re

    from feeds import bounds

    assert (re.search(bounds.ecma_pattern(pattern), text, re.ASCII) is not None) is matches


WEATHER2 = """
[feeds.weather]
kind = "open-meteo"
url = "https://api.open-meteo.com/v1/forecast"
batch_size = 1
locations = [
  { id = "hn", name = "Hà Nội", lat = 21.03, lon = 105.85 },
  { id = "hue", name = "Huế", lat = 16.46, lon = 107.59 },
]
timeout = "2s"
deadline = "4s"
"""


def test_one_location_with_a_future_time_keeps_its_previous_entry(tmp_path: Path) -> None:
    """One odd location does not freeze the others: it keeps its last good entry (partial)."""
    import httpx

    cfg = config_file(tmp_path, WEATHER2)
    feed = cfg.feeds["weather"]
    answers = {"21.03": meteo("2026-11-24T15:00"), "16.46": meteo("2026-11-24T15:00", 16.5, 107.625)}
    coord, clock, store, _ = make_coordinator(
        cfg, lambda r: httpx.Response(200, content=answers[r.url.params["latitude"]])
    )
    assert run(coord.refresh(feed)).outcome == "ok"
    first = {loc["id"]: loc for loc in _snap(tmp_path, "weather")["data"]["locations"]}
    clock.advance(1800)
    answers["21.03"] = meteo("2026-11-24T15:30")
    answers["16.46"] = meteo("2031-01-01T10:00", 16.5, 107.625)
    r = run(coord.refresh(feed))
    assert (r.outcome, r.detail) == ("invalid_payload", "partial")
    by_id = {loc["id"]: loc for loc in _snap(tmp_path, "weather")["data"]["locations"]}
    assert by_id["hue"] == first["hue"]  # the refused time is not published
    assert by_id["hn"]["current"]["time"] == "2026-11-24T15:30:00+07:00"
    good: GoodData = store.get("good/weather")
    assert all("2031" not in json.dumps(loc, default=str) for loc in good.data["locations"])


# -- the fast path of the schema check agrees with jsonschema -------------------------------------
_GOOD_LOCATION: dict[str, Any] = {
    "id": "hn", "name": "Hà Nội", "short_name": "Hà Nội", "lat": 21.03, "lon": 105.85,
    "fetched_at": "2026-11-24T15:00:00+07:00",
    "current": {"time": "2026-11-24T15:00:00+07:00", "temperature_c": 24.5, "apparent_temperature_c": None,
                "humidity_pct": 80, "wind_speed_kmh": 8.3, "wind_direction_deg": 120, "precipitation_mm": 0.0,
                "weather_code": 3, "condition": "overcast", "condition_vi": "Nhiều mây"},
    "daily": [{"date": "2026-11-24", "temperature_min_c": 19.0, "temperature_max_c": 26.0, "precipitation_mm": 0.4,
               "weather_code": 61, "condition": "rain", "condition_vi": "Mưa"}],
}


def _paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(obj, dict):
        out += [p for k, v in obj.items() for p in _paths(v, (*path, k))]
    elif isinstance(obj, list):
        out += [p for i, v in enumerate(obj) for p in _paths(v, (*path, i))]
    return out


def _item_validator() -> Any:
    from feeds import bounds

    schema = bounds._schema()
    return bounds.ecma_validator({"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/weather"})


_ITEM = _item_validator()
_ODD = [None, True, False, 0, 3.0, -91, 181, 1e308, float("nan"), 10**400, "", "x", "overcast", "Rain",
        "2026-11-24", "2026-11-24T15:00:00+07:00", "2026-11-24T15:00:00+07:00\n", "２０２６-11-24",
        "2026-11-24T15:00:00+07:06:30", [], {}, [{}], Decimal("21.5"), Decimal("NaN")]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data())
def test_location_fast_path_never_vouches_for_an_invalid_entry(data: st.DataObject) -> None:
    import copy

    from feeds import bounds

    loc = copy.deepcopy(_GOOD_LOCATION)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(loc) if p]
        path = data.draw(st.sampled_from(paths))
        parent = loc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(st.sampled_from(_ODD))
    try:
        valid = _ITEM.is_valid({"locations": [loc]})
    except ArithmeticError:  # jsonschema compares Decimal("NaN") and raises: not valid
        valid = False
    if bounds.location_ok(loc):
        assert valid, loc


def test_location_fast_path_vouches_for_a_good_entry() -> None:
    from feeds import bounds

    assert bounds.location_ok(_GOOD_LOCATION) and _ITEM.is_valid({"locations": [_GOOD_LOCATION]})
