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
from types import ModuleType

__all__ = ["upstream_stale_since"]


def _module_named(source_name: str) -> ModuleType | None:
    from feeds.sources import met_no, open_meteo, vietcombank

    for mod in (vietcombank, open_meteo, met_no):
        if source_name == mod.SOURCE_NAME:
            return mod
    return None


def upstream_stale_since(source_name: str | None, as_of: datetime | None, now: datetime) -> datetime | None:
    """When data with this ``as_of`` from this source stopped being current, or None if it is."""
    if source_name is None or as_of is None:
        return None
    mod = _module_named(source_name)
    if mod is None:
        return None
    limit: datetime = mod.stale_after(as_of)
    return limit if now > limit else None
