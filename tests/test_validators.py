"""Issue 16, reproduction 4: one odd validator must not freeze a feed.

Only printable-ASCII ``ETag``/``Last-Modified`` of at most 1 KB are kept and sent back; an
odd one (a raw 0xff byte, non-ASCII text, 9 KB) is dropped when it arrives and ignored when
an old cache still holds it; a conditional request the server refuses with a 4xx drops
the validators and asks once more unconditionally, taking its own politeness slot.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.clock import FakeClock
from feeds.config import Config
from feeds.errors import HttpStatusError
from feeds.models import RequestSpec
from feeds.pipeline import RequestPipeline
from feeds.politeness import HostGuard
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore
from feeds.transport import MAX_VALIDATOR, clean_validator, fetch
from tests.helpers import config_file

FEEDS = """
[feeds.rates]
kind = "vietcombank"
url = "https://bank.example/x"
every = "15m"
timeout = "5s"
deadline = "20s"
min_interval = "5m"

[feeds.om]
kind = "open-meteo"
url = "https://om.example/v1/forecast"
every = "30m"
timeout = "5s"
deadline = "20s"
locations = [{ id = "a", name = "A", lat = 1.0, lon = 1.0 }]

[feeds.near]
kind = "open-meteo"
url = "https://near.example/v1/forecast"
every = "30m"
timeout = "5s"
deadline = "20s"
min_interval = "5s"
locations = [{ id = "a", name = "A", lat = 1.0, lon = 1.0 }]
"""

#: What a strict server does with header lines past 8 KB (nginx, Apache: 400).
HEADER_LIMIT = 8 * 1024


class Server:
    """A MockTransport handler: the first answers carry ``first_headers``, the rest none.

    Like a real server, it refuses (400) a request whose header line is too long, and
    answers 304 only to a validator it gave out.
    """

    def __init__(self, first_headers: list[tuple[bytes, bytes]], *, first: int = 1) -> None:
        self.first_headers = first_headers
        self.first = first
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if any(len(v) > HEADER_LIMIT for _, v in request.headers.raw):
            return httpx.Response(400, content=b"header too long")
        if len(self.requests) <= self.first:
            return httpx.Response(200, content=b"v%d" % len(self.requests), headers=self.first_headers)
        return httpx.Response(200, content=b"v%d" % len(self.requests))


def make(tmp_path: Path, handler: Any) -> tuple[RequestPipeline, FakeClock, MemoryStore, Config]:
    cfg = config_file(tmp_path, FEEDS)
    clock = FakeClock()
    store = MemoryStore()
    guard = HostGuard(store, breaker_threshold=5, breaker_cooldown=600)
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    pipe = RequestPipeline(cfg, store, client, clock, RetryPolicy(clock, rng=random.Random(7)), guard)
    return pipe, clock, store, cfg


def get(pipe: RequestPipeline, cfg: Config, feed: str, clock: FakeClock) -> Any:
    f = cfg.feeds[feed]
    return asyncio.run(pipe.get_parsed(f, RequestSpec(f.source.url), clock.monotonic() + 20, bytes))


def conditional(req: httpx.Request) -> bool:
    return "If-None-Match" in req.headers or "If-Modified-Since" in req.headers


ODD = {
    "raw_0xff_etag": [(b"ETag", b'"v1\xff"')],
    "non_ascii_last_modified": [(b"Last-Modified", "Thứ Hai, 07 Dec 2026 08:00:00 GMT".encode())],
    "9kb_etag": [(b"ETag", b'"' + b"a" * 9 * 1024 + b'"')],
    "control_char_etag": [(b"ETag", b'"a\x01b"')],
    "odd_etag_good_last_modified": [(b"ETag", b'"v1\xff"'), (b"Last-Modified", b"Mon, 07 Dec 2026 08:00:00 GMT")],
}


@pytest.mark.parametrize("headers", list(ODD.values()), ids=list(ODD))
def test_an_odd_validator_never_freezes_the_feed(tmp_path: Path, headers: list[tuple[bytes, bytes]]) -> None:
    server = Server(headers)
    pipe, clock, store, cfg = make(tmp_path, server)
    assert get(pipe, cfg, "om", clock) == b"v1"
    for n in (2, 3, 4):
        clock.advance(30 * 60)
        assert get(pipe, cfg, "om", clock) == b"v%d" % n  # a real request, a new body
    assert len(server.requests) == 4
    for req in server.requests[1:]:
        assert "If-None-Match" not in req.headers
        for name, value in req.headers.raw:
            assert value.isascii() and len(value) <= MAX_VALIDATOR, name
    stored = store.get("http/https://om.example/v1/forecast?")
    for key in ("etag", "last_modified"):
        value = (stored or {}).get(key)
        assert value is None or clean_validator(value) == value


def test_a_good_last_modified_beside_an_odd_etag_is_still_used(tmp_path: Path) -> None:
    server = Server(ODD["odd_etag_good_last_modified"])
    pipe, clock, _, cfg = make(tmp_path, server)
    get(pipe, cfg, "om", clock)
    clock.advance(30 * 60)
    get(pipe, cfg, "om", clock)
    assert server.requests[1].headers["If-Modified-Since"] == "Mon, 07 Dec 2026 08:00:00 GMT"
    assert "If-None-Match" not in server.requests[1].headers


def test_an_odd_validator_left_by_an_old_cache_is_ignored(tmp_path: Path) -> None:
    server = Server([])
    pipe, clock, store, cfg = make(tmp_path, server)
    store.set(
        "http/https://om.example/v1/forecast?",
        {"etag": '"v1ÿ"', "last_modified": "x" * 9000, "expires": None, "body": b"old", "stored_at": clock.now()},
    )
    assert get(pipe, cfg, "om", clock) == b"v1"
    assert len(server.requests) == 1 and not conditional(server.requests[0])


def test_a_stored_odd_etag_is_dropped_when_read_and_a_good_last_modified_kept(tmp_path: Path) -> None:
    # The first request fails (503): the odd ETag is gone from the store all the same.
    server = Server([])
    pipe, clock, store, cfg = make(tmp_path, lambda req: httpx.Response(503))
    key = "http/https://om.example/v1/forecast?"
    lm = "Mon, 07 Dec 2026 08:00:00 GMT"
    store.set(key, {"etag": '"v1ÿ"', "last_modified": lm, "expires": None, "body": b"old", "stored_at": clock.now()})
    with pytest.raises(HttpStatusError):
        get(pipe, cfg, "om", clock)
    assert store.get(key)["etag"] is None and store.get(key)["last_modified"] == lm
    pipe.client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    clock.advance(30 * 60)
    get(pipe, cfg, "om", clock)
    assert server.requests[0].headers["If-Modified-Since"] == lm
    assert "If-None-Match" not in server.requests[0].headers


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(min_size=0, max_size=1100) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1000, max_size=1030))
def test_validators_are_kept_exactly_when_printable_ascii_up_to_1kb(value: str) -> None:
    expected = 0 < len(value) <= 1024 and all(32 <= ord(c) <= 126 for c in value)
    assert (clean_validator(value) == value) is expected
    assert clean_validator(value) in (None, value)


def test_the_1kb_boundary(tmp_path: Path) -> None:
    for size, kept in ((1024, True), (1025, False)):
        etag = '"' + "a" * (size - 2) + '"'
        server = Server([(b"ETag", etag.encode())])
        pipe, clock, _, cfg = make(tmp_path, server)
        get(pipe, cfg, "om", clock)
        clock.advance(30 * 60)
        get(pipe, cfg, "om", clock)
        assert (server.requests[1].headers.get("If-None-Match") == etag) is kept


def test_fetch_drops_unsendable_validators_and_asks_unconditionally() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, content=b"ok")

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await fetch(
                client, RequestSpec("https://x.example/"), timeout=5, max_body=1000,
                validators={"etag": '"v1ÿ"', "last_modified": "Thứ Hai"},
            )

    got = asyncio.run(go())
    assert got.body == b"ok" and got.validators_dropped
    assert len(seen) == 1 and not conditional(seen[0])


class Refuses4xx:
    """A server that answers 400 to any conditional request (a validator it no longer likes)."""

    def __init__(self, status: int = 400) -> None:
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if conditional(request):
            return httpx.Response(self.status, content=b"bad validator")
        return httpx.Response(200, content=b"fresh", headers={"ETag": '"new"'})


def _stale_validator(store: MemoryStore, clock: FakeClock, url: str) -> None:
    store.set(
        f"http/{url}?",
        {"etag": '"stale"', "last_modified": None, "expires": None, "body": b"old", "stored_at": clock.now()},
    )


@pytest.mark.parametrize("status", [400, 412, 404])
def test_a_4xx_to_a_conditional_request_asks_once_unconditionally_in_the_same_attempt(
    tmp_path: Path, status: int
) -> None:
    server = Refuses4xx(status)
    pipe, clock, store, cfg = make(tmp_path, server)
    _stale_validator(store, clock, "https://om.example/v1/forecast")
    assert get(pipe, cfg, "om", clock) == b"fresh"
    assert [conditional(r) for r in server.requests] == [True, False]
    assert store.get("http/https://om.example/v1/forecast?")["etag"] == '"new"'


def test_the_unconditional_retry_takes_its_own_politeness_slot(tmp_path: Path) -> None:
    # min_interval 5 s, deadline 20 s: the second request waits 5 s for its own slot.
    server = Refuses4xx()
    pipe, clock, store, cfg = make(tmp_path, server)
    _stale_validator(store, clock, "https://near.example/v1/forecast")
    t0 = clock.now()
    assert get(pipe, cfg, "near", clock) == b"fresh"
    assert [conditional(r) for r in server.requests] == [True, False]
    assert clock.now() - t0 >= timedelta(seconds=5)
    assert pipe.guard.host_state("near.example").last_request_at == clock.now()


def test_when_politeness_forbids_a_second_request_the_next_attempt_is_unconditional(tmp_path: Path) -> None:
    # Vietcombank: one request per 5 minutes, a 20 s deadline.  The 400 ends this attempt
    # (no second request inside the window); the validators are gone, so the next one works.
    server = Refuses4xx()
    pipe, clock, store, cfg = make(tmp_path, server)
    _stale_validator(store, clock, "https://bank.example/x")
    with pytest.raises(HttpStatusError) as ei:
        get(pipe, cfg, "rates", clock)
    assert ei.value.status_code == 400 and len(server.requests) == 1
    clock.advance(300)
    assert get(pipe, cfg, "rates", clock) == b"fresh"
    assert [conditional(r) for r in server.requests] == [True, False]


def test_a_429_to_a_conditional_request_keeps_the_validators(tmp_path: Path) -> None:
    # 429 is about pace, not about the validator: no extra request.
    server = Refuses4xx(429)
    pipe, clock, store, cfg = make(tmp_path, server)
    _stale_validator(store, clock, "https://near.example/v1/forecast")
    asyncio.run(_run_expect_error(pipe, cfg, clock))
    assert all(conditional(r) for r in server.requests)
    assert store.get("http/https://near.example/v1/forecast?")["etag"] == '"stale"'


async def _run_expect_error(pipe: RequestPipeline, cfg: Config, clock: FakeClock) -> None:
    f = cfg.feeds["near"]
    with pytest.raises(HttpStatusError):
        await pipe.get_parsed(f, RequestSpec(f.source.url), clock.monotonic() + 20, bytes)


# -- a real server on 127.0.0.1 ----------------------------------------------------------
class _OddHandler(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).seen.append(dict(self.headers.items()))
        self.send_response(200)
        if len(type(self).seen) == 1:
            # send_header writes latin-1: this puts a raw 0xff byte on the wire.
            self.send_header("ETag", '"v1\xff"')
            self.send_header("Last-Modified", "Th\xe1 Hai")
        body = b"n%d" % len(type(self).seen)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def odd_server() -> Iterator[str]:
    _OddHandler.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _OddHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/x"
    finally:
        srv.shutdown()
        srv.server_close()


def test_an_odd_validator_on_the_wire_is_dropped(tmp_path: Path, odd_server: str) -> None:
    cfg = config_file(tmp_path, FEEDS.replace("https://om.example/v1/forecast", odd_server))
    clock = FakeClock()
    store = MemoryStore()

    async def go() -> list[bytes]:
        out = []
        async with httpx.AsyncClient(trust_env=False) as client:
            pipe = RequestPipeline(cfg, store, client, clock, RetryPolicy(clock), HostGuard(store))
            f = cfg.feeds["om"]
            for _ in range(3):
                out.append(await pipe.get_parsed(f, RequestSpec(f.source.url), clock.monotonic() + 20, bytes))
                clock.advance(30 * 60)
        return out

    assert asyncio.run(go()) == [b"n1", b"n2", b"n3"]
    assert len(_OddHandler.seen) == 3
    assert all("If-None-Match" not in h and "If-Modified-Since" not in h for h in _OddHandler.seen)


def test_a_forced_fetch_stays_one_request_and_drops_the_refused_validators(tmp_path: Path) -> None:
    server = Refuses4xx()
    pipe, clock, store, cfg = make(tmp_path, server)
    _stale_validator(store, clock, "https://bank.example/x")
    f = cfg.feeds["rates"]

    async def forced() -> Any:
        return await pipe.get_parsed(f, RequestSpec(f.source.url), clock.monotonic() + 20, bytes, forced=True)

    with pytest.raises(HttpStatusError):
        asyncio.run(forced())
    assert len(server.requests) == 1
    assert asyncio.run(forced()) == b"fresh"  # the next one is unconditional
    assert [conditional(r) for r in server.requests] == [True, False]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(etag=st.binary(min_size=1, max_size=1500), last_modified=st.binary(min_size=0, max_size=80))
def test_whatever_validators_arrive_the_next_attempts_ask_and_get_fresh_data(etag: bytes, last_modified: bytes) -> None:
    import tempfile

    headers = [(b"ETag", etag)] + ([(b"Last-Modified", last_modified)] if last_modified else [])
    server = Server(headers)
    with tempfile.TemporaryDirectory() as d:
        pipe, clock, store, cfg = make(Path(d), server)
        assert get(pipe, cfg, "om", clock) == b"v1"
        for n in (2, 3):
            clock.advance(30 * 60)
            assert get(pipe, cfg, "om", clock) == b"v%d" % n
    for req in server.requests[1:]:
        sent = req.headers.get("If-None-Match")
        assert sent is None or clean_validator(sent) == sent
