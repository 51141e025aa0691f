"""Issue 8 §2: sanity rules that cannot lock the feed in, and numbers/codes/units that
cannot slip through: absolute bounds, the recovery rule, bounded numbers, duplicate and
non-ISO codes, weather values, units, MET Norway's partial first day."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from feeds import trust
from feeds.errors import InvalidPayloadError, RejectedError
from feeds.health import feed_rows, format_table
from feeds.models import Location
from feeds.sources import met_no, open_meteo, vietcombank
from feeds.sources.currencies import CURRENCY_BOUNDS, ISO4217_ACTIVE
from feeds.validate import check_rates
from tests.helpers import FIXTURES, Upstream, config_file, make_coordinator, ok, vcb_fixture

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
timeout = "5s"
deadline = "20s"
min_interval = "0s"
"""

_NUM = re.compile(rb'(Buy|Transfer|Sell)="([0-9,.]+)"')


def scaled(factor: str, body: bytes | None = None) -> bytes:
    """The 2022 table with every quoted value multiplied by ``factor`` (exactly)."""

    def one(m: re.Match[bytes]) -> bytes:
        v = Decimal(m.group(2).decode().replace(",", "")) * Decimal(factor)
        return m.group(1) + b'="' + format(v.quantize(Decimal("0.000001")), "f").encode() + b'"'

    return _NUM.sub(one, body or vcb_fixture())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- absolute bounds ----------------------------------------------------------------------


@pytest.mark.parametrize("factor", ["0.00005", "10", "0.1"])
def test_a_first_table_out_of_bounds_is_never_published(tmp_path: Path, factor: str) -> None:
    cfg = config_file(tmp_path, RATES)
    up = Upstream(default=ok(scaled(factor)))
    coord, _, _, _ = make_coordinator(cfg, up)
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert (r.status, r.outcome, r.detail) == ("unavailable", "rejected", "out_of_bounds")


def test_usd_at_one_dong_is_refused() -> None:
    body = vcb_fixture().replace(b'Buy="23,550.00" Transfer="23,580.00" Sell="23,860.00"', b'Buy="1" Transfer="1" Sell="1"')
    with pytest.raises(RejectedError) as ei:
        check_rates(vietcombank.parse(body))
    assert ei.value.detail == "out_of_bounds"


@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "vietcombank").glob("vcb-*.xml")))
def test_every_real_table_is_inside_the_bounds(name: str) -> None:
    rates = vietcombank.parse(vcb_fixture(name))
    for r in rates.rates:
        assert r.code in ISO4217_ACTIVE
        assert r.code in CURRENCY_BOUNDS, r.code  # every code the bank quotes has its own bounds
    check_rates(rates)


# -- the recovery rule --------------------------------------------------------------------


def test_a_real_move_is_accepted_after_three_answers_over_thirty_minutes(tmp_path: Path, caplog: Any) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(vcb_fixture()))
    coord, clock, store, _ = make_coordinator(cfg, up)
    assert run(coord.refresh(feed)).status == "fresh"
    up.default = ok(scaled("1.3"))  # a real 30% devaluation
    results = []
    with caplog.at_level("WARNING", logger="feeds.trust"):
        for minutes in (15, 10, 10, 10):  # answers at +15, +25, +35 and +45 minutes
            clock.advance(minutes * 60)
            results.append(run(coord.refresh(feed)))
            if len(results) == 3:
                assert trust.read(store, "exchange-rates")["move_pending"]["count"] == 3
    # Three answers spanning 20 minutes are not enough; the fourth, 30 minutes on, is.
    assert [x.detail for x in results] == ["moved_too_far"] * 3 + [None]
    assert "accepted a move beyond max_change" in caplog.text
    r = results[-1]
    assert (r.status, r.outcome) == ("fresh", "ok")
    usd = next(x for x in r.snapshot["data"]["rates"] if x["code"] == "USD")
    assert Decimal(str(usd["sell"])) == Decimal("31018")
    entry = trust.read(store, "exchange-rates")
    assert entry["move_accepted"]["answers"] == 4 and "move_pending" not in entry
    rows = feed_rows(cfg, store, clock.now())
    assert rows[0].to_json()["upstream"]["move_accepted"]["answers"] == 4
    assert "move accepted" in format_table(rows, clock.now())
    # From then on, the new level is the reference: the next answer is ordinary.
    clock.advance(15 * 60)
    assert run(coord.refresh(feed)).outcome == "ok"


