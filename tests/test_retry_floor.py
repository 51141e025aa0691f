"""Issue 16, reproduction 5: ``Retry-After: 0`` (or a past date) removed the backoff.

Six requests 2-4 ms apart: the server's hint replaced the retry policy's wait even when
it was shorter.  Retries now wait ``max(Retry-After, backoff)``: a hint can lengthen the
wait, never shorten it.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.clock import FakeClock
from feeds.errors import HttpStatusError
from feeds.models import RequestSpec
from feeds.pipeline import RequestPipeline
from feeds.politeness import HostGuard
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore
from feeds.testing.upstream import Fault, UpstreamSimulator
from feeds.transport import parse_retry_after
from tests.helpers import config_file

FEEDS = """
[feeds.om]
kind = "open-meteo"
url = "{url}"
every = "30m"
timeout = "5s"
deadline = "60s"
locations = [{{ id = "a", name = "A", lat = 1.0, lon = 1.0 }}]
"""

SEED = 7


def run_503s(tmp_path: Path, retry_after: str | None, *, url: str = "https://om.example/v1/forecast",
             client: httpx.AsyncClient | None = None) -> tuple[int, list[float]]:
    """One attempt against an upstream that answers 503 (with ``retry_after``) every time."""
    requests: list[httpx.Request] = []
    clock = FakeClock()

    def handler(req: httpx.Request) -> httpx.Response:
        requests.append(req)
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return httpx.Response(503, headers=headers)

    cfg = config_file(tmp_path, FEEDS.format(url=url))
    store = MemoryStore()
    client = client or httpx.AsyncClient(transport=httpx.MockTransport(handler))
    pipe = RequestPipeline(
        cfg, store, client, clock, RetryPolicy(clock, rng=random.Random(SEED)), HostGuard(store)
    )
    f = cfg.feeds["om"]

    async def go() -> None:
        with pytest.raises(HttpStatusError):
            await pipe.get_parsed(f, RequestSpec(f.source.url), clock.monotonic() + f.deadline, bytes)

    asyncio.run(go())
    return len(requests), clock.sleeps


def backoffs(n: int) -> list[float]:
    """The waits the policy draws for ``n`` retries (same seed as the pipeline's)."""
    policy = RetryPolicy(FakeClock(), rng=random.Random(SEED))
    return [policy.backoff(i) for i in range(1, n + 1)]


PAST = format_datetime(FakeClock().now() - timedelta(days=1), usegmt=True)


@pytest.mark.parametrize("hint", ["0", PAST, "-5", "0000"], ids=["zero", "past_date", "negative", "zeros"])
def test_a_short_retry_after_never_shortens_the_backoff(tmp_path: Path, hint: str) -> None:
    base_requests, base_sleeps = run_503s(tmp_path, None)
    requests, sleeps = run_503s(tmp_path, hint)
    assert requests == base_requests == 6  # max_attempts
    assert sleeps == base_sleeps == backoffs(5)
    assert min(sleeps) > 0.05  # not 2-4 ms apart


def test_a_long_retry_after_still_lengthens_the_wait(tmp_path: Path) -> None:
    requests, sleeps = run_503s(tmp_path, "9")
    # 9 s each: 60 s of deadline leaves room for 6 requests and 5 waits of max(9, backoff).
    assert requests == 6
    assert sleeps == [max(9.0, b) for b in backoffs(5)]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(hint=st.floats(min_value=0, max_value=30), attempt=st.integers(min_value=1, max_value=8))
def test_the_wait_is_the_larger_of_hint_and_backoff(hint: float, attempt: int) -> None:
    clock = FakeClock()
    policy = RetryPolicy(clock, rng=random.Random(SEED))
    draws = RetryPolicy(clock, rng=random.Random(SEED))
    calls = 0

    async def fn() -> Any:
        nonlocal calls
        calls += 1
        if calls <= attempt:
            raise HttpStatusError("503", status_code=503, retry_after=hint)
        return "ok"

    assert asyncio.run(policy.call(fn, deadline_at=clock.monotonic() + 10_000, max_attempts=attempt + 1)) == "ok"
    assert clock.sleeps == [max(hint, draws.backoff(i)) for i in range(1, attempt + 1)]


@pytest.mark.parametrize("value", ["0", "-1", "-86400", PAST, "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_parse_retry_after_is_never_negative(value: str) -> None:
    got = parse_retry_after(value, FakeClock().now())
    assert got is None or got >= 0


def test_retry_after_zero_from_the_simulator_keeps_the_backoff(tmp_path: Path) -> None:
    # The same over a real socket: the simulator on 127.0.0.1 answers 503 + Retry-After: 0.
    with UpstreamSimulator() as sim:
        sim.set_faults("open-meteo", [Fault.status(503, retry_after=0)], repeat_last=True)
        clock = FakeClock()
        cfg = config_file(tmp_path, FEEDS.format(url=sim.url("open-meteo")))
        store = MemoryStore()
        f = cfg.feeds["om"]
        spec = RequestSpec(f.source.url, params=(("latitude", "1"), ("longitude", "1")))

        async def go() -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                retry = RetryPolicy(clock, rng=random.Random(SEED))
                pipe = RequestPipeline(cfg, store, client, clock, retry, HostGuard(store))
                with pytest.raises(HttpStatusError):
                    await pipe.get_parsed(f, spec, clock.monotonic() + f.deadline, bytes)

        asyncio.run(go())
        assert sim.request_count("open-meteo") == 6
        assert clock.sleeps == backoffs(5)
