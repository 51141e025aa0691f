"""Weather at scale (feeds.batching): concurrent batches under a per-host limit, fetched
batches kept at the deadline, per-location failover with a bounded primary share, MET
Norway's rate limit, oldest-first carry-on across attempts."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.batching import RateLimiter, oldest_first, run_until
from feeds.clock import FakeClock, SystemClock
from feeds.config import Config, FeedConfig
from feeds.coordinator import Coordinator
from feeds.models import Location
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore
from feeds.testing.upstream import UpstreamSimulator
from tests.helpers import config_file

OM = "api.open-meteo.com"
MET = "api.met.no"

BASE = f"""
[feeds.weather]
kind = "open-meteo"
url = "https://{OM}/v1/forecast"
every = "30m"
timeout = "5s"
deadline = "20s"
locations = [{{ id = "x", name = "X", lat = 10, lon = 106 }}]
fallback = [{{ kind = "met-no", url = "https://{MET}/weatherapi/locationforecast/2.0/compact" }}]
"""

_SIM = UpstreamSimulator()  # only its answer builders are used; never started
_SIM.now = lambda: FakeClock().now().timestamp()  # upstream times follow the fake clock's start


def locations(n: int) -> tuple[Location, ...]:
    # Spread over Vietnam's box; 4 decimals like real coordinates.
    return tuple(
        Location(f"loc-{i:04d}", f"Place {i}", round(8.5 + (i * 0.0131) % 14.5, 4), round(102.2 + (i * 0.0173) % 7.2, 4))
        for i in range(n)
    )


def weather_config(tmp_path: Path, n: int, *, extra: str = "", fallback: bool = True) -> tuple[Config, FeedConfig]:
    cfg = config_file(tmp_path, extra + BASE)
    feed = replace(cfg.feeds["weather"], locations=locations(n))
    if not fallback:
        feed = replace(feed, fallback=())
    return cfg, feed


def open_meteo_answer(request: httpx.Request) -> httpx.Response:
    status, body = _SIM._open_meteo(dict(parse_qsl(request.url.query.decode())))
    return httpx.Response(status, content=body)


_MET_BODY = (Path(__file__).parent.parent / "feeds/testing/payloads/metno-compact-2020-07-20-newyork-trimmed.json").read_bytes()


def met_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=_SIM._met_no(_MET_BODY, dict(parse_qsl(request.url.query.decode()))))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_batches_run_concurrently_up_to_the_per_host_limit(tmp_path: Path) -> None:
    cfg, feed = weather_config(tmp_path, 3000, extra="[http]\nper_host_concurrency = 7\n")
    inflight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)
        await asyncio.sleep(0.01)
        inflight -= 1
        return open_meteo_answer(request)

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            coord = Coordinator(cfg, MemoryStore(), client, FakeClock())
            return await coord.refresh(feed)

    r = run(go())
    assert (r.status, r.outcome) == ("fresh", "ok")
    assert len(r.snapshot["data"]["locations"]) == 3000
    assert peak == 7  # concurrent (not one after another), never above the limit


def test_deadline_keeps_the_batches_already_fetched(tmp_path: Path) -> None:
    """One batch hangs past the deadline: the others are published, not thrown away."""
    cfg, feed = weather_config(tmp_path, 500, fallback=False)
    feed = replace(feed, deadline=1.5, timeout=1.5)
    hanging = feed.locations[200]

    async def handler(request: httpx.Request) -> httpx.Response:
        if f"{hanging.lat:g}" in request.url.params["latitude"].split(","):
            await asyncio.sleep(30)
        return open_meteo_answer(request)

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            coord = Coordinator(cfg, MemoryStore(), client, SystemClock())
            return await coord.refresh(feed)

    r = run(go())
    ids = {loc["id"] for loc in r.snapshot["data"]["locations"]}
    assert len(ids) == 400 and hanging.id not in ids
    assert r.status == "stale" and (r.outcome, r.detail) == ("timeout", "partial")


def test_primary_down_gets_a_bounded_share_then_fallback_oldest_first(tmp_path: Path) -> None:
    cfg, feed = weather_config(tmp_path, 600)
    clock = FakeClock()
    primary_at: list[float] = []
    met_at: list[tuple[float, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == OM:
            primary_at.append(clock.monotonic())
            return httpx.Response(503)
        met_at.append((clock.monotonic(), request.url.params["lat"]))
        return met_answer(request)

    store = MemoryStore()

    async def attempt() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            coord = Coordinator(cfg, store, client, clock, retry=RetryPolicy(clock))
            return await coord.refresh(feed)

    t0 = clock.monotonic()
    r1 = run(attempt())
    # The primary was tried (and retried once per batch) only within its share of the deadline.
    assert primary_at and max(primary_at) - t0 < 20 * 0.5 and len(primary_at) <= 6 * 2
    # MET Norway: never more than 20 requests in any second (its terms).
    times = [t for t, _ in met_at]
    assert all(sum(1 for u in times if s <= u < s + 1 - 1e-9) <= 20 for s in times)
    assert clock.monotonic() - t0 <= 20  # the deadline holds on the clock too
    first = [loc["id"] for loc in r1.snapshot["data"]["locations"]]
    assert 300 < len(first) < 600  # too slow for all in one attempt...
    assert first == [loc.id for loc in feed.locations[: len(first)]]  # ...in order (never fetched)
    assert r1.snapshot["source"]["name"] == "MET Norway" and r1.status == "stale"

    # The next attempt carries on with the ones never fetched first, then the oldest.
    clock.advance(1800)
    met_at.clear()
    r2 = run(attempt())
    lat_of = {f"{loc.lat:g}": loc.id for loc in feed.locations}
    asked = [lat_of[lat] for _, lat in met_at]
    not_yet = [loc.id for loc in feed.locations[len(first):]]
    assert asked[: len(not_yet)] == not_yet  # all the rest fit in this attempt, first
    assert len(r2.snapshot["data"]["locations"]) == 600
    # ...and the leftover time went to the oldest of the first attempt's, in order.
    assert asked[len(not_yet):] == first[: len(asked) - len(not_yet)]


def test_fallback_not_asked_when_the_primary_answers(tmp_path: Path) -> None:
    cfg, feed = weather_config(tmp_path, 250)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return open_meteo_answer(request)

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await Coordinator(cfg, MemoryStore(), client, FakeClock()).refresh(feed)

    r = run(go())
    assert r.status == "fresh" and set(seen) == {OM} and len(seen) == 3


def test_rate_limiter_paces_on_the_clock() -> None:
    clock = FakeClock()
    lim = RateLimiter(20, clock)
    starts: list[float] = []

    async def one() -> None:
        await lim.acquire()
        starts.append(clock.monotonic())

    async def go() -> None:
        await asyncio.gather(*(one() for _ in range(45)))

    run(go())
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(g == pytest.approx(0.05) for g in gaps)


def test_run_until_returns_finished_and_marks_cut_jobs() -> None:
    async def quick() -> int:
        return 1

    async def boom() -> int:
        raise ValueError("x")

    async def slow() -> int:
        await asyncio.sleep(30)
        return 2

    async def go() -> list[Any]:
        clock = SystemClock()
        return await run_until([quick, boom, slow], clock=clock, until=clock.monotonic() + 0.2)

    out = run(go())
    assert out[0] == 1 and isinstance(out[1], ValueError) and out[2] is None


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.dictionaries(st.integers(0, 30), st.integers(0, 10**6), max_size=30), st.integers(1, 30))
def test_oldest_first_orders_never_fetched_then_by_age(ages: dict[int, int], n: int) -> None:
    from datetime import UTC, datetime, timedelta

    locs = locations(n)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    last = {locs[i].id: base + timedelta(seconds=s) for i, s in ages.items() if i < n}
    out = oldest_first(locs, last)
    assert sorted(loc.id for loc in out) == sorted(loc.id for loc in locs)
    never = [loc for loc in out if loc.id not in last]
    assert out[: len(never)] == [loc for loc in locs if loc.id not in last]
    known = [last[loc.id] for loc in out[len(never):]]
    assert known == sorted(known)


def test_config_keys(tmp_path: Path) -> None:
    from feeds.config import ConfigError

    cfg, feed = weather_config(tmp_path, 1)
    assert cfg.per_host_concurrency == 10 and feed.primary_share == 0.5
    with pytest.raises(ConfigError, match="http.per_host_concurrency"):
        config_file(tmp_path, "[http]\nper_host_concurrency = 0\n" + BASE)
    with pytest.raises(ConfigError, match="primary_share"):
        config_file(tmp_path, BASE + "primary_share = 1.5\n")
    assert json.loads("{}") == {}
