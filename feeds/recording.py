"""What one attempt leaves behind besides its snapshot: the feed's health and a log line.

- ``record_health``: the feed's ``health/<feed>`` entry (``feeds.store.Health``): when it was
  tried, how long it took, its outcome (``ok``, ``held_back`` or an error kind) and detail,
  the consecutive failures, the source used, whether a fallback or stale DNS was used.
- ``log_attempt``: logs follow transitions -- one WARNING when a feed starts failing, one
  INFO line when it recovers, an ERROR once when our machine needs an admin (``local``).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

from feeds.config import FeedConfig
from feeds.errors import FeedError, LocalError
from feeds.pipeline import Got, HeldBack
from feeds.sources import registry
from feeds.store import Health, Store

__all__ = ["log_attempt", "outcome_of", "record_health"]

logger = logging.getLogger("feeds.coordinator")  # the same logger name as before the split


def outcome_of(error: FeedError | None, held: HeldBack | None) -> str:
    """``ok``, ``held_back`` or the error's kind."""
    return "ok" if error is None and held is None else (error.kind if error else "held_back")


def record_health(
    store: Store,
    feed: FeedConfig,
    started: datetime,
    duration: float,
    got: Got | None,
    error: FeedError | None,
    held: HeldBack | None,
    status: str,
    next_update_at: datetime,
    stale_hosts: list[str],
) -> None:
    """The attempt in the feed's health entry (``health/<feed>``): outcome, counts, times."""
    key = f"health/{feed.name}"
    with contextlib.ExitStack() as stack:
        # Another process holding the cache lock: record anyway (a per-feed key).
        with contextlib.suppress(LocalError):
            stack.enter_context(store.lock())
        h: Health = store.get(key) or Health(feed=feed.name)
        outcome = outcome_of(error, held)
        attempts = dict(h.attempts)
        attempts[outcome] = attempts.get(outcome, 0) + 1
        failed = error is not None
        h = h.evolve(
            last_attempt_at=started,
            last_attempt_duration_s=round(duration, 3),
            last_success_at=got.fetched_at if got is not None else h.last_success_at,
            outcome=outcome,
            detail=error.detail if error else (held.reason if held else None),
            message=error.message if error else (
                f"held back ({held.reason}), next request allowed in {held.wait:.0f}s" if held else None
            ),
            consecutive_failures=h.consecutive_failures + 1 if failed else (
                h.consecutive_failures if held else 0
            ),
            status=status,
            next_attempt_at=next_update_at,
            source_used=registry.source(got.source.kind).SOURCE_NAME if got else h.source_used,
            fallback_used=bool(got and (got.source != feed.source or got.fallback_locations)),
            stale_dns_used=bool(stale_hosts),
            attempts=attempts,
        )
        store.set(key, h)


def log_attempt(
    feed: FeedConfig, outcome: str, detail: str | None, duration: float, status: str,
    previous: str | None, error: FeedError | None = None,
) -> None:
    """One line per attempt; its level follows transitions (``previous``: the last outcome)."""
    args = (feed.name, outcome, detail or "-", duration, status)
    fmt = "attempt feed=%s kind=%s detail=%s duration_s=%.2f status=%s"
    if outcome == "local" and error is not None:
        # Our machine needs an admin: an ERROR line with what failed, once per change.
        if previous != "local":
            logger.error(fmt + ": %s", *args, error.message)
        else:
            logger.debug(fmt, *args)
    elif outcome not in ("ok", "held_back") and previous in (None, "ok", "held_back"):
        logger.warning(fmt, *args)  # started failing
    elif outcome == "ok" and previous not in (None, "ok", "held_back"):
        logger.info("recovered " + fmt, *args)
    else:
        logger.info(fmt, *args)
