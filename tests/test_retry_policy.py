"""Retry policy, politeness and breaker, validation gate: small pure units."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from decimal import Decimal

import pytest

from feeds.clock import FakeClock
from feeds.errors import ConnectError, DnsError, HttpStatusError, InvalidPayloadError, RejectedError
from feeds.models import (
    CurrentWeather,
    DailyForecast,
    ExchangeRate,
    ExchangeRates,
    Location,
    LocationWeather,
)
from feeds.politeness import HostGuard
from feeds.retry import RetryPolicy, is_retryable
from feeds.store import MemoryStore
from feeds.validate import check_rates, check_weather


@pytest.mark.parametrize(
    ("exc", "previous", "expected"),
    [
        (DnsError("x", detail="temporary"), None, True),
        (DnsError("x", detail="timeout"), None, True),
        (DnsError("x", detail="nxdomain"), None, True),
        (DnsError("x", detail="nxdomain"), DnsError("x", detail="nxdomain"), False),
        (DnsError("x", detail="no_answer"), None, False),
        (ConnectError("x"), None, True),
        (HttpStatusError("x", status_code=500), None, True),
        (HttpStatusError("x", status_code=429), None, True),
        (HttpStatusError("x", status_code=408), None, True),
        (HttpStatusError("x", status_code=403), None, False),
        (InvalidPayloadError("x"), None, False),
        (RejectedError("x"), None, False),
        (ValueError("bug"), None, False),
    ],
)
def test_is_retryable(exc: BaseException, previous: BaseException | None, expected: bool) -> None:
    assert is_retryable(exc, previous) is expected


def test_backoff_full_jitter_and_deadline() -> None:
    clock = FakeClock()
    policy = RetryPolicy(clock, base=1, cap=8, max_attempts=100, rng=random.Random(1))
    calls = 0

    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectError("x")

    deadline = clock.monotonic() + 20
    with pytest.raises(ConnectError):
        asyncio.run(policy.call(always_fails, deadline_at=deadline))
    assert calls == len(clock.sleeps) + 1
    assert clock.monotonic() <= deadline
    for n, s in enumerate(clock.sleeps, start=1):
        assert 0 <= s <= min(8, 2 ** (n - 1))


def test_nxdomain_twice_stops() -> None:
    clock = FakeClock()
    calls = 0

    async def nx() -> None:
        nonlocal calls
        calls += 1
        raise DnsError("x", detail="nxdomain")

    with pytest.raises(DnsError):
        asyncio.run(RetryPolicy(clock).call(nx, deadline_at=clock.monotonic() + 20))
    assert calls == 2


def test_breaker_opens_cools_down_and_probes() -> None:
    clock = FakeClock()
    g = HostGuard(MemoryStore(), breaker_threshold=3, breaker_cooldown=600)
    for _ in range(2):
        g.record_result("h", False, clock.now(), "timeout")
    assert g.breaker_allows("h", clock.now())
    assert g.record_result("h", False, clock.now(), "timeout").state == "open"
    assert not g.breaker_allows("h", clock.now())
    clock.advance(600)
    assert g.breaker("h", clock.now()).state == "half_open"
    assert g.breaker_allows("h", clock.now())
    assert g.record_result("h", False, clock.now(), "timeout").state == "open"  # probe failed
    clock.advance(600)
    assert g.record_result("h", True, clock.now()).state == "closed"


def test_min_interval_shared_and_release() -> None:
    clock = FakeClock()
    store = MemoryStore()
    g = HostGuard(store)
    assert g.claim("bank", 300, clock.now())
    assert not g.claim("bank", 300, clock.now() + timedelta(seconds=299))
    # another guard on the same store (another process, another feed) sees the same slot
    assert HostGuard(store).wait_needed("bank", 300, clock.now()) == 300
    before = g.host_state("other")
    assert g.claim("other", 300, clock.now())
    g.release("other", before)  # never reached the host
    assert g.wait_needed("other", 300, clock.now()) == 0
    g.defer("bank", clock.now() + timedelta(seconds=900))
    assert g.wait_needed("bank", 300, clock.now()) == 900


def _rates(*rows: tuple[str, str | None, str | None, str | None]) -> ExchangeRates:
    return ExchangeRates(None, tuple(
        ExchangeRate(c, c, c, *(Decimal(v) if v else None for v in vals)) for c, *vals in rows
    ))


def test_rate_rules() -> None:
    check_rates(_rates(("USD", "25000", "25030", "25400"), ("SEK", "2806.71", "2925.72", "2925.72")))
    for rates, detail in [
        (_rates(("EUR", "1", "1", "2")), "usd_missing"),
        (_rates(("USD", "0.0001", "-1", "2")), "not_positive"),
        (_rates(("USD", "3", "1", "2")), "buy_above_sell"),
        (_rates(("USD", None, None, None)), "no_value"),
        (ExchangeRates(None, ()), "no_rates"),
    ]:
        with pytest.raises(RejectedError) as ei:
            check_rates(rates)
        assert ei.value.detail == detail
    prev = {"rates": [{"code": "USD", "buy_cash": Decimal("25000"), "buy_transfer": None, "sell": Decimal("25400")}]}
    check_rates(_rates(("USD", "29000", "29000", "30000")), prev, max_change=0.2)
    with pytest.raises(RejectedError):
        check_rates(_rates(("USD", "31000", "31000", "31500")), prev, max_change=0.2)


def _lw(temp: float | None = 25.0, hum: float | None = 80, loc: str = "hn") -> LocationWeather:
    cur = CurrentWeather(None, temp, temp, hum, 5.0, 90.0, 0.0, 0, "clear", "Trời quang")
    day = DailyForecast(__import__("datetime").date(2026, 11, 24), 20.0, 30.0, 1.0, 0, "clear", "Trời quang")
    return LocationWeather(Location(loc, loc, 21.0, 105.8), cur, (day,))


def test_weather_rules() -> None:
    check_weather([_lw()], ["hn"])
    check_weather([_lw(temp=None, hum=None)], ["hn"])
    with pytest.raises(RejectedError):
        check_weather([_lw(temp=75.0)], ["hn"])
    with pytest.raises(RejectedError):
        check_weather([_lw(hum=140)], ["hn"])
    with pytest.raises(RejectedError) as ei:
        check_weather([_lw(loc="paris")], ["hn"])
    assert ei.value.detail == "unexpected_location"
