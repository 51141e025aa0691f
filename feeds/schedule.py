"""When attempts run: a grid that jitter cannot push, and the retry after a failed attempt.

``GridTrigger`` (an APScheduler 3.x trigger): run *k* of a feed with ``every = E`` starts at
``origin + k*E + jitter(k)``, with ``0 <= jitter(k) < J`` (J = a tenth of the interval, at
most two minutes, as before).  The next run is found from the *grid point* of the previous
one, never from its jittered time, so jitter spreads runs off the exact minute without
accumulating: ``every = "15m"`` makes 96 runs a day, not ~91 (APScheduler's
``IntervalTrigger`` adds each run's jitter to the next).  The origin is the Unix epoch, so
the grid survives restarts; jitter(k) is drawn from a generator seeded by the feed's name
and k, so it is the same for the same run whoever asks.

``retry_at``: after a failed attempt the feed is tried again at the earliest polite moment
(the host's ``min_interval`` after the last request: 5 minutes for Vietcombank; at least
``MIN_RETRY``), then with the delay doubling per consecutive failure -- but only while the
retry lands at least ``min_interval`` before the next grid run, which is itself the next
retry after that.  The doubling stops at ``MAX_DOUBLINGS`` and the delay at
``MAX_RETRY_DELAY`` (a day-long outage used to overflow ``timedelta`` after ~31 failures).

``stall_limit``: how long after an attempt the next one must have started, from the trigger
itself (the second planned run after it, plus the deadline: about ``2 x every + deadline``
on a grid; for ``at`` feeds the cron expression's own gaps).  The daemon's liveness check.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from feeds.clock import VIETNAM_TZ

__all__ = [
    "MAX_DOUBLINGS",
    "MAX_RETRY_DELAY",
    "MIN_RETRY",
    "ORIGIN",
    "GridTrigger",
    "Scheduled",
    "build_trigger",
    "cron_trigger",
    "crontab_day_of_week",
    "retry_at",
    "stall_limit",
    "vietnam_zone",
]

#: Where every grid starts (grids of equal interval line up across feeds and restarts).
ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)
#: The shortest wait before retrying a failed attempt (hosts without a min_interval).
MIN_RETRY = 60.0
#: The retry delay doubles at most this many times (then stays): 2**16 minutes is 45 days.
MAX_DOUBLINGS = 16
#: No retry is planned further away than this (the grid's own runs come before it anyway).
MAX_RETRY_DELAY = 86400.0


class GridTrigger(BaseTrigger):  # type: ignore[misc]
    """Fire at ``ORIGIN + k*interval + jitter(k)``; see the module docstring."""

    def __init__(self, seconds: float, jitter: float = 0.0, seed: str = "") -> None:
        if seconds <= 0:
            raise ValueError("interval must be positive")
        self.interval = timedelta(seconds=seconds)
        self.seconds = float(seconds)
        # Whole microseconds: grid arithmetic is exact (floats drift at 1.7e9 seconds).
        self._us = max(1, round(seconds * 1_000_000))
        # Jitter below the interval keeps every run inside its own grid cell.
        self.jitter = min(float(jitter), self.seconds * 0.5)
        self.seed = seed

    def jitter_of(self, k: int) -> float:
        """The jitter of grid point ``k`` (same answer every time it is asked)."""
        if self.jitter <= 0:
            return 0.0
        return random.Random(f"{self.seed}:{k}").uniform(0.0, self.jitter)

    def fire_time(self, k: int) -> datetime:
        jitter_us = min(self._us - 1, int(self.jitter_of(k) * 1_000_000))
        return ORIGIN + timedelta(microseconds=k * self._us + jitter_us)

    def index_of(self, when: datetime) -> int:
        """The grid cell ``when`` falls in."""
        return (when - ORIGIN) // timedelta(microseconds=1) // self._us

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        if previous_fire_time is not None:
            k = self.index_of(previous_fire_time) + 1
        else:
            k = self.index_of(now)
            if self.fire_time(k) < now:
                k += 1
        fire = self.fire_time(k)
        return fire.astimezone(now.tzinfo) if now.tzinfo else fire

    def __str__(self) -> str:
        return f"grid[every={self.seconds:g}s, jitter<{self.jitter:g}s]"

    def __repr__(self) -> str:
        return f"<GridTrigger (interval={self.interval!r}, jitter={self.jitter:g}, seed={self.seed!r})>"


def retry_at(
    *,
    now: datetime,
    failures: int,
    polite_wait: float,
    min_interval: float,
    next_run: datetime | None,
) -> datetime | None:
    """When to retry after ``failures`` consecutive failed attempts, or None (the next run will).

    ``polite_wait``: seconds until the host may be asked again (the politeness gate).
    """
    if failures < 1:
        return None
    base = max(min_interval, MIN_RETRY)
    backoff = base * 2.0 ** min(failures - 1, MAX_DOUBLINGS)
    polite = polite_wait if math.isfinite(polite_wait) else MAX_RETRY_DELAY
    delay = min(max(polite, backoff), MAX_RETRY_DELAY)
    at = now + timedelta(seconds=delay)
    if next_run is not None and at + timedelta(seconds=min(min_interval, MAX_RETRY_DELAY)) > next_run:
        return None
    return at


def stall_limit(trigger: BaseTrigger, now: datetime, deadline: float) -> float | None:
    """Seconds after an attempt at ``now`` by which the next attempt must have started.

    The trigger's second planned run after ``now`` (the first may be moments away), plus the
    attempt's ``deadline``: at most ``2 x every + jitter + deadline`` on a grid.  None when
    the trigger plans nothing more.
    """
    first = trigger.get_next_fire_time(None, now)
    if first is None:
        return None
    second = trigger.get_next_fire_time(first, first)
    if second is None or second <= first:
        return None
    return float((second - now).total_seconds()) + max(0.0, deadline)


# -- the feed's trigger (here, not in feeds.daemon: feeds.config validates `at` with it) --
def vietnam_zone() -> Any:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Ho_Chi_Minh")
    except Exception:  # no tz database: Vietnam has no DST, a fixed offset is exact
        return VIETNAM_TZ


_DOW = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_day_of_week(field: str) -> str:
    """Translate a crontab day-of-week field (0/7 = Sunday) into APScheduler 3's terms.

    APScheduler 3 numbers days from Monday = 0, so its ``from_crontab("... 1-6")`` would run
    Tuesday to Sunday instead of Monday to Saturday.  Days are expanded to names.
    """
    if field == "*":
        return "*"
    days: list[int] = []
    for part in field.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if rng == "*":
            lo, hi = 0, 6
        elif "-" in rng:
            a, b = rng.split("-", 1)
            lo, hi = int(a), int(b)
        else:
            lo = hi = int(rng)
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi):
            raise ValueError(f"bad day of week {part!r}")
        days.extend(range(lo, hi + 1, step))
    names = list(dict.fromkeys(_DOW[d] for d in days))
    return ",".join(names)


class Scheduled(Protocol):
    """What a schedule needs of a feed (``feeds.config.FeedConfig``; the configuration imports
    this module to check ``at``, never the reverse)."""

    @property
    def name(self) -> str: ...

    @property
    def every(self) -> float: ...

    @property
    def at(self) -> str | None: ...


def cron_trigger(expr: str) -> CronTrigger:
    """A five-field crontab expression in Vietnam time; ``ValueError``/``TypeError`` if invalid."""
    minute, hour, dom, month, dow = expr.split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=dom,
        month=month,
        day_of_week=crontab_day_of_week(dow),
        timezone=vietnam_zone(),
    )


def build_trigger(feed: Scheduled) -> GridTrigger | CronTrigger:
    """The feed's schedule: ``at`` (cron, Vietnam time) or ``every`` with jitter."""
    if feed.at:
        return cron_trigger(feed.at)
    # Jitter spreads the feeds (and the portals running us) off the exact minute, as MET
    # Norway's terms ask; a tenth of the interval, at most two minutes.
    # On a fixed grid (feeds.schedule): jitter never accumulates from one run to the next.
    return GridTrigger(feed.every, jitter=min(feed.every * 0.1, 120.0), seed=feed.name)
