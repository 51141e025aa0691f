"""One attempt at one feed: what the fetch strategies are handed, and all they use.

The coordinator makes one ``Attempt`` per refresh (``feeds.coordinator``) and hands it to the
strategy the feed's sources call for (``feeds.fetching``): one request (rates), batches with
per-location failover (``feeds.batching``), a peer's copy (``feeds.peering``).  The attempt
carries its own state -- the feed, when it started, its deadline, whether it is forced
(``fetch --force``), the failures met so far -- and a small public interface over the
shared parts: the settings, the clock, the store, the last good data and the one-request
path (``feeds.pipeline``).  Concurrent attempts never share state: each has its own errors
and forced flag, and no strategy reaches into the coordinator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from feeds.errors import FeedError

if TYPE_CHECKING:
    from feeds.clock import Clock
    from feeds.config import Config, FeedConfig
    from feeds.models import RequestSpec
    from feeds.pipeline import RequestPipeline
    from feeds.store import GoodData, Store

__all__ = ["Attempt"]


@dataclass(eq=False)
class Attempt:
    """One refresh of ``feed``: created when it starts, handed to the fetch strategies."""

    feed: FeedConfig
    #: The request pipeline every request goes through (politeness, breaker, retries, ...).
    pipeline: RequestPipeline
    #: The feed's last good data (recovered from the published snapshot when the store has none).
    last_good: Callable[[FeedConfig], GoodData | None]
    #: When the attempt started: wall clock (health, ``stale_since``) and monotonic.
    started: datetime
    t0: float
    #: The monotonic time by which the attempt must end (``t0 + feed.deadline``).
    deadline_at: float
    #: ``fetch --force``: one request now, whatever politeness or the breaker say.
    forced: bool = False
    #: Every failure met so far, in order (the last one says why a cut attempt failed).
    errors: list[FeedError] = field(default_factory=list)

    @property
    def config(self) -> Config:
        return self.pipeline.config

    @property
    def clock(self) -> Clock:
        return self.pipeline.clock

    @property
    def store(self) -> Store:
        return self.pipeline.store

    def load_good(self) -> GoodData | None:
        """The feed's last good data, or None."""
        return self.last_good(self.feed)

    async def get_parsed(
        self,
        spec: RequestSpec,
        until: float,
        parse: Callable[[bytes], Any],
        *,
        max_attempts: int | None = None,
        received: Callable[[], None] | None = None,
    ) -> Any:
        """One request of this attempt through the pipeline, by ``until`` (monotonic): the
        parsed answer, or ``FeedError``/``HeldBack``.  Failures are added to ``errors``.

        ``max_attempts`` bounds the retries of this request (``feeds.batching``: a primary
        with a fallback behind it tries twice, then its locations go to the fallback).
        ``received`` is called on the event loop once the body is in, before it is parsed.
        """
        return await self.pipeline.get_parsed(
            self.feed, spec, until, parse, forced=self.forced, errors=self.errors,
            max_attempts=max_attempts, received=received,
        )
