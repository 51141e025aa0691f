"""Open-Meteo and MET Norway parsers on recorded and built fixtures; conditions; provinces."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from feeds.errors import InvalidPayloadError
from feeds.models import Location
from feeds.sources import met_no, open_meteo
from feeds.sources.conditions import CONDITION_KEYS, WMO_CONDITIONS, metno_to_wmo, wmo_condition
from feeds.sources.provinces import VIETNAM_PROVINCES, slug

FIX = Path(__file__).parent / "fixtures" / "weather"
VN = timezone(timedelta(hours=7))
HN = Location("ha-noi", "Hà Nội", 21.03, 105.85)
HUE = Location("hue", "Huế", 16.46, 107.59)
HCM = Location("ho-chi-minh", "Hồ Chí Minh", 10.78, 106.70)


def test_open_meteo_bangkok_recorded() -> None:
    (w,) = open_meteo.parse((FIX / "open-meteo-bangkok-2024-12-13.json").read_bytes(), [Location("bkk", "Bangkok", 13.7563, 100.5018)])
    c = w.current
    assert c.time == datetime(2024, 12, 13, 23, 0, tzinfo=VN)
    assert (c.temperature_c, c.apparent_temperature_c, c.humidity_pct) == (26.5, 31.0, 77)
    assert (c.wind_speed_kmh, c.wind_direction_deg, c.precipitation_mm) == (4.0, 350, 0.0)
    assert c.weather_code is None and c.condition == "unknown"  # that request did not ask for it
    assert w.daily == ()


def test_open_meteo_single_new_york() -> None:
    (w,) = open_meteo.parse((FIX / "open-meteo-current-single.json").read_bytes(), [Location("ny", "NY", 40.71, -74.0)])
    assert w.current.time == datetime(2026, 3, 26, 16, 15, tzinfo=UTC)  # timezone GMT, no offset given
    assert (w.current.temperature_c, w.current.wind_speed_kmh, w.current.humidity_pct) == (18.0, 19.0, 50)
    assert (w.current.condition, w.current.condition_vi) == ("clear", "Trời quang")


def test_open_meteo_multi_built() -> None:
    ws = open_meteo.parse((FIX / "open-meteo-multi-3-built.json").read_bytes(), [HN, HUE, HCM])
    assert [w.location.id for w in ws] == ["ha-noi", "hue", "ho-chi-minh"]
    hn, hue, hcm = ws
    assert hn.current.time == datetime(2026, 11, 24, 15, 0, tzinfo=VN)
    assert (hn.current.temperature_c, hn.current.condition_vi) == (24.1, "Nhiều mây")
    assert [d.date for d in hn.daily] == [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]
    assert (hn.daily[1].temperature_min_c, hn.daily[1].temperature_max_c, hn.daily[1].precipitation_mm) == (19.8, 24.3, 3.1)
    assert hn.daily[1].condition == "rain_light"
    assert hue.daily[2].temperature_min_c is None  # the null in the array
    assert hue.daily[2].condition == "thunderstorm" and hue.daily[2].condition_vi == "Dông"
    assert hcm.daily[1].condition_vi == "Mưa rào nhẹ"


def test_open_meteo_daily_nulls() -> None:
    (w,) = open_meteo.parse((FIX / "open-meteo-daily-nulls-2022-12-29.json").read_bytes(), [Location("p", "P", -12.5, -130.875)])
    assert len(w.daily) == 3 and all(d.temperature_max_c is None for d in w.daily)
    assert w.current.temperature_c is None


@pytest.mark.parametrize("name", ["open-meteo-error-400-variable.json", "open-meteo-error-400-unit.json"])
def test_open_meteo_error_bodies(name: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        open_meteo.parse((FIX / name).read_bytes(), [HN])
    assert ei.value.detail == "api_error"
    assert "Cannot initialize" not in ei.value.message


@pytest.mark.parametrize(
    ("body", "locs", "detail"),
    [
        (b"", [HN], "empty"),
        (b"<html>502 Bad Gateway</html>", [HN], "malformed"),
        (b'[{"latitude": 21.0', [HN], "malformed"),
        (b'{"latitude": 48.85, "longitude": 2.35}', [HN], "location_mismatch"),
        (b'{"latitude": 21.0, "longitude": 105.875}', [HN, HUE], "count_mismatch"),
        (b'{"latitude": 21.0, "longitude": 105.875, "current": {"temperature_2m": "hot"}}', [HN], "bad_value"),
    ],
)
def test_open_meteo_garbage(body: bytes, locs: list[Location], detail: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        open_meteo.parse(body, locs)
    assert ei.value.detail == detail


def test_open_meteo_batching() -> None:
    locs = [Location(f"l{i}", f"L{i}", 10 + i * 0.01, 105 + i * 0.01) for i in range(250)]
    reqs = open_meteo.build_requests("https://api.open-meteo.com/v1/forecast", locs, user_agent="ua", batch_size=100)
    assert [len(b) for _, b in reqs] == [100, 100, 50]
    spec, batch = reqs[2]
    params = dict(spec.params)
    assert params["latitude"].split(",")[0] == "12" and len(params["longitude"].split(",")) == 50
    assert params["timezone"] == "Asia/Ho_Chi_Minh" and params["forecast_days"] == "3"
    assert "weather_code" in params["current"] and "precipitation_sum" in params["daily"]
    assert batch[0].id == "l200"


def test_met_no_recorded_new_york() -> None:
    (w,) = met_no.parse((FIX / "metno-compact-2020-07-20-newyork-trimmed.json").read_bytes(), [Location("ny", "NY", 40.7, -74.0)])
    c = w.current
    assert c.time == datetime(2020, 7, 20, 11, 0, tzinfo=UTC)
    assert (c.temperature_c, c.humidity_pct, c.wind_direction_deg) == (26.5, 81.3, 243.4)
    assert c.wind_speed_kmh == 13.7  # 3.8 m/s
    assert c.apparent_temperature_c is None
    assert (c.weather_code, c.condition) == (2, "partly_cloudy")
    assert w.as_of == datetime(2020, 7, 20, 1, 30, 57, tzinfo=UTC)
    # Vietnam-time day 2020-07-20 holds the four hourly entries (18:00-21:00 local)
    assert w.daily[0].date == date(2020, 7, 20)
    # Four hours of a day are not its range (issue 8): min/max null, the rest kept.
    assert (w.daily[0].temperature_min_c, w.daily[0].temperature_max_c) == (None, None)
    assert w.daily[0].condition != "unknown"


def test_met_no_built_three_days() -> None:
    (w,) = met_no.parse((FIX / "metno-compact-hanoi-built.json").read_bytes(), [HN])
    assert [d.date for d in w.daily] == [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]
    assert w.current.condition == "overcast"
    # "rainshowersandthunder" appears on day 1: the most severe symbol wins
    assert w.daily[0].condition == "thunderstorm"
    assert all(d.precipitation_mm is not None and d.precipitation_mm > 0 for d in w.daily)


def test_met_no_requests_round_coordinates_and_send_user_agent() -> None:
    reqs = met_no.build_requests(met_no.DEFAULT_URL, [Location("x", "X", 21.028511234, 105.85420001)], user_agent="portal.example.gov.vn admin@example.gov.vn")
    spec, _ = reqs[0]
    assert dict(spec.params) == {"lat": "21.0285", "lon": "105.8542"}
    assert dict(spec.headers)["User-Agent"] == "portal.example.gov.vn admin@example.gov.vn"


@pytest.mark.parametrize(
    ("body", "detail"),
    [(b"", "empty"), (b"nope", "malformed"), (b'{"type": "FeatureCollection"}', "shape"),
     (b'{"type": "Feature", "geometry": {"coordinates": [2.35, 48.85]}, "properties": {"timeseries": [{"time": "2026-01-01T00:00:00Z", "data": {}}]}}', "location_mismatch")],
)
def test_met_no_garbage(body: bytes, detail: str) -> None:
    with pytest.raises(InvalidPayloadError) as ei:
        met_no.parse(body, [HN])
    assert ei.value.detail == detail


def test_every_wmo_code_has_a_key_and_label() -> None:
    codes = [0, 1, 2, 3, 45, 48, 51, 53, 55, 56, 57, 61, 63, 65, 66, 67, 71, 73, 75, 77, 80, 81, 82, 85, 86, 95, 96, 99]
    assert sorted(WMO_CONDITIONS) == codes
    for code in codes:
        key, label = wmo_condition(code)
        assert key in CONDITION_KEYS and label
    assert wmo_condition(42) == ("unknown", "Không xác định")
    assert wmo_condition(None)[0] == "unknown"


def test_metno_symbols_map() -> None:
    seen = ["clearsky_day", "clearsky_night", "cloudy", "fair_day", "fair_night", "lightrain",
            "lightrainshowers_day", "lightrainshowers_night", "partlycloudy_day", "partlycloudy_night",
            "rain", "rainshowers_day", "rainshowers_night"]
    for s in seen:
        assert metno_to_wmo(s) in WMO_CONDITIONS, s
    assert metno_to_wmo("heavyrainandthunder") == 95
    assert metno_to_wmo("something_new") is None


def test_provinces() -> None:
    assert len(VIETNAM_PROVINCES) == 34
    assert len({p.id for p in VIETNAM_PROVINCES}) == 34
    for p in VIETNAM_PROVINCES:
        assert 8.0 < p.lat < 23.5 and 102.0 < p.lon < 110.0, p
    assert slug("Thành phố Hồ Chí Minh") == "ho-chi-minh" and slug("Đắk Lắk") == "dak-lak"
    assert VIETNAM_PROVINCES[0].name == "Thành phố Hà Nội"
