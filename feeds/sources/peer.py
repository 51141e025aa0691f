"""A peer source (``kind = "portal-feeds"``): another instance's published snapshot over HTTP.

For tiers (a province's IT centre -> department portals on other machines) and warm
standbys, with nothing in between but HTTP and nginx caching.  The URL is the other
instance's ``<feed>.json`` as its nginx serves it.

What is taken, and what is not:

- the body must be a snapshot valid against the shipped schema (with the ``data`` shapes
  closed, as for recovery) and of the feed's data kind; anything else is
  ``invalid_payload`` (detail ``schema``, ``not_json``) or ``rejected`` (``peer_kind``);
- its ``data``, ``as_of`` and ``fetched_at`` are carried as they are: ``fetched_at`` is the
  origin's (never the time of the copy), weather locations keep their own;
- it is never reported fresher than the origin did: a ``stale`` origin stays ``stale`` (with
  the origin's ``stale_since`` when earlier), and an origin that is ``expired`` or
  ``unavailable`` is refused (``rejected``, ``peer_expired`` / ``peer_unavailable``) so the
  feed falls back to its next source (the bank itself);
- an origin that stopped publishing (its daemon died while its nginx still serves the last
  file, still saying ``fresh``) is noticed from ``next_update_at``: more than
  ``OVERDUE_AFTER`` past it, the copy is refused (``peer_overdue``) and the feed falls back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from feeds.bounds import check_time, static_time
from feeds.errors import InvalidPayloadError, RejectedError
from feeds.models import RequestSpec

__all__ = ["DEFAULT_URL", "HONOURS_EXPIRES", "MIN_INTERVAL", "DATA_KIND", "KIND", "OVERDUE_AFTER", "SOURCE_NAME", "PeerSnapshot", "build_request", "parse"]

KIND = "portal-feeds"
DATA_KIND = None  # whatever the peer's feed is (the feed's data_kind)
SOURCE_NAME = "portal-feeds peer"
#: How long past the origin's announced next update its snapshot is still taken.
OVERDUE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class PeerSnapshot:
    """What is carried over from the origin's snapshot."""

    data: dict[str, Any]
    status: str
    fetched_at: datetime
    as_of: datetime | None
    stale_since: datetime | None
    source_name: str
    source_url: str


def build_request(url: str, *, user_agent: str | None = None) -> RequestSpec:
    headers: tuple[tuple[str, str], ...] = (("Accept", "application/json"),)
    if user_agent:
        headers += (("User-Agent", user_agent),)
    return RequestSpec(url=url, headers=headers)


def _dt(text: Any) -> datetime | None:
    """A time of the peer's snapshot (schema-valid), within 2000 .. 2200 (``bad_time``)."""
    if not isinstance(text, str):
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidPayloadError("a time of the peer's snapshot is not ISO 8601", detail="bad_time") from None
    return static_time(dt)


def parse(body: bytes, *, data_kind: str, max_stale: timedelta, now: datetime) -> PeerSnapshot:
    """Validate a peer's snapshot and return what is carried, or raise a FeedError."""
    from feeds.recovery import _validator

    try:
        doc = json.loads(body.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidPayloadError("the peer's answer is not JSON", detail="not_json") from None
    if not isinstance(doc, dict):
        raise InvalidPayloadError("the peer's answer is not a snapshot", detail="schema")
    try:
        valid = _validator().is_valid(doc)
    except Exception:  # a validator failure refuses, it never takes the attempt down
        valid = False
    if not valid:
        raise InvalidPayloadError("the peer's snapshot does not match the schema", detail="schema")
    if doc["kind"] != data_kind:
        raise RejectedError("the peer's snapshot is of another kind", detail="peer_kind")
    status = doc["status"]
    if status == "unavailable" or doc["data"] is None or doc["fetched_at"] is None:
        raise RejectedError("the peer has no data", detail="peer_unavailable")
    fetched_at = _dt(doc["fetched_at"])
    assert fetched_at is not None
    # No later than now + 1 day (feeds.bounds): a future fetched_at would never age.
    check_time(fetched_at, now, "the peer's fetched_at")
    if status == "expired" or now - fetched_at > max_stale:
        raise RejectedError("the peer's data is expired", detail="peer_expired")
    next_update = _dt(doc.get("next_update_at"))
    if next_update is not None and now > next_update + OVERDUE_AFTER:
        raise RejectedError("the peer stopped publishing", detail="peer_overdue")
    source = doc.get("source") or {}
    return PeerSnapshot(
        data=doc["data"],
        status=status,
        fetched_at=fetched_at,
        as_of=_dt(doc["as_of"]),
        stale_since=_dt(doc.get("stale_since")),
        source_name=str(source.get("name") or SOURCE_NAME),
        source_url=str(source.get("url") or ""),
    )


# -- registry data (feeds.sources.registry); a peer is fetched by feeds.peering ----------
DEFAULT_URL = None
MIN_INTERVAL = 0.0
HONOURS_EXPIRES = False
