"""Normalized models produced by the source parsers, and their snapshot ``data`` form.

Money is ``Decimal`` end to end (never float), datetimes are timezone-aware.  ``to_data()``
returns the JSON-ready dict placed under a snapshot's ``data`` key (see docs/snapshots.md);
Decimals stay Decimals there and are written as exact JSON numbers by ``feeds.publish``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "CurrentWeather",
    "DailyForecast",
    "ExchangeRate",
    "ExchangeRates",
    "Location",
    "LocationWeather",
    "RequestSpec",
    "Weather",
    "isoformat",
]


def isoformat(dt: datetime | None) -> str | None:
    """Format an aware datetime as ISO 8601 with its offset, to the second."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        raise ValueError("naive datetime")
    offset = dt.utcoffset()
    # Remembered per instant and offset (which together fix the text): the 3,000 locations of
    # an attempt share a few times, each formatted thousands of times (issue 20).
    key = (dt, offset)
    text = _ISO_TEXT.get(key)
    if text is None:
        text = _isoformat(dt, offset)
        if len(_ISO_TEXT) >= 4096:
            _ISO_TEXT.clear()
        _ISO_TEXT[key] = text
    return text


_ISO_TEXT: dict[tuple[datetime, Any], str] = {}


def _isoformat(dt: datetime, offset: Any) -> str:
    if offset is not None and offset.total_seconds() % 60:
        # A local mean time (Asia/Ho_Chi_Minh before 1906: +07:06:40) has no ISO 8601 /
        # schema form: the same instant in UTC instead (feeds.bounds keeps such dates out).
        dt = dt.astimezone(UTC)
    return dt.replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class RequestSpec:
    """What a source wants fetched: pure data, no I/O."""

    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ExchangeRate:
    """One currency row. ``None`` means the bank did not quote that column (never 0)."""

    code: str
    name: str
    name_vi: str
    buy_cash: Decimal | None
    buy_transfer: Decimal | None
    sell: Decimal | None

    def to_data(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "name_vi": self.name_vi,
            "buy_cash": self.buy_cash,
            "buy_transfer": self.buy_transfer,
            "sell": self.sell,
        }


@dataclass(frozen=True)
class ExchangeRates:
    """A whole rate table, in upstream order; ``as_of`` is the bank's own timestamp."""

    as_of: datetime | None
    rates: tuple[ExchangeRate, ...]
    base: str = "VND"
    #: Codes outside ISO 4217's active list, dropped by the parser (not published).
    dropped: tuple[str, ...] = ()

    def to_data(self) -> dict[str, Any]:
        return {"base": self.base, "rates": [r.to_data() for r in self.rates]}


@dataclass(frozen=True)
class Location:
    """A place a weather feed reports on."""

    id: str
    name: str
    lat: float
    lon: float
    #: A short display name ("Hà Nội" for "Thành phố Hà Nội"); derived from ``name`` when unset.
    short_name: str | None = None

    @property
    def display_name(self) -> str:
        """``short_name``, or ``name`` without a leading "Thành phố "/"Tỉnh "."""
        if self.short_name:
            return self.short_name
        for prefix in ("Thành phố ", "Tỉnh "):
            if self.name.startswith(prefix) and len(self.name) > len(prefix):
                return self.name[len(prefix):]
        return self.name


@dataclass(frozen=True)
class CurrentWeather:
    """Conditions now. Units are in the field names; any value may be missing (None)."""

    time: datetime | None
    temperature_c: float | None
    apparent_temperature_c: float | None
    humidity_pct: float | None
    wind_speed_kmh: float | None
    wind_direction_deg: float | None
    precipitation_mm: float | None
    weather_code: int | None
    condition: str
    condition_vi: str

    def to_data(self) -> dict[str, Any]:
        return {
            "time": isoformat(self.time),
            "temperature_c": self.temperature_c,
            "apparent_temperature_c": self.apparent_temperature_c,
            "humidity_pct": self.humidity_pct,
            "wind_speed_kmh": self.wind_speed_kmh,
            "wind_direction_deg": self.wind_direction_deg,
            "precipitation_mm": self.precipitation_mm,
            "weather_code": self.weather_code,
            "condition": self.condition,
            "condition_vi": self.condition_vi,
        }


@dataclass(frozen=True)
class DailyForecast:
    """One local calendar day of forecast."""

    date: date
    temperature_min_c: float | None
    temperature_max_c: float | None
    precipitation_mm: float | None
    weather_code: int | None
    condition: str
    condition_vi: str

    def to_data(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "temperature_min_c": self.temperature_min_c,
            "temperature_max_c": self.temperature_max_c,
            "precipitation_mm": self.precipitation_mm,
            "weather_code": self.weather_code,
            "condition": self.condition,
            "condition_vi": self.condition_vi,
        }


@dataclass(frozen=True)
class LocationWeather:
    """Weather of one location as parsed from one upstream answer."""

    location: Location
    current: CurrentWeather
    daily: tuple[DailyForecast, ...] = ()
    #: The upstream's own model-run/update time, when it gives one.
    as_of: datetime | None = None

    def to_data(self, fetched_at: datetime) -> dict[str, Any]:
        return {
            "id": self.location.id,
            "name": self.location.name,
            "short_name": self.location.display_name,
            "lat": self.location.lat,
            "lon": self.location.lon,
            "fetched_at": isoformat(fetched_at),
            "current": self.current.to_data(),
            "daily": [d.to_data() for d in self.daily],
        }


@dataclass(frozen=True)
class Weather:
    """All locations of a weather feed from one attempt."""

    locations: tuple[LocationWeather, ...] = field(default_factory=tuple)
