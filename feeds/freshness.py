"""Freshness is a pure decision: no clock, no disk.

A snapshot's ``status`` follows from the outcome of the latest attempt and the age of the
last good data (compare hishel's ``allowed_stale``; RFC 5861 ``stale-if-error`` is the
same idea for HTTP caches):

=========================  ==========================================  ===============
latest attempt             last good data                              status
=========================  ==========================================  ===============
succeeded                  (just stored)                               ``fresh``
failed / held back         none ever                                   ``unavailable``
failed / held back         younger than or as old as ``max_stale``     ``stale``
failed / held back         older than ``max_stale``                    ``expired``
=========================  ==========================================  ===============

When no request was made (held back by politeness, or a restart republishing from the
cache), the status is still a function of the data's age: data that was ``fresh`` stays
``fresh`` only while it is younger than ``fresh_for`` (the caller passes two of the feed's
intervals) and never past ``max_stale``; then it is ``stale``, then ``expired``, as if the
attempt had failed.  Whatever kept us from asking, old data never reads as fresh.  Nor does
data stamped ahead of the clock (the wall clock stepped back since it was fetched): its age
cannot be told, so it is ``stale`` until the next successful attempt.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from feeds.clock import AHEAD_SLACK

__all__ = ["STATUSES", "Status", "decide", "next_stale_since"]

Status = Literal["fresh", "stale", "expired", "unavailable"]
STATUSES: tuple[Status, ...] = ("fresh", "stale", "expired", "unavailable")


def decide(
    *,
    succeeded: bool,
    last_good_at: datetime | None,
    max_stale: timedelta,
    now: datetime,
    was_fresh: bool = False,
    fresh_for: timedelta | None = None,
) -> Status:
    """Return the status of a snapshot after an attempt.

    ``was_fresh`` and ``fresh_for`` apply when no request was made: data published ``fresh``
    stays so while its age is at most ``fresh_for`` (and ``max_stale``).
    """
    if succeeded:
        return "fresh"
    if last_good_at is None:
        return "unavailable"
    age = now - last_good_at
    if age > max_stale:
        return "expired"
    if age < -AHEAD_SLACK:
        # Stamped ahead of the clock: the wall clock was stepped back since (NTP, a VM
        # restore).  How old the data really is cannot be told, so it is not called fresh.
        return "stale"
    if was_fresh and fresh_for is not None and age <= fresh_for:
        return "fresh"
    return "stale"


def next_stale_since(
    *, succeeded: bool, previous: datetime | None, attempt_started: datetime
) -> datetime | None:
    """Return ``stale_since``: the first failed attempt after the last success, else None."""
    if succeeded:
        return None
    return previous if previous is not None else attempt_started
