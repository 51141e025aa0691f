"""A request let through at once costs few store operations (issue 20).

Each store operation is a round trip to SQLite on the event loop (and, while a big answer is
parsed in a worker thread, a wait for the GIL): a 3,000-location weather attempt made 13 per
request, ~390 in all.  A request that finds its host free, no validators kept and a closed
breaker now reads the cache entry once, the breaker once before and once after (a concurrent
failure must be seen), and the host's politeness and turns once each, under the claim's lock,
where they are also written.  Nothing else.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from feeds.clock import FakeClock
from feeds.models import RequestSpec
from feeds.pipeline import RequestPipeline
from feeds.politeness import HostGuard
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore
from tests.helpers import Upstream, config_file, ok

FEEDS = """
[feeds.om]
kind = "open-meteo"
url = "https://om.example/v1/forecast"
every = "30m"
timeout = "5s"
deadline = "20s"
locations = [{ id = "a", name = "A", lat = 1.0, lon = 1.0 }]
"""


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def get(self, key: str, default: Any = None) -> Any:
        self.ops[f"get {key.split('/')[0]}"] += 1
        return super().get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.ops[f"set {key.split('/')[0]}"] += 1
        super().set(key, value)

    def delete(self, key: str) -> None:
        self.ops[f"delete {key.split('/')[0]}"] += 1
        super().delete(key)


def test_a_request_let_through_at_once_reads_each_record_once(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, FEEDS)
    clock = FakeClock()
    store = CountingStore()
    guard = HostGuard(store, breaker_threshold=2, breaker_cooldown=600)
    up = Upstream(default=ok(b"body"))
    client = httpx.AsyncClient(transport=httpx.MockTransport(up))
    pipe = RequestPipeline(cfg, store, client, clock, RetryPolicy(clock, rng=random.Random(7)), guard)
    feed = cfg.feeds["om"]

    async def two() -> list[Any]:
        spec = RequestSpec(feed.source.url, params=(("latitude", "1"),))
        first = await pipe.get_parsed(feed, spec, clock.monotonic() + 20, bytes)
        store.ops.clear()
        spec = RequestSpec(feed.source.url, params=(("latitude", "2"),))
        return [first, await pipe.get_parsed(feed, spec, clock.monotonic() + 20, bytes)]

    assert asyncio.run(two()) == [b"body", b"body"]
    assert len(up.requests) == 2
    assert dict(store.ops) == {
        "get http": 1,  # no validators kept: nothing to delete either
        "get breaker": 2,
        "get polite": 1,
        "get turns": 1,
        "set polite": 1,
        "set turns": 1,
    }
