"""The clock seam: logic asks a Clock for the time, never the time module."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["AHEAD_SLACK", "Clock", "FakeClock", "SteppableClock", "SystemClock", "VIETNAM_TZ"]

from datetime import timezone

#: A stored time later than now by more than this was written before a backward step of the
#: wall clock (NTP, a VM restore): no proof of anything.  Times are written truncated to the
#: second, hence the slack.  The one threshold for politeness, freshness, status and check.
AHEAD_SLACK = timedelta(seconds=2)

#: Vietnam has used UTC+7 without daylight saving since 1975.
VIETNAM_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


class Clock(Protocol):
    """What the coordinator needs of time."""

    def now(self) -> datetime:
        """Aware UTC wall-clock time."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait (or pretend to)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        import asyncio  # not at import: the daemon's start republishes before any event loop

        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock for tests: time moves only when told to, or when something sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
        self._mono = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))


class SteppableClock:
    """A clock whose wall time can be stepped (NTP, a VM restore) while monotonic time goes on.

    Wraps another clock (the real one, or a ``FakeClock`` for tests that never sleep):
    ``step(-3600)`` moves ``now()`` an hour back and leaves ``monotonic()`` alone, as a
    real step of the system clock does.
    """

    def __init__(self, base: Clock | None = None) -> None:
        self.base: Clock = base or SystemClock()
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self.base.now() + self.offset

    def monotonic(self) -> float:
        return self.base.monotonic()

    def step(self, seconds: float) -> None:
        """Step the wall clock by ``seconds`` (negative: back)."""
        self.offset += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)
