"""Open-Meteo forecast API (``/v1/forecast``): current conditions and a 3-day forecast.

Format facts (shared/upstream-samples/README.md, Open-Meteo docs):

- Several locations in one request: comma-separated ``latitude``/``longitude`` lists; the
  answer is then a JSON **array** of the usual objects, in request order (one location: a
  single object).  Up to 1000 locations per request; we batch by ``batch_size`` (default
  100) to keep URLs short, which also keeps one bad batch from failing the whole feed.
- With ``timezone=Asia/Ho_Chi_Minh`` times are local without offset
  (``"2024-12-13T23:00"``); ``utc_offset_seconds`` (25200) gives the offset.  Daily values
  are cut at local midnight.
- Returned coordinates are snapped to the model grid (13.7563 -> 13.75), so a location is
  matched within ``MAX_GRID_OFFSET`` degrees, not exactly.
- Any array value may be ``null``; any ``current`` variable may be absent.
- Errors: HTTP 400 with ``{"error": true, "reason": "..."}`` -> ``invalid_payload`` (the
  reason text is not kept: nothing foreign reaches health or a snapshot).

Hostile answers (issue 8): every number must be finite and of sane magnitude, a weather
code a whole number 0-99, coordinates finite, ``utc_offset_seconds`` and any offset in a
time whole minutes (else ``invalid_payload/bad_value`` / ``bad_time`` / ``shape``).  Times
and dates lie in 2000-01-01 .. 2200-01-01 and coordinates in range, compared before any
conversion (a 400-digit latitude is ``out_of_bounds``, never an OverflowError; issue 16).  The
``current_units``/``daily_units`` blocks are checked against what we asked for: °F, m/s,
knots, mph and inches are converted; any other unit is ``invalid_payload/units``.  The old
``current_weather`` shape (temperature, wind, code) is read explicitly, the rest null.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from feeds.bounds import EARLIEST, LATEST, static_time
from feeds.errors import InvalidPayloadError
from feeds.models import CurrentWeather, DailyForecast, Location, LocationWeather, RequestSpec
from feeds.sources.common import coord, coordinate, load_json, number, wmo_code
from feeds.sources.conditions import wmo_condition
from feeds.validate import weather_gate

__all__ = [
    "check",
    "read",
    "requests",
    "HONOURS_EXPIRES",
    "MIN_INTERVAL",
    "DATA_KIND",
    "DEFAULT_URL",
    "KIND",
    "MAX_GRID_OFFSET",
    "MAX_LOCATIONS_PER_REQUEST",
    "MAX_REQUESTS_PER_SECOND",
    "SOURCE_NAME",
    "stale_after",
    "build_requests",
    "parse",
]

KIND = "open-meteo"
DATA_KIND = "weather"
SOURCE_NAME = "Open-Meteo"
DEFAULT_URL = "https://api.open-meteo.com/v1/forecast"
MAX_LOCATIONS_PER_REQUEST = 100
MAX_GRID_OFFSET = 0.5
FORECAST_DAYS = 3
#: Open-Meteo publishes daily/hourly/minutely call quotas (10,000 calls a day for the free
#: API) but no per-second rate; requests are bounded by [http] per_host_concurrency only.
MAX_REQUESTS_PER_SECOND: float | None = None

CURRENT = (
    "temperature_2m,apparent_temperature,relative_humidity_2m,wind_speed_10m,"
    "wind_direction_10m,precipitation,weather_code"
)
DAILY = "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum"



def build_requests(
    url: str,
    locations: Sequence[Location],
    *,
    user_agent: str,
    batch_size: int = MAX_LOCATIONS_PER_REQUEST,
) -> list[tuple[RequestSpec, tuple[Location, ...]]]:
    """One request per batch of locations, each with the locations it asks for."""
    out = []
    for i in range(0, len(locations), max(1, batch_size)):
        batch = tuple(locations[i : i + batch_size])
        params = (
            ("latitude", ",".join(coord(loc.lat) for loc in batch)),
            ("longitude", ",".join(coord(loc.lon) for loc in batch)),
            ("current", CURRENT),
            ("daily", DAILY),
            ("forecast_days", str(FORECAST_DAYS)),
            ("timezone", "Asia/Ho_Chi_Minh"),
            ("wind_speed_unit", "kmh"),
        )
        headers = (("Accept", "application/json"), ("User-Agent", user_agent))
        out.append((RequestSpec(url=url, params=params, headers=headers), batch))
    return out



#: What we ask for, per unit kind, and how other units Open-Meteo can answer in convert.
_CONVERT: dict[str, dict[str, Callable[[float], float]]] = {
    "temperature": {"°C": lambda x: x, "°F": lambda x: (x - 32) * 5 / 9},
    "speed": {
        "km/h": lambda x: x,
        "m/s": lambda x: x * 3.6,
        "kn": lambda x: x * 1.852,
        "mp/h": lambda x: x * 1.609344,
        "mph": lambda x: x * 1.609344,
    },
    "length": {"mm": lambda x: x, "inch": lambda x: x * 25.4},
    "percent": {"%": lambda x: x},
    "degrees": {"°": lambda x: x},
}
#: Variable -> unit kind, for ``current``, ``daily`` and the old ``current_weather``.
_UNIT_KIND = {
    "temperature_2m": "temperature",
    "apparent_temperature": "temperature",
    "temperature_2m_max": "temperature",
    "temperature_2m_min": "temperature",
    "temperature": "temperature",
    "wind_speed_10m": "speed",
    "windspeed": "speed",
    "relative_humidity_2m": "percent",
    "wind_direction_10m": "degrees",
    "winddirection": "degrees",
    "precipitation": "length",
    "precipitation_sum": "length",
    "rain": "length",
}
#: The longest offset any zone has (UTC+14, UTC-12), with a margin.
MAX_OFFSET = 18 * 3600


#: The units we ask for (their conversion is none).
_OURS = frozenset({"°C", "km/h", "mm", "%", "°"})
#: (variable, unit) -> how a value in that unit converts to ours; ``None``: it is ours.
_CONVERTERS: dict[tuple[str, str], Callable[[float], float] | None] = {
    (name, unit): (None if unit in _OURS else fn)
    for name, kind in _UNIT_KIND.items()
    for unit, fn in _CONVERT[kind].items()
}
_NOT_OURS = object()


def _value(units: Any, name: str, value: Any) -> float | None:
    """A number (``common.number``), converted to our unit from the one ``units`` names."""
    v = number(value)
    unit = units.get(name) if isinstance(units, dict) else None
    if unit is None:
        return v  # no unit block: the units we asked for
    convert = _CONVERTERS.get((name, unit), _NOT_OURS) if type(unit) is str else _NOT_OURS
    if convert is _NOT_OURS:
        raise InvalidPayloadError("an answer uses a unit we did not ask for", detail="units")
    if v is None or convert is None:
        return v
    converted = convert(v)  # type: ignore[operator]
    return v if converted == v else round(converted, 1)


@functools.lru_cache(maxsize=1024)
def _parsed_time(text: str) -> datetime:
    """``datetime.fromisoformat``, memoized: the locations of one answer share their times."""
    return datetime.fromisoformat(text)


def _local_time(text: Any, tz: timezone) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        dt = _parsed_time(text[:40])
    except ValueError:
        raise InvalidPayloadError("a time is not ISO 8601", detail="bad_time") from None
    if dt.tzinfo is not None:
        off = dt.utcoffset()
        if off is None or off.total_seconds() % 60 or abs(off.total_seconds()) > MAX_OFFSET:
            raise InvalidPayloadError("a time's offset is not whole minutes", detail="bad_time")
        return static_time(dt)
    return static_time(dt.replace(tzinfo=tz))


def _offset(obj: dict[str, Any]) -> timezone:
    offset = obj.get("utc_offset_seconds", 0)
    if offset is None:
        offset = 0
    if (
        isinstance(offset, bool)
        or not isinstance(offset, int)
        or offset % 60
        or abs(offset) > MAX_OFFSET
    ):
        raise InvalidPayloadError("utc_offset_seconds is not a whole-minute offset", detail="bad_time")
    return _zone(offset)


@functools.lru_cache(maxsize=64)
def _zone(offset: int) -> timezone:
    return timezone(timedelta(seconds=offset))


def _current(obj: dict[str, Any], tz: timezone) -> CurrentWeather:
    cur = obj.get("current")
    if cur is None and obj.get("current_weather") is not None:
        return _current_weather(obj, tz)
    cur = cur or {}
    if not isinstance(cur, dict):
        raise InvalidPayloadError("current is not an object", detail="shape")
    units = obj.get("current_units")

    def val(name: str) -> float | None:
        return _value(units, name, cur.get(name))

    code = wmo_code(cur.get("weather_code"))
    key, label = wmo_condition(code)
    rain_name = "precipitation" if "precipitation" in cur else "rain"
    return CurrentWeather(
        time=_local_time(cur.get("time"), tz),
        temperature_c=val("temperature_2m"),
        apparent_temperature_c=val("apparent_temperature"),
        humidity_pct=val("relative_humidity_2m"),
        wind_speed_kmh=val("wind_speed_10m"),
        wind_direction_deg=val("wind_direction_10m"),
        precipitation_mm=val(rain_name),
        weather_code=code,
        condition=key,
        condition_vi=label,
    )


def _current_weather(obj: dict[str, Any], tz: timezone) -> CurrentWeather:
    """The old ``current_weather=true`` shape: temperature, wind and code only (the rest null)."""
    cw = obj.get("current_weather")
    if not isinstance(cw, dict):
        raise InvalidPayloadError("current_weather is not an object", detail="shape")
    units = obj.get("current_weather_units")
    code = wmo_code(cw.get("weathercode", cw.get("weather_code")))
    key, label = wmo_condition(code)
    return CurrentWeather(
        time=_local_time(cw.get("time"), tz),
        temperature_c=_value(units, "temperature", cw.get("temperature")),
        apparent_temperature_c=None,
        humidity_pct=None,
        wind_speed_kmh=_value(units, "windspeed", cw.get("windspeed", cw.get("wind_speed"))),
        wind_direction_deg=_value(units, "winddirection", cw.get("winddirection", cw.get("wind_direction"))),
        precipitation_mm=None,
        weather_code=code,
        condition=key,
        condition_vi=label,
    )


_DAILY_COLUMNS = ("weather_code", "temperature_2m_max", "temperature_2m_min", "precipitation_sum")
_FIRST_DAY, _LAST_DAY = EARLIEST.date(), LATEST.date()


def _one(obj: Any, loc: Location) -> LocationWeather:
    if not isinstance(obj, dict):
        raise InvalidPayloadError("a location answer is not an object", detail="shape")
    if obj.get("latitude") is None or obj.get("longitude") is None:
        raise InvalidPayloadError("a location answer has no coordinates", detail="shape")
    lat, lon = coordinate(obj.get("latitude"), 90), coordinate(obj.get("longitude"), 180)
    if abs(lat - loc.lat) > MAX_GRID_OFFSET or abs(lon - loc.lon) > MAX_GRID_OFFSET:
        raise InvalidPayloadError("an answer is for another place", detail="location_mismatch")
    tz = _offset(obj)
    current = _current(obj, tz)
    daily_raw = obj.get("daily") or {}
    if not isinstance(daily_raw, dict):
        raise InvalidPayloadError("daily is not an object", detail="shape")
    units = obj.get("daily_units")
    times = daily_raw.get("time") or []
    if not isinstance(times, list):
        raise InvalidPayloadError("daily.time is not a list", detail="shape")
    columns = [daily_raw.get(name) for name in _DAILY_COLUMNS]
    codes, t_max, t_min, rain = (c if isinstance(c, list) else () for c in columns)
    days = []
    for i, day_text in enumerate(times[:FORECAST_DAYS]):
        try:
            day = date.fromisoformat(day_text)
        except (TypeError, ValueError):
            raise InvalidPayloadError("a daily date is not ISO 8601", detail="bad_time") from None
        if not _FIRST_DAY <= day <= _LAST_DAY:
            raise InvalidPayloadError("a daily date is out of range", detail="bad_time")
        dcode = wmo_code(codes[i] if i < len(codes) else None)
        dkey, dlabel = wmo_condition(dcode)
        days.append(
            DailyForecast(
                date=day,
                temperature_min_c=_value(units, "temperature_2m_min", t_min[i] if i < len(t_min) else None),
                temperature_max_c=_value(units, "temperature_2m_max", t_max[i] if i < len(t_max) else None),
                precipitation_mm=_value(units, "precipitation_sum", rain[i] if i < len(rain) else None),
                weather_code=dcode,
                condition=dkey,
                condition_vi=dlabel,
            )
        )
    return LocationWeather(location=loc, current=current, daily=tuple(days), as_of=current.time)


def parse(body: bytes, locations: Sequence[Location]) -> tuple[LocationWeather, ...]:
    """Parse an answer for ``locations`` (in request order), or raise InvalidPayloadError."""
    doc = load_json(body)
    if isinstance(doc, dict) and doc.get("error") is True:
        raise InvalidPayloadError("the API answered with an error", detail="api_error")
    items = doc if isinstance(doc, list) else [doc]
    if len(items) != len(locations):
        raise InvalidPayloadError("answer count differs from locations asked", detail="count_mismatch")
    return tuple(_one(obj, loc) for obj, loc in zip(items, locations, strict=True))


#: How old the current conditions' time may be before the source counts as frozen.
UPSTREAM_MAX_AGE = timedelta(hours=3)


def stale_after(as_of: datetime) -> datetime:
    """Current conditions are refreshed every 15 minutes: 3 hours old is frozen."""
    return as_of + UPSTREAM_MAX_AGE


# -- the Source protocol (feeds.sources.registry) ----------------------------------------
#: Open-Meteo's limits are per minute/day, far above one portal's needs (feeds.batching paces).
MIN_INTERVAL = 0.0
HONOURS_EXPIRES = False
requests = build_requests
read = parse


check = weather_gate
