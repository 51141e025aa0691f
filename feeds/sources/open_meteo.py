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
from typing import Any, Literal

from feeds import bounds
from feeds.bounds import EARLIEST, LATEST, static_time
from feeds.errors import InvalidPayloadError
from feeds.models import (
    CurrentWeather,
    DailyForecast,
    Location,
    LocationWeather,
    RequestSpec,
    isoformat,
)
from feeds.sources.common import coord, coordinate, load_json, number, wmo_code
from feeds.sources.conditions import wmo_condition
from feeds.validate import WEATHER_RANGES, weather_gate

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



# -- the common answer in one pass (issue 20) ---------------------------------------------
#: The variables read from ``current`` and ``daily`` (with their ``WEATHER_RANGES`` names).
_CURRENT_FAST = (
    ("temperature_2m", "temperature_c"),
    ("apparent_temperature", "apparent_temperature_c"),
    ("relative_humidity_2m", "humidity_pct"),
    ("wind_speed_10m", "wind_speed_kmh"),
    ("wind_direction_10m", "wind_direction_deg"),
)
_CURRENT_UNITS = tuple(name for name, _ in _CURRENT_FAST)
_DAILY_UNITS = ("temperature_2m_min", "temperature_2m_max", "precipitation_sum")


def _units_ours(units: Any, names: Sequence[str]) -> bool:
    """Whether ``_value`` reads each of ``names`` in ``units`` as the unit we asked for."""
    if not isinstance(units, dict):
        return True  # no unit block: the units we asked for
    for name in names:
        unit = units.get(name)
        if unit is not None and (type(unit) is not str or _CONVERTERS.get((name, unit), _NOT_OURS) is not None):
            return False
    return True


def _plain(value: Any, lo: float, hi: float) -> bool:
    """``number`` passes ``value`` unchanged and ``check_weather`` finds it in range."""
    t = type(value)
    return value is None or ((t is float or t is int) and lo <= value <= hi)


