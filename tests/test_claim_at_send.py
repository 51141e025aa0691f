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
