"""Reading a peer instance's snapshot (``kind = "portal-feeds"``) within an attempt.

The request goes through the attempt's one-request path (``feeds.attempt.Attempt``:
politeness, breaker, conditional requests with nginx's ETag, retries); ``feeds.sources.peer`` validates and
decides what is carried.  With a fallback behind it (the bank itself), the peer gets the
feed's ``primary_share`` of the time left, so an unreachable peer still leaves the bank
its share of the deadline.

Within the parse step (so that a refusal is the attempt's failure, and the fallback is
asked in the same attempt): a peer's rate table also passes the relative rule against our
last good table (``moved_too_far``, with ``feeds.trust``'s recovery rule, shared with the
bank); the codes and locations dropped are recorded in the feed's ``feeds.trust`` entry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from feeds import trust
from feeds.batching import end_margin
from feeds.decision import fresh_for
from feeds.pipeline import Got
from feeds.sources import peer

if TYPE_CHECKING:
    from feeds.attempt import Attempt
    from feeds.config import SourceConfig

__all__ = ["fetch_peer"]


async def fetch_peer(attempt: Attempt, source: SourceConfig) -> Got:
    """One read of a peer's snapshot; raises FeedError/HeldBack when it cannot be used."""
    feed, clock, store = attempt.feed, attempt.clock, attempt.store
    now_m = clock.monotonic()
    end = attempt.deadline_at - end_margin(feed.deadline)
    has_more = feed.sources.index(source) < len(feed.sources) - 1
    until = now_m + (end - now_m) * feed.primary_share if has_more else attempt.deadline_at
    spec = peer.build_request(source.url, user_agent=attempt.config.user_agent)
    previous = attempt.load_good() if feed.data_kind == "exchange_rates" else None
    window = fresh_for(feed)  # our own freshness window: data older is stale

    def parse(body: bytes) -> Any:
        now = clock.now()
        snap = peer.parse(
            body, data_kind=feed.data_kind, max_stale=timedelta(seconds=feed.max_stale), now=now,
            fresh_for=window, locations=feed.locations,
        )
        if snap.rates is not None:
            trust.check_move(
                store, feed.name, snap.rates, previous.data if previous else None, now, feed.max_change
            )
            trust.update(store, feed.name, dropped=list(snap.rates.dropped) or None)
        else:
            trust.update(store, feed.name, dropped_locations=list(snap.dropped_locations[:50]) or None)
        return snap

    snap: peer.PeerSnapshot = await attempt.get_parsed(spec, until, parse)
    return Got(
        snap.data,
        snap.as_of,
        source,
        snap.fetched_at,
        origin_status=snap.status,
        origin_stale_since=snap.stale_since,
        source_name=snap.source_name,
        source_url=snap.source_url,
    )
