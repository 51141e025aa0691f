"""The validation gate: sanity rules a parsed document must pass before it is published.

Parsers answer "is this the document we expect?" (``invalid_payload``); the gate answers
"is it believable?" (``rejected``).  Each rule is a small tested function raising
``RejectedError`` with a stable ``detail``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from feeds.errors import RejectedError
from feeds.models import ExchangeRates, LocationWeather

__all__ = ["WEATHER_RANGES", "check_rates", "check_weather"]

# Physical bounds of plausible surface weather (world records, with a margin).
WEATHER_RANGES: dict[str, tuple[float, float]] = {
    "temperature_c": (-90.0, 60.0),
    "apparent_temperature_c": (-100.0, 75.0),
    "humidity_pct": (0.0, 100.0),
    "wind_speed_kmh": (0.0, 500.0),
    "wind_direction_deg": (0.0, 360.0),
    "precipitation_mm": (0.0, 2000.0),
    "temperature_min_c": (-90.0, 60.0),
    "temperature_max_c": (-90.0, 60.0),
}


def check_rates(
    rates: ExchangeRates,
    previous: Mapping[str, Any] | None = None,
    max_change: float = 0.2,
) -> None:
    """Refuse a rate table that is empty, lacks USD, has non-positive or crossed values,
    or moved more than ``max_change`` (a fraction) from the last good table."""
    if not rates.rates:
        raise RejectedError("no rates", detail="no_rates")
    if not any(r.code == "USD" for r in rates.rates):
        raise RejectedError("USD missing", detail="usd_missing")
    for r in rates.rates:
        values = [v for v in (r.buy_cash, r.buy_transfer, r.sell) if v is not None]
        if not values:
            raise RejectedError(f"{r.code}: no value quoted", detail="no_value")
        for v in values:
            if not v.is_finite() or v <= 0:
                raise RejectedError(f"{r.code}: value not positive", detail="not_positive")
        if r.sell is not None:
            for buy in (r.buy_cash, r.buy_transfer):
                if buy is not None and buy > r.sell:
                    raise RejectedError(f"{r.code}: buy above sell", detail="buy_above_sell")
    if previous:
        old = {row["code"]: row for row in previous.get("rates", [])}
        for r in rates.rates:
            before = old.get(r.code)
            if not before:
                continue
            for col in ("buy_cash", "buy_transfer", "sell"):
                new_v: Decimal | None = getattr(r, col)
                old_v = before.get(col)
                if new_v is None or old_v is None or old_v == 0:
                    continue
                change = abs(new_v - Decimal(old_v)) / Decimal(old_v)
                if change > Decimal(str(max_change)):
                    raise RejectedError(f"{r.code}: {col} moved too far", detail="moved_too_far")


def _in_range(name: str, value: float | None) -> None:
    if value is None:
        return
    lo, hi = WEATHER_RANGES[name]
    if not math.isfinite(value) or not lo <= value <= hi:
        raise RejectedError(f"{name} out of range", detail="out_of_range")


def check_weather(locations: Sequence[LocationWeather], asked: Iterable[str]) -> None:
    """Refuse weather with physically impossible values or locations not asked for."""
    asked_ids = set(asked)
    for lw in locations:
        if lw.location.id not in asked_ids:
            raise RejectedError("location not asked for", detail="unexpected_location")
        c = lw.current
        for name in ("temperature_c", "apparent_temperature_c", "humidity_pct", "wind_speed_kmh",
                     "wind_direction_deg", "precipitation_mm"):
            _in_range(name, getattr(c, name))
        for d in lw.daily:
            _in_range("temperature_min_c", d.temperature_min_c)
            _in_range("temperature_max_c", d.temperature_max_c)
            _in_range("precipitation_mm", d.precipitation_mm)
            if (
                d.temperature_min_c is not None
                and d.temperature_max_c is not None
                and d.temperature_min_c > d.temperature_max_c
            ):
                raise RejectedError("daily min above max", detail="min_above_max")
