"""The zone snapshot timestamps are written in (``[publish] timezone``).

Every timestamp of a snapshot is one instant; which offset it is written with is a courtesy
to page authors.  By default it is Vietnam time (``Asia/Ho_Chi_Minh``, ``+07:00``), so a PHP
page on a UTC server that prints the time as written shows 14:30, not 07:30.  The instant is
unchanged: any ISO 8601 parser reads the same moment as before (schema version 1 always
allowed any offset).

``Asia/Ho_Chi_Minh`` works without the system's tz database (Vietnam has kept UTC+7 without
daylight saving since 1975); other names need it (Debian's ``tzdata``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feeds.clock import VIETNAM_TZ
from feeds.models import isoformat

__all__ = ["DEFAULT_TIMEZONE", "in_zone", "load_zone", "restamp"]

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

#: Top-level snapshot keys holding a timestamp (or null).
_TOP = ("generated_at", "fetched_at", "as_of", "stale_since", "upstream_stale_since", "next_update_at", "expires_at")


def load_zone(name: str) -> tzinfo:
    """The zone called ``name`` (IANA), or ValueError naming what is wrong."""
    if name in ("UTC", "Etc/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if name == DEFAULT_TIMEZONE:
            return VIETNAM_TZ
        raise ValueError(f'unknown time zone "{name}" (an IANA name like "Asia/Ho_Chi_Minh")') from None


def restamp(value: str | None, tz: tzinfo) -> str | None:
    """An ISO 8601 timestamp rewritten with ``tz``'s offset (same instant), to the second."""
    if value is None:
        return None
    return _restamp(value, tz)


@functools.lru_cache(maxsize=4096)
def _restamp(value: str, tz: tzinfo) -> str:
    # Memoized: the 3,000 locations of one attempt share a few distinct times (issue 20).
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        return value  # never guess: a naive time is left as it is (the schema refuses it)
    text = isoformat(dt.astimezone(tz))
    assert text is not None
    return text


def in_zone(document: Mapping[str, Any], tz: tzinfo) -> dict[str, Any]:
    """A copy of a snapshot whose timestamps are written in ``tz``.

    Top-level timestamps, and for weather each location's ``fetched_at`` and
    ``current.time``; dates (``daily[].date``) are local calendar days and stay as they are.
    """
    out = dict(document)
    for key in _TOP:
        if isinstance(out.get(key), str):
            out[key] = restamp(out[key], tz)
    data = out.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("locations"), list):
        locations = []
        for loc in data["locations"]:
            loc = dict(loc)
            if isinstance(loc.get("fetched_at"), str):
                loc["fetched_at"] = restamp(loc["fetched_at"], tz)
            cur = loc.get("current")
            if isinstance(cur, Mapping) and isinstance(cur.get("time"), str):
                loc["current"] = {**cur, "time": restamp(cur["time"], tz)}
            locations.append(loc)
        out["data"] = {**data, "locations": locations}
    return out
