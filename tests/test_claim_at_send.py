"""A host's politeness slot is taken when the request is about to go out, not before the
client is made (the invariants suite under load: two requests to one host 130-190 ms apart
with min_interval 0.5 s, right after a start; the run's HTTP client is built at its first
use, which took longer than the interval there)."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from pathlib import Path

import httpx

from feeds.app import DeferredClient
from feeds.clock import FakeClock
from feeds.models import RequestSpec
from feeds.pipeline import RequestPipeline
from feeds.politeness import HostGuard
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore
from tests.helpers import config_file

FEEDS = """
[feeds.rates]
kind = "vietcombank"
url = "https://bank.example/a"
timeout = "5s"
deadline = "20s"
min_interval = "1s"

[feeds.other]
kind = "vietcombank"
url = "https://bank.example/b"
timeout = "5s"
deadline = "20s"
min_interval = "1s"
"""


def test_requests_to_one_host_are_min_interval_apart_when_the_client_is_slow_to_build(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, FEEDS)
    clock = FakeClock()
    hits: list[datetime] = []

    def handler(req: httpx.Request) -> httpx.Response:
        hits.append(clock.now())
        return httpx.Response(200, content=b"ok")

    def build() -> httpx.AsyncClient:
        clock.advance(0.8)  # a slow first build (TLS context, CA bundle) on a loaded machine
        return httpx.AsyncClient(transport=httpx.MockTransport(handler))

    client = DeferredClient(build)
    pipe = RequestPipeline(cfg, MemoryStore(), client, clock, RetryPolicy(clock, rng=random.Random(7)),
                           HostGuard(MemoryStore()))

    async def both() -> None:
        for name in ("rates", "other"):
            feed = cfg.feeds[name]
            await pipe.get_parsed(feed, RequestSpec(feed.source.url), clock.monotonic() + feed.deadline, bytes)

    asyncio.run(both())
    assert len(hits) == 2
    assert (hits[1] - hits[0]).total_seconds() >= 1.0


FIRST_REQUEST = r"""
import asyncio, sys
from feeds.app import load_fetch_machinery, open_runtime
from feeds.config import load_config
from feeds.resolver import StaticResolver

async def main():
    cfg = load_config(sys.argv[1])
    names = StaticResolver({"bank.test": ["127.0.0.1"]})
    async with open_runtime(cfg, defer_client=True, primary_resolver=names) as rt:
        load_fetch_machinery(rt)
        before = set(sys.modules)
        r = await rt.client.get(sys.argv[2])
        assert r.status_code == 200, r.status_code
        print(" ".join(sorted(set(sys.modules) - before)))

asyncio.run(main())
"""


def test_the_first_request_of_a_run_loads_nothing_after_its_slot_is_taken(tmp_path: Path) -> None:
    """What an attempt's first request would import after the host's slot was taken (anyio's
    asyncio backend: ~20 ms here, hundreds under load) is loaded with the fetch machinery,
    right after READY=1, so the slot's time is the request's."""
    import subprocess
    import sys

    from feeds.testing.upstream import UpstreamSimulator

    with UpstreamSimulator() as sim:
        url = sim.url("vietcombank")
        cfg = tmp_path / "portal-feeds.toml"
        cfg.write_text(
            '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n'
            f'[feeds.rates]\nkind = "vietcombank"\nurl = "{url}"\n', encoding="utf-8"
        )
        out = subprocess.run([sys.executable, "-c", FIRST_REQUEST, str(cfg), url], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == []


class SlowFirstLookup:
    """bank.test -> 127.0.0.1; the first lookup takes ``delay`` seconds (a slow resolver)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    async def resolve(self, host: str) -> list[str]:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(self.delay)
        return ["127.0.0.1"]


def test_a_request_that_goes_out_late_is_still_min_interval_from_the_next(tmp_path: Path) -> None:
    """The slot is taken, then the request waits for its connection (here a slow first name
    lookup, 0.8 s); the other feed of the host, spaced 1 s from that slot, would go out
    0.2 s after it.  The late request's time is what the next one is spaced from, and a slot
    taken meanwhile makes the late one wait its turn."""
    from feeds.clock import SystemClock
    from feeds.testing.upstream import UpstreamSimulator
    from feeds.transport import build_client

    with UpstreamSimulator() as sim:
        url = sim.url("vietcombank").replace("127.0.0.1", "bank.test")
        text = FEEDS.replace("https://bank.example/a", url)
        text = text.replace("https://bank.example/b", url + ("&" if "?" in url else "?") + "other=1")
        cfg = config_file(tmp_path, text)
        clock = SystemClock()
        store = MemoryStore()

        async def both() -> None:
            client = build_client(user_agent="t", resolver=SlowFirstLookup(0.8))
            pipe = RequestPipeline(cfg, store, client, clock, RetryPolicy(clock, rng=random.Random(7)), HostGuard(store))

            async def one(name: str, after: float) -> None:
                await asyncio.sleep(after)
                feed = cfg.feeds[name]
                spec = RequestSpec(feed.source.url)
                await pipe.get_parsed(feed, spec, clock.monotonic() + feed.deadline, bytes)

            try:
                await asyncio.gather(one("rates", 0.0), one("other", 0.05))
            finally:
                await client.aclose()

        asyncio.run(both())
        times = sorted(r.at for r in sim.requests("vietcombank"))
    assert len(times) == 2
    assert times[1] - times[0] >= 0.95, times
