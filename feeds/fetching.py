"""Which strategy fetches a feed, and the simplest one: a single request (rates).

``fetch_feed`` walks the feed's sources in order within the attempt's deadline:

- a peer instance's snapshot (``kind = "portal-feeds"``): ``feeds.peering.fetch_peer``, then
  the sources behind it when the peer cannot be used;
- weather: every remaining source at once, in batches with per-location failover
  (``feeds.batching.fetch_weather``) -- one call, whatever it answers;
- rates: one request per source (``fetch_single``), the next source when one fails.

Every strategy works on the ``feeds.attempt.Attempt`` it is handed; none knows the
coordinator.  Returns ``Got`` or raises the first ``FeedError`` (else ``HeldBack``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from feeds import bounds, trust
from feeds.batching import HostLimits, fetch_weather
from feeds.config import PEER_KIND, SourceConfig
from feeds.errors import FeedError, RejectedError
from feeds.peering import fetch_peer
from feeds.pipeline import Got, HeldBack
from feeds.sources import registry

if TYPE_CHECKING:
    from feeds.attempt import Attempt

__all__ = ["fetch_feed", "fetch_single"]


async def fetch_feed(attempt: Attempt, limits: HostLimits) -> Got:
    """The feed's data from the first of its sources that answers (see the module docstring)."""
    feed = attempt.feed
    errors: list[FeedError] = []
    held: HeldBack | None = None
    for i, source in enumerate(feed.sources):
        try:
            if source.kind == PEER_KIND:
                # Another instance's snapshot (feeds.peering); then the sources behind it.
                return await fetch_peer(attempt, source)
            if feed.data_kind == "weather":
                # Every remaining source, per location, concurrently (feeds.batching).
                rest = tuple(s for s in feed.sources[i:] if s.kind != PEER_KIND)
                return await fetch_weather(attempt, limits, rest)
            return await fetch_single(attempt, source)
        except HeldBack as hb:
            held = held or hb
        except FeedError as exc:
            errors.append(exc)
        if attempt.clock.monotonic() >= attempt.deadline_at or (
            feed.data_kind == "weather" and source.kind != PEER_KIND
        ):
            break
    if errors:
        raise errors[0]
    assert held is not None
    raise held


async def fetch_single(attempt: Attempt, source: SourceConfig) -> Got:
    """One request to ``source`` for the whole table (rates), checked against the last good one."""
    feed, clock, store = attempt.feed, attempt.clock, attempt.store
    mod = registry.source(source.kind)
    ((spec, _),) = mod.requests(
        source.url, (), user_agent=attempt.config.user_agent, batch_size=feed.batch_size
    )
    previous = attempt.load_good()

    def parse(body: bytes) -> Any:
        rates = mod.read(body, ())
        # The bank's date: no later than now + 1 day (the parser bounds the rest).
        bounds.check_time(rates.as_of, clock.now(), "the table's DateTime")
        try:
            mod.check(
                rates,
                previous=previous.data if previous and previous.source_name == mod.SOURCE_NAME else None,
                max_change=feed.max_change,
                asked=(),
            )
        except RejectedError as exc:
            # The recovery rule: the same move in enough answers over enough time is real.
            if exc.detail != "moved_too_far" or not trust.confirm_move(
                store, feed.name, rates, clock.now(), feed.max_change
            ):
                raise
        else:
            trust.clear_move(store, feed.name)
        trust.update(store, feed.name, dropped=list(rates.dropped) or None)
        return rates

    rates = await attempt.get_parsed(spec, attempt.deadline_at, parse)
    return Got(rates.to_data(), rates.as_of, source, clock.now())
