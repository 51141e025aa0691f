"""Helpers shared by the JSON weather sources: reading numbers, bodies and coordinates."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from feeds.errors import InvalidPayloadError
from feeds.fastjson import reads_exactly

__all__ = ["MAX_MAGNITUDE", "coord", "coordinate", "finite", "load_json", "number", "wmo_code"]

#: No weather value is anywhere near this; larger ones (a 400-digit integer, -1e308) are
#: refused here, before any arithmetic could overflow on them.
MAX_MAGNITUDE = 1e9


def number(value: Any) -> float | None:
    """A finite JSON number of sane magnitude, or null; anything else is invalid_payload.

    Strings, booleans, NaN/Infinity (which ``json.loads`` accepts) and absurd magnitudes are
    ``invalid_payload/bad_value``.
    """
    t = type(value)
    if t is float:  # the common case first (~60,000 per 3,000-location attempt; issue 20)
        # NaN fails both comparisons and an infinity the bound: refused as below.
        f: float = value
        if -MAX_MAGNITUDE <= f <= MAX_MAGNITUDE:
            return f
        raise InvalidPayloadError("a value is not a finite number", detail="bad_value")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidPayloadError("a value is not a number", detail="bad_value")
    if isinstance(value, int):
        if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
            raise InvalidPayloadError("a value is out of any range", detail="bad_value")
        return value
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise InvalidPayloadError("a value is not a finite number", detail="bad_value")
    return value


def finite(value: Any) -> bool:
    """Whether ``value`` is a (non-boolean) finite JSON number of sane magnitude.

    The magnitude is compared first: ``math.isfinite`` of a 400-digit integer raises
    OverflowError (issue 16).
    """
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE
    )


def coordinate(value: Any, limit: float) -> float:
    """A latitude (``limit`` 90) or longitude (180) from an answer, else invalid_payload.

    Not a finite number (NaN, Infinity, a string): ``shape``; a number outside the range
    (a 400-digit integer, 1e308): ``out_of_bounds``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise InvalidPayloadError("a coordinate is not a number", detail="shape")
    if not -limit <= value <= limit:  # exact for any int: no float conversion, no overflow
        raise InvalidPayloadError("a coordinate is out of range", detail="out_of_bounds")
    return float(value)


def wmo_code(value: Any) -> int | None:
    """A WMO 4677 present-weather code (a whole number 0-99), or null; else invalid_payload.

    ``2.7`` is not truncated to 2: a code that is not a whole number is refused.
    """
    v = number(value)
    if v is None:
        return None
    if v != int(v) or not 0 <= v <= 99:
        raise InvalidPayloadError("a weather code is not a WMO code", detail="bad_value")
    return int(v)


def coord(x: float) -> str:
    """A coordinate with at most 4 decimals (MET Norway's terms; plenty for Open-Meteo)."""
    return f"{x:.4f}".rstrip("0").rstrip(".")


def load_json(body: bytes) -> Any:
    """Decode a JSON body, or raise invalid_payload (``empty`` / ``malformed``)."""
    if not body.strip():
        raise InvalidPayloadError("empty body", detail="empty")
    try:
        # orjson: 3x faster on a 100-location Open-Meteo answer (issue 20).  What it refuses
        # (not UTF-8, NaN, lone surrogates, deep nesting) or would read otherwise (an int past
        # 64 bits becomes a float there: any run of 19 digits) is decided by the json module,
        # as before: the same values, the same refusals.
        if reads_exactly(body):
            return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: "[" x 1000; ValueError also covers integers of 4,300+ digits.
        raise InvalidPayloadError("not JSON", detail="malformed") from None
