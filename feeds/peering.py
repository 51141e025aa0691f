"""Reading a peer instance's snapshot (``kind = "portal-feeds"``) within an attempt.

The request goes through the coordinator's single-request path (politeness, breaker,
conditional requests with nginx's ETag, retries); ``feeds.sources.peer`` validates and
decides what is carried.  With a fallback behind it (the bank itself), the peer gets the
feed's ``primary_share`` of the time left, so an unreachable peer still leaves the bank
its share of the deadline.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from feeds.batching import end_margin
from feeds.sources import peer

if TYPE_CHECKING:
    from feeds.config import FeedConfig, SourceConfig
    from feeds.coordinator import Coordinator, _Got

__all__ = ["fetch_peer"]


async def fetch_peer(coord: Coordinator, feed: FeedConfig, source: SourceConfig, deadline_at: float) -> _Got:
    """One read of a peer's snapshot; raises FeedError/HeldBack when it cannot be used."""
    from feeds.coordinator import _Got

    now_m = coord.clock.monotonic()
    end = deadline_at - end_margin(feed.deadline)
    has_more = feed.sources.index(source) < len(feed.sources) - 1
    until = now_m + (end - now_m) * feed.primary_share if has_more else deadline_at
    spec = peer.build_request(source.url, user_agent=coord.config.user_agent)

    def parse(body: bytes) -> Any:
        return peer.parse(
            body, data_kind=feed.data_kind, max_stale=timedelta(seconds=feed.max_stale), now=coord.clock.now()
        )

    snap: peer.PeerSnapshot = await coord._get_parsed(feed, spec, until, parse)
    return _Got(
        snap.data,
        snap.as_of,
        source,
        snap.fetched_at,
        origin_status=snap.status,
        origin_stale_since=snap.stale_since,
        source_name=snap.source_name,
        source_url=snap.source_url,
    )
