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


def test_data_stamped_ahead_of_the_clock_is_never_fresh_without_a_new_answer() -> None:
    """Issue 16: after a backward wall-clock step the last good data lies "in the future";
    its real age cannot be told, so a republish or a held-back attempt says ``stale``."""
    from datetime import UTC, datetime, timedelta

    from feeds.freshness import decide

    now = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
    ahead = now + timedelta(hours=1)
    kw = {"max_stale": timedelta(hours=48), "now": now, "fresh_for": timedelta(minutes=30)}
    assert decide(succeeded=False, last_good_at=ahead, was_fresh=True, **kw) == "stale"
    assert decide(succeeded=False, last_good_at=ahead, was_fresh=False, **kw) == "stale"
    assert decide(succeeded=True, last_good_at=ahead, **kw) == "fresh"
    # A second of skew between two clocks is no step.
    assert decide(succeeded=False, last_good_at=now + timedelta(seconds=1), was_fresh=True, **kw) == "fresh"
