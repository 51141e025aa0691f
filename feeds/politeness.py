"""Per-host politeness and circuit breaking, persisted in the store.

Politeness: requests that reach a host are spaced by at least the feed's ``min_interval``
(Vietcombank: "Only one request every 5 minutes!"), across retries, separate ``fetch``
runs, feeds sharing the host and restarts -- the time of the last request is kept in the
store under ``polite/<host>``.  A ``Retry-After`` that did not fit in an attempt's deadline
becomes a ``not_before`` for the host, honoured the same way.  Requests that never reached
the host (DNS or connect failures) do not count.

Circuit breaker (``breaker/<host>``): after ``threshold`` consecutive failed attempts the
host is left alone for ``cooldown`` seconds (open); then one attempt is let through
(half-open); its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from feeds.store import Store

__all__ = ["DEFAULT_BREAKER_COOLDOWN", "DEFAULT_BREAKER_THRESHOLD", "BreakerState", "HostGuard", "HostState"]

DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_COOLDOWN = 600.0


@dataclass(frozen=True)
class HostState:
    """Politeness state of one host."""

    last_request_at: datetime | None = None
    not_before: datetime | None = None


@dataclass(frozen=True)
class BreakerState:
    """Circuit breaker state of one host: ``closed``, ``open`` or ``half_open``."""

    state: str = "closed"
    failures: int = 0
    opened_at: datetime | None = None
    last_kind: str | None = None


class HostGuard:
    """Decides whether a host may be asked now, and remembers what happened."""

    def __init__(
        self,
        store: Store,
        *,
        breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
        breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN,
    ) -> None:
        self.store = store
        self.threshold = breaker_threshold
        self.cooldown = timedelta(seconds=breaker_cooldown)

    # -- politeness -------------------------------------------------------------------
    def host_state(self, host: str) -> HostState:
        raw: dict[str, Any] = self.store.get(f"polite/{host}") or {}
        return HostState(raw.get("last_request_at"), raw.get("not_before"))

    def wait_needed(self, host: str, min_interval: float, now: datetime) -> float:
        """Seconds until a request to ``host`` is allowed (0 = now)."""
        st = self.host_state(host)
        waits = [0.0]
        if st.last_request_at is not None and min_interval > 0:
            waits.append((st.last_request_at + timedelta(seconds=min_interval) - now).total_seconds())
        if st.not_before is not None:
            waits.append((st.not_before - now).total_seconds())
        return max(waits)

    def claim(self, host: str, min_interval: float, now: datetime, *, force: bool = False) -> bool:
        """Atomically take the host's next request slot; False if it is not free yet.

        ``force`` (``fetch --force``) takes it anyway; the window starts again from now.
        """
        with self.store.lock():
            if not force and self.wait_needed(host, min_interval, now) > 0:
                return False
            st = self.host_state(host)
            self.store.set(f"polite/{host}", {"last_request_at": now, "not_before": st.not_before})
            return True

    def release(self, host: str, previous: HostState) -> None:
        """Give a slot back: the request never reached the host (DNS/connect failure)."""
        with self.store.lock():
            self.store.set(
                f"polite/{host}",
                {"last_request_at": previous.last_request_at, "not_before": previous.not_before},
            )

    def defer(self, host: str, until: datetime) -> None:
        """Record the server's ``Retry-After``: no request before ``until``."""
        with self.store.lock():
            st = self.host_state(host)
            nb = max(until, st.not_before) if st.not_before else until
            self.store.set(f"polite/{host}", {"last_request_at": st.last_request_at, "not_before": nb})

    # -- circuit breaker --------------------------------------------------------------
    def breaker(self, host: str, now: datetime | None = None) -> BreakerState:
        """Current breaker state; an open breaker past its cool-down reads as half-open."""
        raw: dict[str, Any] = self.store.get(f"breaker/{host}") or {}
        st = BreakerState(
            raw.get("state", "closed"), raw.get("failures", 0), raw.get("opened_at"), raw.get("last_kind")
        )
        if st.state == "open" and now is not None and st.opened_at and now - st.opened_at >= self.cooldown:
            return BreakerState("half_open", st.failures, st.opened_at, st.last_kind)
        return st

    def breaker_allows(self, host: str, now: datetime) -> bool:
        """Whether an attempt may reach the host (closed, or the half-open probe)."""
        return self.breaker(host, now).state != "open"

    def record_result(self, host: str, ok: bool, now: datetime, kind: str | None = None) -> BreakerState:
        """Count an attempt's result towards the breaker and return the new state."""
        with self.store.lock():
            st = self.breaker(host, now)
            if ok:
                new = BreakerState()
            else:
                failures = st.failures + 1
                if st.state == "half_open" or failures >= self.threshold:
                    new = BreakerState("open", failures, now, kind)
                else:
                    new = BreakerState("closed", failures, None, kind)
            self.store.set(
                f"breaker/{host}",
                {"state": new.state, "failures": new.failures, "opened_at": new.opened_at, "last_kind": new.last_kind},
            )
            return new