def test_a_glitch_clears_the_pending_move_and_a_wandering_one_does_not_confirm(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    up = Upstream(default=ok(vcb_fixture()))
    coord, clock, store, _ = make_coordinator(cfg, up)
    run(coord.refresh(feed))
    for body in (scaled("1.5"), vcb_fixture(), scaled("1.5"), scaled("2.5"), scaled("1.5")):
        clock.advance(20 * 60)
        up.default = ok(body)
        run(coord.refresh(feed))
    # glitch, back to normal (cleared), then 1.5x / 2.5x / 1.5x: never the same three times
    assert trust.read(store, "exchange-rates")["move_pending"]["count"] == 1
    r = run(coord.refresh(feed))
    assert r.detail == "moved_too_far"


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["9" * 310, "9" * 4300, "0." + "0" * 400 + "1", "1" * 13, "1.1234567", "9" * 1_000_001, "1" * 13 + ".5"],
    ids=["310-digits", "4300-digits", "tiny", "13-int-digits", "7-decimals", "million-digits", "13.1"],
)
def test_rates_have_at_most_12_integer_digits_and_6_decimals(raw: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        vietcombank.parse_amount(raw)
    assert ei.value.detail == "bad_number"


def test_bounded_numbers_pass() -> None:
    assert vietcombank.parse_amount("999,999,999,999.123456") == Decimal("999999999999.123456")
    assert vietcombank.parse_amount("1.1234560000") == Decimal("1.123456")


@pytest.mark.parametrize(
    "stored",
    [Decimal("9" * 100_001), Decimal("1E+999999"), Decimal("NaN"), Decimal("-Infinity"), "26000", 1e308, None,
     "x" * 5000, Decimal("0." + "0" * 400 + "1"), True],
)
def test_the_gate_never_raises_on_a_stored_value(stored: Any) -> None:
    rates = vietcombank.parse(vcb_fixture())
    previous = {"rates": [{"code": "USD", "buy_cash": stored, "buy_transfer": stored, "sell": stored}]}
    check_rates(rates, previous, 0.2)  # not compared: no exception of any kind


def test_the_gate_never_raises_on_a_malformed_previous_table() -> None:
    rates = vietcombank.parse(vcb_fixture())
    for previous in ({"rates": "x"}, {"rates": [1, None, "USD"]}, {"rates": [{"code": "USD", "sell": {}}]}):
        check_rates(rates, previous, 0.2)


# -- codes and names ----------------------------------------------------------------------


def _with_row(row: bytes, body: bytes | None = None) -> bytes:
    return (body or vcb_fixture()).replace(b"</ExrateList>", row + b"\n</ExrateList>")


def test_duplicate_codes_are_refused() -> None:
    body = _with_row(b'<Exrate CurrencyCode="USD" CurrencyName="US DOLLAR" Buy="1" Transfer="1" Sell="2"/>')
    with pytest.raises(InvalidPayloadError) as ei:
        vietcombank.parse(body)
    assert ei.value.detail == "duplicate_code"


@pytest.mark.parametrize("code", ["uſd", "ＵＳＤ", "US D", "usdx", "U$D"])
def test_codes_are_matched_ascii_only_before_case_folding(code: str) -> None:
    body = vcb_fixture().replace(b'CurrencyCode="USD"', f'CurrencyCode="{code}"'.encode())
    with pytest.raises(InvalidPayloadError) as ei:
        vietcombank.parse(body)
    assert ei.value.detail == "bad_code"


def test_lower_case_ascii_codes_are_read() -> None:
    rates = vietcombank.parse(vcb_fixture().replace(b'CurrencyCode="USD"', b'CurrencyCode="usd"'))
    assert any(r.code == "USD" for r in rates.rates)


def test_codes_outside_iso_4217_are_dropped_and_counted(tmp_path: Path) -> None:
    body = _with_row(b'<Exrate CurrencyCode="ABC" CurrencyName="INVENTED" Buy="1" Transfer="1" Sell="2"/>')
    rates = vietcombank.parse(body)
    assert rates.dropped == ("ABC",) and all(r.code != "ABC" for r in rates.rates)
    cfg = config_file(tmp_path, RATES)
    coord, clock, store, _ = make_coordinator(cfg, Upstream(default=ok(body)))
    r = run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert r.outcome == "ok" and "ABC" not in json.dumps(r.snapshot, default=str)
    rows = feed_rows(cfg, store, clock.now())
    assert rows[0].to_json()["upstream"]["dropped_codes"] == ["ABC"]
    assert "1 unknown codes dropped" in format_table(rows, clock.now())


def test_more_than_a_few_unknown_codes_refuse_the_table() -> None:
    rows = b"".join(
        f'<Exrate CurrencyCode="Q{a}{b}" CurrencyName="X" Buy="1" Transfer="1" Sell="2"/>'.encode()
        for a, b in (("A", "A"), ("A", "B"), ("A", "C"), ("A", "D"))
    )
    with pytest.raises(InvalidPayloadError) as ei:
        vietcombank.parse(_with_row(rows))
    assert ei.value.detail == "unknown_codes"


def test_the_row_count_is_bounded() -> None:
    rows = b"".join(
        f'<Exrate CurrencyCode="{chr(65 + i // 676)}{chr(65 + i // 26 % 26)}{chr(65 + i % 26)}" Buy="1" Transfer="1" Sell="2"/>'.encode()
        for i in range(10_000)
    )
    with pytest.raises(InvalidPayloadError) as ei:
        vietcombank.parse(b"<ExrateList>" + rows + b"</ExrateList>")
    assert ei.value.detail == "too_many_rows"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<script>alert(1)</script>", "scriptalert(1)/script"),
        ("US\u202eDOLLAR", "USDOLLAR"),
        ("US\x85\x9fDOLLAR", "US DOLLAR"),
        ("US\u2028DOLLAR", "US DOLLAR"),
        ("\ufeffUS\u200bDOLLAR", "USDOLLAR"),
        ("x" * 100_000, "x" * 64),
        ("Đo\u0302", "Đô"),  # NFC
        ("   \u200b  ", "USD"),  # nothing left: the code
    ],
)
def test_names_are_normalised(raw: str, clean: str) -> None:
    attr = raw.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    attr = "".join(f"&#{ord(c)};" if ord(c) < 32 or 0x7F <= ord(c) <= 0x9F else c for c in attr)
    body = vcb_fixture().replace(b'CurrencyName="US DOLLAR "', f'CurrencyName="{attr}"'.encode())
    rates = vietcombank.parse(body)
    usd = next(r for r in rates.rates if r.code == "USD")
    assert usd.name == clean
    assert usd.name_vi == "Đô la Mỹ"


