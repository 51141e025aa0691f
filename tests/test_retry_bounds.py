"""Issue 16, reproduction 5 (first road): ``retry_at`` after many consecutive failures.

``base * 2 ** (failures - 1)`` seconds in a ``timedelta`` overflowed after ~31 failures (an
8-hour outage at 15 minutes) and raised out of the job.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.schedule import MAX_RETRY_DELAY, MIN_RETRY, retry_at

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_an_all_day_outage_never_overflows() -> None:
    hour = NOW + timedelta(hours=1)
    for failures in (30, 31, 32, 64, 1000, 10**9):
        # The next grid run is near: the grid run is the retry.
        assert retry_at(now=NOW, failures=failures, polite_wait=0, min_interval=300, next_run=hour) is None
        # No next run known: a retry, at most a day away.
        at = retry_at(now=NOW, failures=failures, polite_wait=0, min_interval=300, next_run=None)
        assert at is not None and NOW < at <= NOW + timedelta(seconds=MAX_RETRY_DELAY)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    failures=st.integers(min_value=-5, max_value=10**12),
    polite_wait=st.floats(allow_nan=True, allow_infinity=True),
    min_interval=st.floats(min_value=0, max_value=7 * 86400),
    next_in=st.one_of(st.none(), st.floats(min_value=0, max_value=365 * 86400)),
)
def test_retry_at_is_total_and_bounded(
    failures: int, polite_wait: float, min_interval: float, next_in: float | None
) -> None:
    next_run = None if next_in is None else NOW + timedelta(seconds=next_in)
    at = retry_at(now=NOW, failures=failures, polite_wait=polite_wait, min_interval=min_interval, next_run=next_run)
    if failures < 1:
        assert at is None
        return
    if at is None:
        return
    assert NOW + timedelta(seconds=min(max(min_interval, MIN_RETRY), MAX_RETRY_DELAY)) <= at
    assert at <= NOW + timedelta(seconds=MAX_RETRY_DELAY)
    if next_run is not None:
        assert at <= next_run  # never beyond the next grid run
    if math.isfinite(polite_wait) and 0 <= polite_wait <= MAX_RETRY_DELAY:
        assert at >= NOW + timedelta(seconds=polite_wait)  # polite
