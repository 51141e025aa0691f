"""What portal-feeds remembers about how far one feed's upstream can be trusted.

One store entry per feed, ``upstream/<feed>`` (a dict), read by ``portal-feeds status``:

- ``move_pending`` / ``move_accepted``: the recovery rule for the relative sanity check.
  A rate table that moved more than ``max_change`` from the last good one is rejected
  (``rejected/moved_too_far``) -- unless the same move is seen in ``CONFIRMATIONS``
  consecutive answers spanning at least ``CONFIRM_SPAN``: then it is real (a devaluation,
  or a bad first table being corrected) and is accepted, logged at WARNING and shown by
  ``status``.  "The same" means within ``max_change`` of the first such answer; a table
  that passes the ordinary check clears the pending move.  Absolute bounds
  (``feeds.sources.currencies``) are never waived: they are what keeps a wrong first table
  out in the first place.
- ``dropped``: currency codes outside ISO 4217 that the last answer carried (dropped).
- ``dropped_locations``: a peer's locations this instance does not configure (dropped from
  the last copy taken; ``feeds.peering``).
- ``upstream_stale_since``: see ``feeds.frozen``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from feeds.errors import RejectedError
from feeds.models import ExchangeRates
from feeds.store import Store
from feeds.validate import moved_too_far

__all__ = ["CONFIRMATIONS", "CONFIRM_SPAN", "check_move", "clear_move", "confirm_move", "read", "update"]

logger = logging.getLogger(__name__)

#: Consecutive answers showing the same move before it is believed...
CONFIRMATIONS = 3
#: ...and the least time between the first and the last of them.
CONFIRM_SPAN = timedelta(minutes=30)


def _key(feed: str) -> str:
    return f"upstream/{feed}"


def read(store: Store, feed: str) -> dict[str, Any]:
    """The feed's entry (empty when nothing was recorded)."""
    value = store.get(_key(feed))
    return dict(value) if isinstance(value, dict) else {}


def update(store: Store, feed: str, **changes: Any) -> None:
    """Set fields of the feed's entry (None removes one)."""
    with store.lock():
        entry = read(store, feed)
        for k, v in changes.items():
            if v is None:
                entry.pop(k, None)
            else:
                entry[k] = v
        store.set(_key(feed), entry)


def confirm_move(store: Store, feed: str, rates: ExchangeRates, now: datetime, max_change: float) -> bool:
    """Record one answer that moved too far; True when the move is now confirmed (accept it)."""
    pending = read(store, feed).get("move_pending")
    same = isinstance(pending, dict) and moved_too_far(rates, pending.get("table") or {}, max_change) is None
    if same:
        assert isinstance(pending, dict)
        count = int(pending.get("count", 0)) + 1
        since: datetime = pending["since"]
        table = pending["table"]
    else:
        count, since, table = 1, now, rates.to_data()
    if count >= CONFIRMATIONS and now - since >= CONFIRM_SPAN:
        update(
            store,
            feed,
            move_pending=None,
            move_accepted={"at": now, "since": since, "answers": count},
        )
        logger.warning(
            "accepted a move beyond max_change feed=%s answers=%d since=%s", feed, count, since.isoformat()
        )
        return True
    update(store, feed, move_pending={"since": since, "count": count, "table": table})
    return False


def clear_move(store: Store, feed: str) -> None:
    """An ordinary table was accepted: a pending move was a glitch, forget it."""
    if "move_pending" in read(store, feed):
        update(store, feed, move_pending=None)


def check_move(
    store: Store, feed: str, rates: ExchangeRates, previous: Any, now: datetime, max_change: float
) -> None:
    """The relative rule with its recovery, for a table that passed every other check:
    ``rejected/moved_too_far`` unless the move is confirmed; an ordinary table clears a
    pending move.  ``previous`` is the last good data (None: nothing to compare with)."""
    moved = moved_too_far(rates, previous, max_change) if isinstance(previous, dict) else None
    if moved is None:
        clear_move(store, feed)
    elif not confirm_move(store, feed, rates, now, max_change):
        raise RejectedError(f"{moved}: moved too far", detail="moved_too_far")