def fast_entries(
    body: bytes, locations: Sequence[Location], at: datetime
) -> list[tuple[str, datetime | None, dict[str, Any], bool]] | None:
    """The snapshot entries of a common answer, read in one pass: per location (id, as_of,
    entry, whether the entry passed the publish step's checks), exactly what ``parse``, the
    source's ``check`` and ``feeds.batching._entry`` give together (tests/test_open_meteo_fast.py
    compares them on real and damaged answers); ``None`` for anything out of the ordinary --
    a unit to convert, a value out of range or of another type, another shape, an error --
    which those then read, with their exact errors.

    A 100-location answer took ~4 ms of Python in three passes (models, then entries, then
    their checks), on the thread whose turns the event loop waits for (issue 20).
    """
    try:
        doc = load_json(body)
    except InvalidPayloadError:
        return None
    if type(doc) is not list or len(doc) != len(locations):
        return None
    at_text = isoformat(at)
    times: dict[tuple[str, int], tuple[datetime, str] | None] = {}
    days: dict[str, tuple[date, str] | None] = {}
    cur_units: Any = None
    day_units: Any = None
    out = []
    ranges = WEATHER_RANGES
    t_lo, t_hi = ranges["temperature_min_c"]
    p_lo, p_hi = ranges["precipitation_mm"]
    for obj, loc in zip(doc, locations, strict=True):
        if type(obj) is not dict:
            return None
        lat, lon, offset = obj.get("latitude"), obj.get("longitude"), obj.get("utc_offset_seconds", 0)
        if (
            type(lat) is not float or type(lon) is not float
            or not (-90 <= lat <= 90 and -180 <= lon <= 180)
            or abs(lat - loc.lat) > MAX_GRID_OFFSET or abs(lon - loc.lon) > MAX_GRID_OFFSET
            or type(offset) is not int or offset % 60 or abs(offset) > MAX_OFFSET
        ):
            return None
        cur = obj.get("current")
        if cur is None:
            if obj.get("current_weather") is not None:
                return None  # the old shape
            cur = {}  # every current value null, as ``_current`` reads it
        elif type(cur) is not dict:
            return None
        rain_name = "precipitation" if "precipitation" in cur else "rain"
        units = obj.get("current_units")
        if units is not cur_units and units != cur_units:
            if not _units_ours(units, _CURRENT_UNITS):
                return None
            cur_units = units  # the next locations' blocks are mostly equal to this one
        if not _units_ours(units, (rain_name,)):
            return None
        values = []
        for name, kind in _CURRENT_FAST:
            v = cur.get(name)
            lo, hi = ranges[kind]
            if not _plain(v, lo, hi):
                return None
            values.append(v)
        rain = cur.get(rain_name)
        if not _plain(rain, p_lo, p_hi):
            return None
        code = _fast_code(cur.get("weather_code"))
        if code is False:
            return None
        text = cur.get("time")
        if type(text) is str:
            key = (text, offset)
            if key not in times:
                try:
                    dt = _local_time(text, _zone(offset))
                except InvalidPayloadError:
                    dt = None
                times[key] = None if dt is None else (dt, isoformat(dt) or "")
            known = times[key]
            if known is None:
                return None
            as_of, time_text = known
        elif text is None:
            as_of, time_text = None, None
        else:
            return None
        label = wmo_condition(code)
        current = {
            "time": time_text,
            "temperature_c": values[0],
            "apparent_temperature_c": values[1],
            "humidity_pct": values[2],
            "wind_speed_kmh": values[3],
            "wind_direction_deg": values[4],
            "precipitation_mm": rain,
            "weather_code": code,
            "condition": label[0],
            "condition_vi": label[1],
        }
        daily_raw = obj.get("daily")
        if daily_raw is None:
            daily_raw = {}  # no forecast days, as ``_one`` reads it
        elif type(daily_raw) is not dict:
            return None
        day_texts = daily_raw.get("time")
        if day_texts is None:
            day_texts = []
        elif type(day_texts) is not list:
            return None
        if day_texts:
            units = obj.get("daily_units")
            if units is not day_units and units != day_units:
                if not _units_ours(units, _DAILY_UNITS):
                    return None
                day_units = units
        columns = [daily_raw.get(name) for name in _DAILY_COLUMNS]
        if any(c is not None and type(c) is not list for c in columns):
            return None
        codes, t_max, t_min, rains = (c or () for c in columns)
        daily = []
        for i, day_text in enumerate(day_texts[:FORECAST_DAYS]):
            if type(day_text) is not str:
                return None
            if day_text not in days:
                try:
                    d = date.fromisoformat(day_text)
                    days[day_text] = (d, d.isoformat()) if _FIRST_DAY <= d <= _LAST_DAY else None
                except ValueError:
                    days[day_text] = None
            day = days[day_text]
            if day is None:
                return None
            dcode = _fast_code(codes[i] if i < len(codes) else None)
            low = t_min[i] if i < len(t_min) else None
            high = t_max[i] if i < len(t_max) else None
            wet = rains[i] if i < len(rains) else None
            if (
                dcode is False or not _plain(low, t_lo, t_hi) or not _plain(high, t_lo, t_hi)
                or not _plain(wet, p_lo, p_hi) or (low is not None and high is not None and low > high)
            ):
                return None
            dlabel = wmo_condition(dcode)
            daily.append({
                "date": day[1],
                "temperature_min_c": low,
                "temperature_max_c": high,
                "precipitation_mm": wet,
                "weather_code": dcode,
                "condition": dlabel[0],
                "condition_vi": dlabel[1],
            })
        entry = {
            "id": loc.id,
            "name": loc.name,
            "short_name": loc.display_name,
            "lat": loc.lat,
            "lon": loc.lon,
            "fetched_at": at_text,
            "current": current,
            "daily": daily,
        }
        try:
            bounds.check_location(entry, at)  # as ``feeds.batching._entry`` checks one
        except InvalidPayloadError:
            out.append((loc.id, as_of, entry, False))
            continue
        out.append((loc.id, as_of, entry, bounds.location_ok(entry)))
    return out


def _fast_code(value: Any) -> int | None | Literal[False]:
    """``wmo_code(value)`` where it is plainly a code or null; False for anything else."""
    if value is None:
        return None
    t = type(value)
    if t is int:
        return value if 0 <= value <= 99 else False
    if t is float and value.is_integer() and 0 <= value <= 99:
        return int(value)
    return False

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
