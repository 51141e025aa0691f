"""MET Norway Locationforecast 2.0 ``compact``: the weather fallback, same normalized output.

Format facts (api.met.no docs, shared/upstream-samples/README.md):

- The terms require an identifying ``User-Agent`` (application/domain and contact); a
  missing or generic one gets 403.  Coordinates: at most 4 decimals (more gives 403).
- Honour ``Expires`` and revalidate with ``If-Modified-Since`` (the coordinator does both).
- A GeoJSON Feature: ``geometry.coordinates`` is ``[lon, lat, altitude]``;
  ``properties.meta.updated_at`` is the model update time; ``properties.timeseries[]`` has
  ``time`` (UTC, ``Z``), ``data.instant.details`` (the state at that time) and
  ``next_1_hours`` / ``next_6_hours`` / ``next_12_hours`` blocks with ``summary.symbol_code``
  and ``details.precipitation_amount``.  The ``next_*`` blocks thin out along the series;
  the last entry has only ``instant``.
- Wind speed is in m/s (converted to km/h); there is no apparent temperature (null).
  ``meta.units`` is checked: another unit than the documented ones is ``invalid_payload/units``.

Our rules:
- ``current`` is the first entry: its instant details, the symbol and precipitation of its
  ``next_1_hours`` (else ``next_6_hours``).
- ``daily``: up to 3 local days (Vietnam time), from the first entry's day.  min/max of the
  instant air temperatures within the day; precipitation = the sum of non-overlapping
  ``next_1_hours`` blocks, with ``next_6_hours`` blocks where hourly ones have stopped,
  attributed to the day each block starts in; the day's ``weather_code`` is the most severe
  (highest) WMO code among its symbols -- the same rule as Open-Meteo's daily code.
- A day whose entries cover less than 12 hours (from its first entry to its last, plus the
  last one's step) has null min/max: two entries from 22:00 are not "today's" range.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from feeds.bounds import static_time
from feeds.clock import VIETNAM_TZ
from feeds.errors import InvalidPayloadError
from feeds.models import CurrentWeather, DailyForecast, Location, LocationWeather, RequestSpec
from feeds.sources.common import coord, coordinate, load_json, number
from feeds.sources.conditions import metno_to_wmo, wmo_condition
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
    "MAX_REQUESTS_PER_SECOND",
    "SOURCE_NAME",
    "stale_after",
    "build_requests",
    "parse",
]

KIND = "met-no"
DATA_KIND = "weather"
SOURCE_NAME = "MET Norway"
DEFAULT_URL = "https://api.met.no/weatherapi/locationforecast/2.0/compact"
MAX_GRID_OFFSET = 0.5
FORECAST_DAYS = 3
#: MET Norway's terms of service (api.met.no/doc/TermsOfService, "Traffic"): more than
#: 20 requests/second per application (in total, not per client) needs a special
#: agreement.  feeds.batching paces every request to this host at or below it.
MAX_REQUESTS_PER_SECOND = 20.0



def build_requests(
    url: str, locations: Sequence[Location], *, user_agent: str, batch_size: int = 1
) -> list[tuple[RequestSpec, tuple[Location, ...]]]:
    """One request per location (the API has no multi-location form)."""
    del batch_size  # MET Norway answers for one point per request
    headers = (("Accept", "application/json"), ("User-Agent", user_agent))
    return [
        (
            RequestSpec(
                url=url,
                params=(("lat", coord(loc.lat)), ("lon", coord(loc.lon))),
                headers=headers,
            ),
            (loc,),
        )
        for loc in locations
    ]



def _dict(value: Any) -> dict[str, Any]:
    """``value`` if it is an object; an absent block (``None``) is empty; else invalid_payload."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidPayloadError("a block is not an object", detail="shape")
    return value


def _block(data: dict[str, Any], name: str) -> tuple[str | None, float | None]:
    b = data.get(name)
    if not isinstance(b, dict):
        return None, None
    symbol = _dict(b.get("summary")).get("symbol_code")
    amount = number(_dict(b.get("details")).get("precipitation_amount"))
    return (symbol if isinstance(symbol, str) else None), amount


#: The units the compact product documents; anything else is ``invalid_payload/units``.
UNITS = {
    "air_temperature": "celsius",
    "wind_speed": "m/s",
    "precipitation_amount": "mm",
    "relative_humidity": "%",
    "wind_from_direction": "degrees",
}
#: A day's min/max are given only when its entries cover at least this much of it.
MIN_DAY_COVERAGE = timedelta(hours=12)


def _time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise InvalidPayloadError("a time is missing", detail="bad_time")
    try:
        dt = datetime.fromisoformat(text[:40].replace("Z", "+00:00"))
    except ValueError:
        raise InvalidPayloadError("a time is not ISO 8601", detail="bad_time") from None
    if dt.tzinfo is None:
        raise InvalidPayloadError("a time has no zone", detail="bad_time")
    off = dt.utcoffset()
    if off is None or off.total_seconds() % 60:
        raise InvalidPayloadError("a time's offset is not whole minutes", detail="bad_time")
    # 9999-12-31T23:00Z would overflow when moved to Vietnam time (feeds.bounds).
    return static_time(dt)


