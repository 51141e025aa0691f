"""The freshness decision, exhaustively."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feeds.freshness import decide, next_stale_since

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
H48 = timedelta(hours=48)


@pytest.mark.parametrize(
    ("succeeded", "age", "expected"),
    [
        (True, None, "fresh"),
        (True, timedelta(hours=100), "fresh"),
        (False, None, "unavailable"),
        (False, timedelta(0), "stale"),
        (False, timedelta(hours=47, minutes=59), "stale"),
        (False, H48, "stale"),  # exactly max_stale is still stale
        (False, H48 + timedelta(seconds=1), "expired"),
        (False, timedelta(days=30), "expired"),
    ],
)
def test_decide(succeeded: bool, age: timedelta | None, expected: str) -> None:
    last = None if age is None else NOW - age
    assert decide(succeeded=succeeded, last_good_at=last, max_stale=H48, now=NOW) == expected


def test_stale_since_is_first_failure_after_success() -> None:
    first = NOW
    assert next_stale_since(succeeded=False, previous=None, attempt_started=first) == first
    later = NOW + timedelta(minutes=15)
    assert next_stale_since(succeeded=False, previous=first, attempt_started=later) == first
    assert next_stale_since(succeeded=True, previous=first, attempt_started=later) is None
