"""The one registry of sources: a source kind (``kind = "..."`` in the configuration) -> the
module that implements the ``Source`` protocol.

Adding a source is one new module in ``feeds/sources/``, its fixtures, and one line in
``REGISTRY`` (docs/sources.md walks through it).  The configuration (which kinds exist,
their data kind, default URL and politeness interval), the coordinator (which module
parses an answer), the request pipeline (whose terms ask to honour ``Expires``) and the
frozen-source rule (how old its own ``as_of`` may be) all find sources here, and nowhere
else.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import datetime
from types import ModuleType
from typing import Any, Protocol

from feeds.models import Location, RequestSpec

__all__ = ["PEER", "REGISTRY", "Source", "by_name", "kinds", "source"]

#: kind -> module.  The order is the order ``check-config`` lists kinds in.
REGISTRY: dict[str, str] = {
    "vietcombank": "feeds.sources.vietcombank",
    "open-meteo": "feeds.sources.open_meteo",
    "met-no": "feeds.sources.met_no",
    "portal-feeds": "feeds.sources.peer",  # another portal-feeds instance (feeds.peering)
}
#: The kind served by another portal-feeds instance: its data kind is the feed's.
PEER = "portal-feeds"


class Source(Protocol):
    """What every (non-peer) source module provides.

    Data: ``KIND`` (the registry key), ``DATA_KIND`` (``"exchange_rates"`` or ``"weather"``:
    which snapshot shape its data takes), ``SOURCE_NAME`` (published as ``source.name``),
    ``DEFAULT_URL``, ``MIN_INTERVAL`` (seconds between two requests to its host, from its
    terms), ``HONOURS_EXPIRES`` (whether its terms ask clients to honour ``Expires``).

    Functions, all pure (no I/O): ``requests`` (what to fetch for these locations),
    ``read`` (bytes -> model, or ``InvalidPayloadError``), ``check`` (its plausibility
    rules: the model against the last good data, or ``RejectedError``) and ``stale_after``
    (its freshness expectation: until when data of a given ``as_of`` is current).
    """

    KIND: str
    DATA_KIND: str | None
    SOURCE_NAME: str
    DEFAULT_URL: str | None
    MIN_INTERVAL: float
    HONOURS_EXPIRES: bool

    def requests(
        self, url: str, locations: Sequence[Location], *, user_agent: str, batch_size: int
    ) -> list[tuple[RequestSpec, tuple[Location, ...]]]: ...

    def read(self, body: bytes, locations: Sequence[Location]) -> Any: ...

    def check(
        self, parsed: Any, *, previous: dict[str, Any] | None, max_change: float, asked: Sequence[str]
    ) -> None: ...

    def stale_after(self, as_of: datetime) -> datetime: ...


def kinds() -> tuple[str, ...]:
    """Every registered kind."""
    return tuple(REGISTRY)


def source(kind: str) -> ModuleType:
    """The module of ``kind``; ``ValueError`` for an unknown kind."""
    try:
        path = REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown source kind {kind!r}") from None
    return importlib.import_module(path)


def by_name(source_name: str) -> ModuleType | None:
    """The module whose ``SOURCE_NAME`` is ``source_name`` (as stored with good data)."""
    for kind in REGISTRY:
        mod = source(kind)
        if source_name == mod.SOURCE_NAME:
            return mod
    return None
