"""Frozen-source detection: a fetch can succeed while the upstream's own data does not move.

Each source declares how old its own ``as_of`` may be (``stale_after(as_of)``: the moment
past which data of that ``as_of`` is no longer current):

- Vietcombank (``DateTime``): until the end of the first Vietnamese business day after
  the table's day (weekends and public holidays allowed for, ``feeds.sources.vn_calendar``).
- Open-Meteo (current conditions' time): 3 hours.
- MET Norway (``updated_at``, the model run): 12 hours.

A snapshot whose ``as_of`` is past that carries ``upstream_stale_since`` (that moment);
``status`` stays what the fetch decides (``fresh`` = fetched on time), and
``portal-feeds status``/``check`` show a WARNING.  No ``as_of``: nothing is claimed.
"""

from __future__ import annotations

from datetime import datetime

from feeds.sources.registry import by_name

__all__ = ["upstream_stale_since"]


def upstream_stale_since(source_name: str | None, as_of: datetime | None, now: datetime) -> datetime | None:
    """When data with this ``as_of`` from this source stopped being current, or None if it is."""
    if source_name is None or as_of is None:
        return None
    mod = by_name(source_name)
    stale_after = getattr(mod, "stale_after", None)  # a peer relays another instance's
    if stale_after is None:
        return None
    limit: datetime = stale_after(as_of)
    return limit if now > limit else None
