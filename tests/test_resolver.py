"""The resolver seam: serve-stale, fallback order, bounded lookups, connects to our address."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from feeds.clock import FakeClock
from feeds.errors import DnsError
from feeds.models import RequestSpec
from feeds.resolver import (
    ResolvingBackend,
    ServeStaleResolver,
    StaticResolver,
    SystemResolver,
    resolution_log,
)
from feeds.store import MemoryStore
from feeds.transport import build_client, fetch


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_serve_stale_within_stale_max() -> None:
    clock = FakeClock()
    store = MemoryStore()
    primary = StaticResolver({"rates.example": ["127.0.0.1"]})
    r = ServeStaleResolver(store, clock.now, primary=primary, stale_max=7 * 86400)
    assert run(r.resolve("rates.example")) == ["127.0.0.1"]
    primary.table["rates.example"] = DnsError("x", detail="temporary")
    clock.advance(6 * 86400)

    async def with_log():  # type: ignore[no-untyped-def]
        with resolution_log() as log:
            addrs = await r.resolve("rates.example")
        return addrs, log

    addrs, log = run(with_log())
    assert addrs == ["127.0.0.1"] and log.stale_hosts == ["rates.example"]
    clock.advance(2 * 86400)  # now 8 days after the last good answer
    with pytest.raises(DnsError) as ei:
        run(r.resolve("rates.example"))
    assert ei.value.detail == "temporary"


def test_fallback_nameservers_after_system_failure() -> None:
    clock = FakeClock()
    store = MemoryStore()
    primary = StaticResolver({"h.example": DnsError("x", detail="timeout")})
    fallback = StaticResolver({"h.example": ["127.0.0.9"]})
    r = ServeStaleResolver(store, clock.now, primary=primary, fallbacks=[fallback])

    async def go():  # type: ignore[no-untyped-def]
        with resolution_log() as log:
            return await r.resolve("h.example"), log

    addrs, log = run(go())
    assert addrs == ["127.0.0.9"] and log.fallback_hosts == ["h.example"]
    assert store.get("dns/h.example")["addrs"] == ["127.0.0.9"]


def test_nxdomain_without_history_is_final() -> None:
    r = ServeStaleResolver(MemoryStore(), FakeClock().now, primary=StaticResolver({}))
    with pytest.raises(DnsError) as ei:
        run(r.resolve("nothing.invalid"))
    assert ei.value.detail == "nxdomain"


def test_system_resolver_timeout_never_blocks_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A getaddrinfo stuck for 5 s: the lookup fails at its own timeout, the loop keeps ticking."""
    import socket

    def slow_getaddrinfo(*a, **k):  # type: ignore[no-untyped-def]
        time.sleep(1)
        raise socket.gaierror(socket.EAI_AGAIN, "x")

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)

    async def go():  # type: ignore[no-untyped-def]
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        t0 = time.monotonic()
        with pytest.raises(DnsError) as ei:
            await SystemResolver(timeout=0.3).resolve("slow.example")
        took = time.monotonic() - t0
        t.cancel()
        return ei.value.detail, took, ticks

    detail, took, ticks = run(go())
    assert detail == "timeout" and took < 1.5 and ticks > 5


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = f"host={self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def local_server():  # type: ignore[no-untyped-def]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_client_connects_to_the_resolved_address_keeping_the_host_name(local_server: int) -> None:
    resolver = StaticResolver({"www.vietcombank.com.vn": ["127.0.0.1"]})

    async def go():  # type: ignore[no-untyped-def]
        async with build_client(user_agent="t", resolver=resolver) as client:
            return await fetch(
                client, RequestSpec(f"http://www.vietcombank.com.vn:{local_server}/x"), timeout=2, max_body=1000
            )

    got = run(go())
    assert got.body == f"host=www.vietcombank.com.vn:{local_server}".encode()
    assert resolver.calls == ["www.vietcombank.com.vn"]


def test_unresolvable_name_is_dns_through_the_client() -> None:
    async def go():  # type: ignore[no-untyped-def]
        async with build_client(user_agent="t", resolver=StaticResolver({})) as client:
            return await fetch(client, RequestSpec("https://portal.invalid/x"), timeout=2, max_body=1000)

    with pytest.raises(DnsError) as ei:
        run(go())
    assert ei.value.detail == "nxdomain"


def test_backend_skips_resolution_for_ip_literals(local_server: int) -> None:
    resolver = StaticResolver({})
    backend = ResolvingBackend(resolver)

    async def go():  # type: ignore[no-untyped-def]
        stream = await backend.connect_tcp("127.0.0.1", local_server, timeout=2)
        await stream.aclose()

    run(go())
    assert resolver.calls == []


def test_stale_dns_cache_survives_in_store_between_runs() -> None:
    clock = FakeClock()
    store = MemoryStore()
    ok = StaticResolver({"a.example": ["127.0.0.2"]})
    run(ServeStaleResolver(store, clock.now, primary=ok).resolve("a.example"))
    clock.advance(timedelta(hours=1).total_seconds())
    broken = StaticResolver({"a.example": DnsError("x", detail="temporary")})
    assert run(ServeStaleResolver(store, clock.now, primary=broken).resolve("a.example")) == ["127.0.0.2"]


def test_transport_https_downgrade_redirect_refused() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://example.org/plain"})

    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await fetch(client, RequestSpec("https://example.org/x"), timeout=2, max_body=1000)

    from feeds.errors import HttpStatusError

    with pytest.raises(HttpStatusError) as ei:
        run(go())
    assert ei.value.detail == "redirect"


def test_transport_same_scheme_redirect_followed_and_body_cap() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/x":
            return httpx.Response(301, headers={"Location": "https://example.org/y"})
        return httpx.Response(200, content=b"a" * 5000)

    async def go(cap: int):  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await fetch(client, RequestSpec("https://example.org/x"), timeout=2, max_body=cap)

    assert run(go(10_000)).url == "https://example.org/y"
    from feeds.errors import InvalidPayloadError

    with pytest.raises(InvalidPayloadError) as ei:
        run(go(1000))
    assert ei.value.detail == "too_large"
