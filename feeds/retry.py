"""Retry policy: which failures are tried again within an attempt, and how long to wait.

Built on tenacity.  Within the feed's deadline an attempt is retried with full-jitter
exponential backoff (AWS architecture blog, "Exponential Backoff And Jitter") when the
failure may pass: ``dns`` temporary/timeout, ``connect``, ``timeout``, HTTP 5xx, 408, 429.
Not retried: other 4xx, ``invalid_payload``, ``rejected``, ``tls``, and a second
``nxdomain`` in a row (one NXDOMAIN may be a resolver's hiccup, two are an answer).

``Retry-After`` (RFC 9110 §10.2.3) lengthens the wait, never shortens it: a retry waits
``max(Retry-After, backoff)``, so ``Retry-After: 0``, a past date or a negative value leave
the backoff as it is.  If the wait is longer than the time left before the deadline, we
stop and the politeness gate makes the next scheduled run wait for it instead.  Every wait
goes through the injected clock, and no retry starts if its wait would overrun the deadline.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from feeds.clock import Clock
from feeds.errors import DnsError, FeedError, HttpStatusError

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["RetryPolicy", "is_retryable"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


def is_retryable(exc: BaseException, previous: BaseException | None) -> bool:
    """Decide whether to try again after ``exc`` (``previous``: the failure before it)."""
    if not isinstance(exc, FeedError):
        return False
    if isinstance(exc, DnsError) and exc.detail == "nxdomain":
        return not (isinstance(previous, DnsError) and previous.detail == "nxdomain")
    return bool(exc.retryable)


class RetryPolicy:
    """Full-jitter exponential backoff bounded by a deadline on the injected clock."""

    def __init__(
        self,
        clock: Clock,
        *,
        base: float = 0.5,
        cap: float = 8.0,
        max_attempts: int = 6,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.base = base
        self.cap = cap
        self.max_attempts = max_attempts
        self.rng = rng or random.Random()

    def backoff(self, attempt_number: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(n-1))]."""
        return self.rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt_number - 1)))

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        deadline_at: float,
        feed: str = "",
        max_attempts: int | None = None,
    ) -> T:
        """Run ``fn`` until it succeeds, a failure is final, or the deadline would pass.

        ``max_attempts`` overrides the policy's bound for this call (1 = no retry, as for
        the circuit breaker's half-open probe).
        """
        from tenacity import AsyncRetrying  # at the first request, not at the daemon's start

        failures: list[BaseException] = []
        limit = self.max_attempts if max_attempts is None else max_attempts

        def _retry(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if exc is None:
                return False
            previous = failures[-1] if failures else None
            failures.append(exc)
            return is_retryable(exc, previous)

        def _wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            backoff = self.backoff(state.attempt_number)
            if isinstance(exc, HttpStatusError) and exc.retry_after is not None:
                # A floor, never a shortcut: ``Retry-After: 0`` or a past date once made six
                # requests 2-4 ms apart.  The backoff is drawn either way (same sequence).
                return max(exc.retry_after, backoff)
            return backoff

        def _stop(state: RetryCallState) -> bool:
            if state.attempt_number >= limit:
                return True
            return self.clock.monotonic() + (state.upcoming_sleep or 0.0) >= deadline_at

        def _before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            kind = exc.kind if isinstance(exc, FeedError) else "unknown"
            detail = exc.detail if isinstance(exc, FeedError) else None
            logger.debug(
                "retrying feed=%s attempt=%d kind=%s detail=%s wait_s=%.2f",
                feed,
                state.attempt_number,
                kind,
                detail,
                state.upcoming_sleep,
            )

        retrying = AsyncRetrying(
            retry=_retry,
            wait=_wait,
            stop=_stop,
            sleep=self.clock.sleep,
            before_sleep=_before_sleep,
            reraise=True,
        )
        return await retrying(fn)
