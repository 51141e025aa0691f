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
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from feeds.errors import InvalidPayloadError
from feeds.models import CurrentWeather, DailyForecast, Location, LocationWeather, RequestSpec
from feeds.sources.common import coord, load_json, number
from feeds.sources.conditions import wmo_condition

__all__ = [
    "DATA_KIND",
    "DEFAULT_URL",
    "KIND",
    "MAX_GRID_OFFSET",
    "MAX_LOCATIONS_PER_REQUEST",
    "MAX_REQUESTS_PER_SECOND",
    "SOURCE_NAME",
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



def _code(value: Any) -> int | None:
    v = number(value)
    return None if v is None else int(v)


def _local_time(text: Any, tz: timezone) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidPayloadError("a time is not ISO 8601", detail="bad_time") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def _one(obj: Any, loc: Location) -> LocationWeather:
    if not isinstance(obj, dict):
        raise InvalidPayloadError("a location answer is not an object", detail="shape")
    lat, lon = obj.get("latitude"), obj.get("longitude")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        raise InvalidPayloadError("a location answer has no coordinates", detail="shape")
    if abs(lat - loc.lat) > MAX_GRID_OFFSET or abs(lon - loc.lon) > MAX_GRID_OFFSET:
        raise InvalidPayloadError("an answer is for another place", detail="location_mismatch")
    offset = obj.get("utc_offset_seconds", 0)
    tz = timezone(timedelta(seconds=offset if isinstance(offset, int) else 0))
    cur = obj.get("current") or {}
    if not isinstance(cur, dict):
        raise InvalidPayloadError("current is not an object", detail="shape")
    code = _code(cur.get("weather_code"))
    key, label = wmo_condition(code)
    current = CurrentWeather(
        time=_local_time(cur.get("time"), tz),
        temperature_c=number(cur.get("temperature_2m")),
        apparent_temperature_c=number(cur.get("apparent_temperature")),
        humidity_pct=number(cur.get("relative_humidity_2m")),
        wind_speed_kmh=number(cur.get("wind_speed_10m")),
        wind_direction_deg=number(cur.get("wind_direction_10m")),
        precipitation_mm=number(cur.get("precipitation", cur.get("rain"))),
        weather_code=code,
        condition=key,
        condition_vi=label,
    )
    daily_raw = obj.get("daily") or {}
    if not isinstance(daily_raw, dict):
        raise InvalidPayloadError("daily is not an object", detail="shape")
    times = daily_raw.get("time") or []
    days = []
    for i, day_text in enumerate(times[:FORECAST_DAYS]):

        def col(name: str, i: int = i) -> Any:
            values = daily_raw.get(name)
            return values[i] if isinstance(values, list) and i < len(values) else None

        try:
            day = date.fromisoformat(day_text)
        except (TypeError, ValueError):
            raise InvalidPayloadError("a daily date is not ISO 8601", detail="bad_time") from None
        dcode = _code(col("weather_code"))
        dkey, dlabel = wmo_condition(dcode)
        days.append(
            DailyForecast(
                date=day,
                temperature_min_c=number(col("temperature_2m_min")),
                temperature_max_c=number(col("temperature_2m_max")),
                precipitation_mm=number(col("precipitation_sum")),
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