# -- weather values -----------------------------------------------------------------------

HN = Location("ha-noi", "Hà Nội", 21.03, 105.85)


def _om(**changes: Any) -> dict[str, Any]:
    from feeds.testing.upstream import UpstreamSimulator

    _, body = UpstreamSimulator()._open_meteo({"latitude": "21.03", "longitude": "105.85"})
    doc: dict[str, Any] = json.loads(body)
    for path, value in changes.items():
        cur: Any = doc
        *head, last = path.split("__")
        for k in head:
            cur = cur[k]
        if value is _DELETE:
            cur.pop(last, None)
        else:
            cur[last] = value
    return doc


_DELETE = object()


def _parse_om(doc: Any) -> Any:
    return open_meteo.parse(json.dumps(doc, allow_nan=True).encode(), [HN])


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"current__weather_code": 2.7}, "bad_value"),
        ({"current__weather_code": -1e308}, "bad_value"),
        ({"current__weather_code": 100}, "bad_value"),
        ({"current__temperature_2m": float("nan")}, "bad_value"),
        ({"current__temperature_2m": float("inf")}, "bad_value"),
        ({"current__temperature_2m": 10**400}, "bad_value"),
        ({"latitude": float("nan")}, "shape"),
        ({"longitude": float("inf")}, "shape"),
        ({"utc_offset_seconds": 25201}, "bad_time"),
        ({"utc_offset_seconds": 86400}, "bad_time"),
        ({"utc_offset_seconds": True}, "bad_time"),
        ({"current__time": "2026-11-24T15:00+07:00:30"}, "bad_time"),
        ({"daily__time": 5}, "shape"),
        ({"current_units__wind_speed_10m": "furlong/fortnight"}, "units"),
        ({"daily_units__temperature_2m_max": "K"}, "units"),
    ],
)
def test_open_meteo_hostile_values_are_invalid_payload(changes: dict[str, Any], detail: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        _parse_om(_om(**changes))
    assert ei.value.detail == detail


@pytest.mark.parametrize(("unit", "value", "kmh"), [("m/s", 3.0, 10.8), ("kn", 10.0, 18.5), ("mp/h", 10.0, 16.1), ("km/h", 7.5, 7.5)])
def test_open_meteo_wind_units_are_converted(unit: str, value: float, kmh: float) -> None:
    (w,) = _parse_om(_om(current_units__wind_speed_10m=unit, current__wind_speed_10m=value))
    assert w.current.wind_speed_kmh == kmh


def test_open_meteo_fahrenheit_and_inches_are_converted() -> None:
    doc = _om(current_units__temperature_2m="°F", current__temperature_2m=86.0,
              daily_units__precipitation_sum="inch")
    doc["daily"]["precipitation_sum"] = [1.0, 0.0, None]
    (w,) = _parse_om(doc)
    assert w.current.temperature_c == 30.0
    assert [d.precipitation_mm for d in w.daily] == [25.4, 0.0, None]


def test_open_meteo_old_current_weather_shape_is_read_explicitly() -> None:
    doc = _om(current=_DELETE, current_units=_DELETE)
    doc["current_weather"] = {"time": "2024-12-13T23:00", "temperature": 27.4, "windspeed": 7.9,
                              "winddirection": 40, "weathercode": 3, "is_day": 0}
    (w,) = _parse_om(doc)
    c = w.current
    assert (c.temperature_c, c.wind_speed_kmh, c.wind_direction_deg, c.weather_code) == (27.4, 7.9, 40, 3)
    assert c.humidity_pct is None and c.time is not None and c.time.utcoffset() == timedelta(hours=7)
    doc["current_weather_units"] = {"windspeed": "m/s"}
    doc["current_weather"]["windspeed"] = 3.0
    (w,) = _parse_om(doc)
    assert w.current.wind_speed_kmh == 10.8


def _met(doc_change: Any = None) -> bytes:
    doc = json.loads((FIXTURES / "weather" / "metno-compact-2020-07-20-newyork-trimmed.json").read_bytes())
    if doc_change:
        doc_change(doc)
    return json.dumps(doc).encode()


NY = Location("ny", "NY", 40.7, -74.0)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda d: d.__setitem__("properties", "x"), "shape"),
        (lambda d: d["properties"]["timeseries"][0].__setitem__("time", "9999-12-31T23:00:00Z"), "bad_time"),
        (lambda d: d["properties"]["meta"]["units"].__setitem__("wind_speed", "km/h"), "units"),
        (lambda d: d["geometry"].__setitem__("coordinates", [float("nan"), 40.7]), "shape"),
        (lambda d: d["properties"]["timeseries"][0]["data"]["instant"]["details"].__setitem__("air_temperature", 10**400), "bad_value"),
        (lambda d: d["properties"]["timeseries"][0]["data"].__setitem__("instant", 5), "shape"),
    ],
)
def test_met_no_hostile_values_are_invalid_payload(change: Any, detail: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        met_no.parse(_met(change), [NY])
    assert ei.value.detail == detail


def test_met_no_partial_first_day_has_null_min_max() -> None:
    # The recorded series starts at 18:00 Vietnam time: 4 hourly entries of "today".
    (w,) = met_no.parse(_met(), [NY])
    first = w.daily[0]
    assert (first.temperature_min_c, first.temperature_max_c) == (None, None)
    (hn,) = met_no.parse((FIXTURES / "weather" / "metno-compact-hanoi-built.json").read_bytes(),
                         [Location("ha-noi", "Hà Nội", 21.03, 105.85)])
    assert any(d.temperature_min_c is not None for d in hn.daily)
