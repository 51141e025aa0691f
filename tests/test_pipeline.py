"""The request pipeline on its own (issue 8 §5): politeness -> breaker -> retry ->
conditional request -> bounded body -> parse, over MockTransport, a fake clock and a memory
store."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from feeds.clock import FakeClock
from feeds.config import Config
from feeds.errors import FeedError, HttpStatusError, InvalidPayloadError
from feeds.models import RequestSpec
from feeds.pipeline import HeldBack, RequestPipeline
from feeds.politeness import HostGuard
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore
from tests.helpers import Upstream, config_file, ok

FEEDS = """
[feeds.rates]
kind = "vietcombank"
url = "https://bank.example/x"
every = "15m"
timeout = "5s"
deadline = "20s"
min_interval = "5m"

[feeds.met]
kind = "met-no"
url = "https://met.example/compact"
every = "30m"
timeout = "5s"
deadline = "20s"
locations = [{ id = "a", name = "A", lat = 1.0, lon = 1.0 }]

[feeds.om]
kind = "open-meteo"
url = "https://om.example/v1/forecast"
every = "30m"
timeout = "5s"
deadline = "20s"
locations = [{ id = "a", name = "A", lat = 1.0, lon = 1.0 }]
"""


def make(tmp_path: Path, up: Upstream) -> tuple[RequestPipeline, FakeClock, MemoryStore, Config]:
    cfg = config_file(tmp_path, FEEDS)
    clock = FakeClock()
    store = MemoryStore()
    guard = HostGuard(store, breaker_threshold=2, breaker_cooldown=600)
    client = httpx.AsyncClient(transport=httpx.MockTransport(up))
    pipe = RequestPipeline(cfg, store, client, clock, RetryPolicy(clock, rng=random.Random(7)), guard)
    return pipe, clock, store, cfg


def get(pipe: RequestPipeline, cfg: Config, feed: str, clock: FakeClock, parse: Any = bytes, **kw: Any) -> Any:
    f = cfg.feeds[feed]
    return asyncio.run(pipe.get_parsed(f, RequestSpec(f.source.url), clock.monotonic() + 20, parse, **kw))


def test_conditional_request_reuses_the_body_on_304(tmp_path: Path) -> None:
    up = Upstream(default=ok(b"v1", headers={"ETag": '"a"'}))
    pipe, clock, _, cfg = make(tmp_path, up)
    assert get(pipe, cfg, "rates", clock) == b"v1"
    clock.advance(600)
    up.default = lambda req: httpx.Response(304 if req.headers.get("If-None-Match") == '"a"' else 200)
    assert get(pipe, cfg, "rates", clock) == b"v1"
    assert up.requests[-1].headers["If-None-Match"] == '"a"'


@pytest.mark.parametrize(("feed", "asked_again"), [("met", False), ("om", True)])
def test_expires_is_honoured_only_where_the_source_asks(tmp_path: Path, feed: str, asked_again: bool) -> None:
    up = Upstream(default=ok(b"x", headers={"Expires": "Fri, 31 Dec 9999 23:59:59 GMT"}))
    pipe, clock, _, cfg = make(tmp_path, up)
    get(pipe, cfg, feed, clock)
    clock.advance(60)
    get(pipe, cfg, feed, clock)
    assert len(up.requests) == (2 if asked_again else 1)
    clock.advance(30 * 60)  # past min(every, 1 h): asked again whatever Expires said
    get(pipe, cfg, feed, clock)
    assert len(up.requests) == (3 if asked_again else 2)
    get(pipe, cfg, feed, clock, forced=True)  # fetch --force ignores a running Expires
    assert len(up.requests) == (4 if asked_again else 3)


def test_politeness_holds_back_and_force_overrides(tmp_path: Path) -> None:
    up = Upstream(default=ok(b"x"))
    pipe, clock, _, cfg = make(tmp_path, up)
    get(pipe, cfg, "rates", clock)
    clock.advance(10)
    with pytest.raises(HeldBack) as hb:
        get(pipe, cfg, "rates", clock)
    assert hb.value.reason == "min_interval"
    assert get(pipe, cfg, "rates", clock, forced=True) == b"x"
    assert len(up.requests) == 2


def test_retries_within_the_deadline_and_reports_every_failure(tmp_path: Path) -> None:
    up = Upstream(default=ok(b"x"), script=[ok(b"", status=503), ok(b"", status=502)])
    pipe, clock, _, cfg = make(tmp_path, up)
    errors: list[FeedError] = []
    assert get(pipe, cfg, "om", clock, errors=errors) == b"x"
    assert [e.detail for e in errors] == ["503", "502"]


def test_breaker_opens_then_lets_one_probe_through(tmp_path: Path) -> None:
    up = Upstream(default=ok(b"", status=404))
    pipe, clock, _, cfg = make(tmp_path, up)
    for _ in range(2):
        with pytest.raises(HttpStatusError):
            get(pipe, cfg, "om", clock)
        clock.advance(60)
    with pytest.raises(HeldBack) as hb:
        get(pipe, cfg, "om", clock)
    assert hb.value.reason == "circuit_open" and len(up.requests) == 2
    clock.advance(600)
    up.default = ok(b"", status=503)  # retryable, but the half-open probe is one request
    with pytest.raises(HttpStatusError):
        get(pipe, cfg, "om", clock)
    assert len(up.requests) == 3


def test_refused_bodies_are_kept_and_a_parser_bug_is_parser_error(tmp_path: Path) -> None:
    up = Upstream(default=ok(b"<html>oops</html>"))
    pipe, clock, store, cfg = make(tmp_path, up)

    def refuse(body: bytes) -> Any:
        raise InvalidPayloadError("no", detail="html")

    def bug(body: bytes) -> Any:
        raise ZeroDivisionError

    with pytest.raises(InvalidPayloadError):
        get(pipe, cfg, "om", clock, parse=refuse)
    clock.advance(60)
    with pytest.raises(InvalidPayloadError) as ei:
        get(pipe, cfg, "om", clock, parse=bug)
    assert ei.value.detail == "parser_error"
    kept = store.get("rejected/om")
    assert [k["detail"] for k in kept] == ["html", "parser_error"] and kept[0]["body"] == b"<html>oops</html>"