def parse(body: bytes, locations: Sequence[Location]) -> tuple[LocationWeather, ...]:
    """Parse a compact answer for exactly one location, or raise InvalidPayloadError."""
    if len(locations) != 1:
        raise ValueError("MET Norway answers for one location per request")
    loc = locations[0]
    doc = load_json(body)
    if not isinstance(doc, dict) or doc.get("type") != "Feature":
        raise InvalidPayloadError("not a GeoJSON Feature", detail="shape")
    coords = _dict(doc.get("geometry")).get("coordinates")
    if not isinstance(coords, list) or len(coords) < 2:
        raise InvalidPayloadError("no coordinates", detail="shape")
    lon, lat = coordinate(coords[0], 180), coordinate(coords[1], 90)
    if abs(lat - loc.lat) > MAX_GRID_OFFSET or abs(lon - loc.lon) > MAX_GRID_OFFSET:
        raise InvalidPayloadError("an answer is for another place", detail="location_mismatch")
    props = _dict(doc.get("properties"))
    series = props.get("timeseries")
    if not isinstance(series, list) or not series:
        raise InvalidPayloadError("no timeseries", detail="shape")
    meta = _dict(props.get("meta"))
    units = _dict(meta.get("units"))
    for name, unit in UNITS.items():
        if name in units and units[name] != unit:
            raise InvalidPayloadError("an answer uses a unit we do not read", detail="units")
    updated = meta.get("updated_at")
    as_of = _time(updated) if updated else None

    entries: list[tuple[datetime, dict[str, Any]]] = []
    for item in series:
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            raise InvalidPayloadError("a timeseries entry is malformed", detail="shape")
        entries.append((_time(item.get("time")), item["data"]))
    entries.sort(key=lambda e: e[0])

    t0, d0 = entries[0]
    inst = _dict(_dict(d0.get("instant")).get("details"))
    sym, precip = _block(d0, "next_1_hours")
    if sym is None:
        sym, precip = _block(d0, "next_6_hours")
    code = metno_to_wmo(sym)
    key, label = wmo_condition(code)
    wind = number(inst.get("wind_speed"))
    current = CurrentWeather(
        time=t0.astimezone(VIETNAM_TZ),
        temperature_c=number(inst.get("air_temperature")),
        apparent_temperature_c=None,
        humidity_pct=number(inst.get("relative_humidity")),
        wind_speed_kmh=None if wind is None else round(wind * 3.6, 1),
        wind_direction_deg=number(inst.get("wind_from_direction")),
        precipitation_mm=precip,
        weather_code=code,
        condition=key,
        condition_vi=label,
    )
    return (LocationWeather(loc, current, _daily(entries), as_of),)


def _daily(entries: list[tuple[datetime, dict[str, Any]]]) -> tuple[DailyForecast, ...]:
    first_day = entries[0][0].astimezone(VIETNAM_TZ).date()
    days = [first_day + timedelta(days=i) for i in range(FORECAST_DAYS)]
    temps: dict[date, list[float]] = {d: [] for d in days}
    rain: dict[date, float | None] = dict.fromkeys(days)
    codes: dict[date, list[int]] = {d: [] for d in days}
    covered_until: datetime | None = None
    span: dict[date, list[datetime]] = {d: [] for d in days}
    for t, data in entries:
        day = t.astimezone(VIETNAM_TZ).date()
        if day not in temps:
            continue
        span[day].append(t)
        temp = number(_dict(_dict(data.get("instant")).get("details")).get("air_temperature"))
        if temp is not None:
            temps[day].append(temp)
        for name, hours in (("next_1_hours", 1), ("next_6_hours", 6)):
            sym, amount = _block(data, name)
            if sym is None and amount is None:
                continue
            code = metno_to_wmo(sym)
            if code is not None:
                codes[day].append(code)
            if amount is not None and (covered_until is None or t >= covered_until):
                rain[day] = (rain[day] or 0.0) + amount
                covered_until = t + timedelta(hours=hours)
            break  # the finest block present describes this entry
    out = []
    for d in days:
        if not temps[d] and not codes[d]:
            continue
        code = max(codes[d]) if codes[d] else None
        total = rain[d]
        key, label = wmo_condition(code)
        # A day the series covers only partly (it starts at 22:00 local time: 2 entries)
        # would show a misleading min/max: null instead (docs/snapshots.md).
        whole = bool(temps[d]) and _coverage(span[d], entries) >= MIN_DAY_COVERAGE
        out.append(
            DailyForecast(
                date=d,
                temperature_min_c=min(temps[d]) if whole else None,
                temperature_max_c=max(temps[d]) if whole else None,
                precipitation_mm=None if total is None else round(total, 1),
                weather_code=code,
                condition=key,
                condition_vi=label,
            )
        )
    return tuple(out)


def _coverage(times: list[datetime], entries: list[tuple[datetime, dict[str, Any]]]) -> timedelta:
    """How much of a day its entries cover: first to last entry, plus the last one's step."""
    if not times:
        return timedelta(0)
    first, last = min(times), max(times)
    later = [t for t, _ in entries if t > last]
    step = min(later[0] - last, timedelta(hours=6)) if later else timedelta(hours=1)
    return last - first + step


#: How old ``updated_at`` (the model run) may be before the source counts as frozen.
UPSTREAM_MAX_AGE = timedelta(hours=12)


def stale_after(as_of: datetime) -> datetime:
    """MET Norway updates its forecasts several times a day: 12 hours old is frozen."""
    return as_of + UPSTREAM_MAX_AGE


# -- the Source protocol (feeds.sources.registry) ----------------------------------------
MIN_INTERVAL = 0.0
#: MET Norway's terms: honour Expires (capped by the pipeline), revalidate with Last-Modified.
HONOURS_EXPIRES = True
requests = build_requests
read = parse


check = weather_gate
