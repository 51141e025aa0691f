"""A success of a closed breaker with no failure counted changes nothing, and takes no lock:
each of a 3,000-location attempt's 30 requests took the cross-process cache lock for it, on
the event loop (issue 20).  Every other result still goes through the lock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from feeds.politeness import BreakerState, HostGuard
from feeds.store import MemoryStore


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.locks = 0

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.locks += 1
        with super().lock():
            yield


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_success_of_a_quiet_breaker_takes_no_lock() -> None:
    store = CountingStore()
    guard = HostGuard(store, breaker_threshold=2)
    assert guard.record_result("h", True, NOW) == BreakerState()
    assert store.locks == 0
    # A failure is counted under the lock; the success after it resets the count, locked too.
    assert guard.record_result("h", False, NOW, "timeout").failures == 1
    assert guard.record_result("h", True, NOW) == BreakerState()
    assert store.locks == 2
    assert guard.breaker("h") == BreakerState()
    assert guard.record_result("h", True, NOW) == BreakerState()
    assert store.locks == 2


def test_success_closes_an_open_breaker_under_the_lock() -> None:
    store = CountingStore()
    guard = HostGuard(store, breaker_threshold=1, breaker_cooldown=60)
    assert guard.record_result("h", False, NOW, "dns").state == "open"
    later = NOW + timedelta(seconds=61)
    assert guard.breaker("h", later).state == "half_open"
    assert guard.record_result("h", True, later) == BreakerState()
    assert guard.breaker("h", later) == BreakerState()
    assert store.locks == 2
