"""The network seam: one httpx client per run, and ``fetch`` -- one GET, classified.

- TLS is always verified (httpx's default context); there is no switch to turn it off.
- Redirects are followed by us, at most ``MAX_REDIRECTS``, and only within the same scheme,
  so an https feed can never be downgraded to http.
- Bodies are streamed with a size cap: past ``max_body`` the answer is refused as
  ``invalid_payload`` without reading further.
- Conditional requests: ``If-None-Match``/``If-Modified-Since`` from the validators kept
  for the URL; a 304 comes back as ``Fetched(not_modified=True)``.
- Every failure leaves as a ``FeedError`` (``feeds.errors.classify``).
"""

from __future__ import annotations

import email.utils
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx

from feeds.errors import FeedError, HttpStatusError, InvalidPayloadError, classify
from feeds.models import RequestSpec
from feeds.resolver import Resolver, ResolvingBackend

__all__ = ["MAX_REDIRECTS", "Fetched", "build_client", "fetch", "parse_retry_after"]

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Fetched:
    """A successful answer: its body (empty on 304), headers and final URL."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    not_modified: bool = False


class _ResolvingTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its exception mapping included) over our resolver backend."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        max_connections: int = 20,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str | None = None,
    ) -> None:
        super().__init__(retries=0)
        # httpx does not take a network backend, so the pool is rebuilt with ours; the
        # rest of AsyncHTTPTransport (request/response and exception mapping) is kept.
        # TLS is always verified: the context only chooses which CAs are trusted.
        common: dict[str, Any] = dict(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            # Short: connections are reused within an attempt (retries, batches), while every
            # attempt minutes apart resolves the name again (and so notices DNS trouble).
            keepalive_expiry=2.0,
            http1=True,
            http2=False,
            network_backend=ResolvingBackend(resolver),
        )
        if proxy is None:
            self._pool = httpcore.AsyncConnectionPool(**common)
            return
        # An outbound HTTP proxy: the proxy's own name goes through our resolver seam (and
        # its serve-stale); the upstream's name is resolved by the proxy.  https upstreams
        # are tunnelled (CONNECT) and their certificates verified end to end by us.
        p = httpx.Proxy(proxy)
        self._pool = httpcore.AsyncHTTPProxy(
            proxy_url=httpcore.URL(
                scheme=p.url.raw_scheme, host=p.url.raw_host, port=p.url.port, target=p.url.raw_path
            ),
            proxy_auth=p.raw_auth,
            proxy_headers=p.headers.raw,
            **common,
        )


def build_client(
    *,
    user_agent: str,
    resolver: Resolver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    trust: ssl.SSLContext | None = None,
    proxy: str | None = None,
) -> httpx.AsyncClient:
    """Build the run's one client: our resolver seam (or a given transport), verified TLS.

    ``trust`` replaces the default CA bundle (tests use their own CA); verification of the
    certificate against the URL's host name stays on either way.  ``proxy`` is an
    ``http://[user:password@]host:port`` outbound proxy (``[http] proxy``); the
    environment's ``HTTP(S)_PROXY`` is deliberately not read: one place configures it.
    """
    if trust is not None and (trust.verify_mode != ssl.CERT_REQUIRED or not trust.check_hostname):
        raise ValueError("TLS verification cannot be turned off")
    if transport is None:
        from feeds.resolver import SystemResolver

        transport = _ResolvingTransport(resolver or SystemResolver(), ssl_context=trust, proxy=proxy)
    return httpx.AsyncClient(
        transport=transport,
        headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,
        timeout=httpx.Timeout(10.0),
        trust_env=False,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def fetch(
    client: httpx.AsyncClient,
    spec: RequestSpec,
    *,
    timeout: float,
    max_body: int,
    validators: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Fetched:
    """GET ``spec`` and return the answer, or raise a classified FeedError."""
    headers = dict(spec.headers)
    if validators:
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
    url = httpx.URL(spec.url, params=list(spec.params) if spec.params else None)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            async with client.stream(
                "GET", url, headers=headers, timeout=httpx.Timeout(timeout)
            ) as resp:
                if resp.status_code == 304:
                    return Fetched(304, dict(resp.headers), b"", str(url), not_modified=True)
                if resp.is_redirect:
                    target = resp.next_request.url if resp.next_request else None
                    if target is None or target.scheme != url.scheme:
                        raise HttpStatusError(
                            "redirect to another scheme refused",
                            status_code=resp.status_code,
                            detail="redirect_scheme",
                        )
                    url = target
                    continue
                if not 200 <= resp.status_code < 300:
                    raise HttpStatusError(
                        f"upstream answered HTTP {resp.status_code}",
                        status_code=resp.status_code,
                        retry_after=parse_retry_after(resp.headers.get("Retry-After"), now),
                    )
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > max_body:
                    raise InvalidPayloadError("answer larger than max_body", detail="too_large")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > max_body:
                        raise InvalidPayloadError("answer larger than max_body", detail="too_large")
                    chunks.append(chunk)
                return Fetched(resp.status_code, dict(resp.headers), b"".join(chunks), str(url))
        raise InvalidPayloadError("too many redirects", detail="redirects")
    except FeedError:
        raise
    except Exception as exc:
        raise classify(exc) from exc
