"""The validation gate: sanity rules a parsed document must pass before it is published.

Parsers answer "is this the document we expect?" (``invalid_payload``); the gate answers
"is it believable?" (``rejected``).  Each rule is a small tested function raising
``RejectedError`` with a stable ``detail``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, localcontext
from typing import Any

from feeds.errors import RejectedError
from feeds.models import ExchangeRates, LocationWeather
from feeds.sources.currencies import bounds_of

__all__ = ["WEATHER_RANGES", "check_rates", "check_weather", "moved_too_far"]

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


def _dec(value: Any) -> Decimal | None:
    """A stored or parsed value as a Decimal the gate can compute with, or None.

    The gate never raises on a stored value: whatever an older version (or a hostile
    answer it let through) stored, a value that is not a finite number of sane magnitude
    is simply not compared.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value)[:64])
    except (ArithmeticError, ValueError):
        return None
    if not d.is_finite() or d <= 0 or not -12 <= d.adjusted() <= 15:
        return None
    return d


def check_rates(
    rates: ExchangeRates,
    previous: Mapping[str, Any] | None = None,
    max_change: float = 0.2,
) -> None:
    """Refuse a rate table that is empty, lacks USD, has non-positive, crossed or
    implausible values (``feeds.sources.currencies`` bounds), or moved more than
    ``max_change`` (a fraction) from the last good table -- the last check, so a
    ``moved_too_far`` table passed every other rule (``feeds.trust``'s recovery rule)."""
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
    for r in rates.rates:
        lo, hi = bounds_of(r.code)
        for val in (r.buy_cash, r.buy_transfer, r.sell):
            if val is not None and (_dec(val) is None or not lo <= val <= hi):
                raise RejectedError(f"{r.code}: value outside its plausible bounds", detail="out_of_bounds")
    if previous:
        moved = moved_too_far(rates, previous, max_change)
        if moved:
            raise RejectedError(f"{moved}: moved too far", detail="moved_too_far")


def moved_too_far(rates: ExchangeRates, previous: Mapping[str, Any], max_change: float) -> str | None:
    """The first ``CODE column`` that moved more than ``max_change`` from ``previous``, or None."""
    prev_rates = previous.get("rates") if isinstance(previous, Mapping) else None
    if not isinstance(prev_rates, list):
        return None
    old = {row.get("code"): row for row in prev_rates if isinstance(row, Mapping)}
    limit = Decimal(str(max_change))
    with localcontext() as ctx:
        ctx.prec = 40
        for r in rates.rates:
            before = old.get(r.code)
            if not before:
                continue
            for col in ("buy_cash", "buy_transfer", "sell"):
                new_v = _dec(getattr(r, col))
                old_v = _dec(before.get(col))
                if new_v is None or old_v is None:
                    continue
                if abs(new_v - old_v) / old_v > limit:
                    return f"{r.code} {col}"
    return None


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


def weather_gate(
    parsed: Sequence[LocationWeather], *, previous: dict[str, Any] | None, max_change: float, asked: Sequence[str]
) -> None:
    """The Source protocol's ``check`` for every weather source: previous values and
    max_change do not apply to weather (it may move freely); the physical ranges do."""
    del previous, max_change
    check_weather(parsed, asked)
