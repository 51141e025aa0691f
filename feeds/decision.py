"""The status of a feed's snapshot after one attempt: a pure function, no clock, no disk.

``decide`` takes everything it needs as values -- whether a request was made (or politeness
held it back, or a warm start republished), whether the attempt failed, the time of the last
good data, the previous snapshot's state, a peer's own status when its copy is published,
the attempt's times and the feed's windows -- and returns the status and ``stale_since``.
``feeds.freshness`` holds the table it follows; this module adds what an attempt adds to it:

- held back, nothing failed (or a republish): data published ``fresh`` stays so while it is
  younger than the feed's ``fresh_for`` window (``Windows.fresh_for``: two intervals);
- a peer's copy is never fresher than its origin, and its ``stale_since`` never later;
- ``stale_since`` is the first failed attempt after the last success: kept while the feed
  stays unfresh, cleared when it is fresh again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from feeds import freshness

if TYPE_CHECKING:
    from feeds.config import FeedConfig

__all__ = ["Decision", "Origin", "Previous", "Windows", "decide", "fresh_for"]


def fresh_for(feed: FeedConfig) -> timedelta:
    """How long data fetched fresh stays fresh when no request could be made: two intervals."""
    return timedelta(seconds=2 * max(feed.every, feed.min_interval))


@dataclass(frozen=True)
class Windows:
    """A feed's time windows: data older than ``max_stale`` is expired; data published fresh
    stays fresh for ``fresh_for`` when no request could be made."""

    max_stale: timedelta
    fresh_for: timedelta

    @classmethod
    def of(cls, feed: FeedConfig) -> Windows:
        return cls(timedelta(seconds=feed.max_stale), fresh_for(feed))


@dataclass(frozen=True)
class Previous:
    """The state the previous snapshot was published with (the store's ``snapshot/<feed>``)."""

    status: str | None = None
    stale_since: datetime | None = None


@dataclass(frozen=True)
class Origin:
    """A peer's copy: the status and ``stale_since`` its origin published it with."""

    status: str | None = None
    stale_since: datetime | None = None


@dataclass(frozen=True)
class Decision:
    status: freshness.Status
    stale_since: datetime | None


def decide(
    *,
    requested: bool,
    failed: bool,
    last_good_at: datetime | None,
    previous: Previous,
    origin: Origin | None,
    started: datetime,
    now: datetime,
    windows: Windows,
) -> Decision:
    """The snapshot's status and ``stale_since``.

    ``requested``: a request was made (False: held back by politeness or an open circuit,
    or a republish without fetching).  ``failed``: the attempt ended with an error (none:
    the data published is the data just fetched, or nothing was asked).  ``last_good_at``:
    the ``fetched_at`` of the data published (None: no data).  ``origin``: given when the
    data published is a peer's copy just fetched.  ``started``: when the attempt began.
    """
    if not requested and not failed:
        # Held back: not a failure, but the status still follows the age.
        status = freshness.decide(
            succeeded=False, last_good_at=last_good_at, max_stale=windows.max_stale, now=now,
            was_fresh=previous.status == "fresh", fresh_for=windows.fresh_for,
        )
    else:
        status = freshness.decide(
            succeeded=not failed, last_good_at=last_good_at, max_stale=windows.max_stale, now=now
        )
    if origin is not None and origin.status == "stale" and status == "fresh":
        status = "stale"  # a peer's copy is never fresher than its origin
    stale_since = (
        None
        if status == "fresh"
        else freshness.next_stale_since(succeeded=False, previous=previous.stale_since, attempt_started=started)
    )
    if origin is not None and origin.stale_since is not None and stale_since is not None:
        stale_since = min(stale_since, origin.stale_since)
    return Decision(status, stale_since)
