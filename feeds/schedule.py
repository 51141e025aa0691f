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
retry after that.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

__all__ = ["MIN_RETRY", "ORIGIN", "GridTrigger", "retry_at"]

#: Where every grid starts (grids of equal interval line up across feeds and restarts).
ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)
#: The shortest wait before retrying a failed attempt (hosts without a min_interval).
MIN_RETRY = 60.0


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
    delay = max(polite_wait, base * 2 ** (failures - 1))
    at = now + timedelta(seconds=delay)
    if next_run is not None and at + timedelta(seconds=min_interval) > next_run:
        return None
    return at
