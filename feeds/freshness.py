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

An attempt held back by politeness (nothing was asked of the upstream) keeps the status the
data already had: data still fresh by the feed's own schedule stays ``fresh``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

__all__ = ["STATUSES", "Status", "decide", "next_stale_since"]

Status = Literal["fresh", "stale", "expired", "unavailable"]
STATUSES: tuple[Status, ...] = ("fresh", "stale", "expired", "unavailable")


def decide(
    *,
    succeeded: bool,
    last_good_at: datetime | None,
    max_stale: timedelta,
    now: datetime,
) -> Status:
    """Return the status of a snapshot after an attempt."""
    if succeeded:
        return "fresh"
    if last_good_at is None:
        return "unavailable"
    if now - last_good_at > max_stale:
        return "expired"
    return "stale"


def next_stale_since(
    *, succeeded: bool, previous: datetime | None, attempt_started: datetime
) -> datetime | None:
    """Return ``stale_since``: the first failed attempt after the last success, else None."""
    if succeeded:
        return None
    return previous if previous is not None else attempt_started
