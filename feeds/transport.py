"""The network seam: one httpx client per run, and ``fetch`` -- one GET, classified.

- TLS is always verified (httpx's default context); there is no switch to turn it off.
- Redirects are followed by us, at most ``MAX_REDIRECTS``, only within the configured URL's
  scheme, host and port, or to a host listed in ``[http] follow_redirects_to`` (same scheme:
  an https feed is never downgraded).  Any other redirect, one without a ``Location`` or
  with an unreadable one, is ``http_status/redirect`` and never retried.
- Bodies are streamed raw with a size cap: past ``max_body`` the answer is refused as
  ``invalid_payload/too_large`` without reading further; ``Content-Encoding`` is undone by
  ``feeds.decoding`` with each layer capped at ``max_body`` too (httpx decodes nothing).
- ``Retry-After`` is read defensively and capped (``[http] retry_after_max``).
- Conditional requests: ``If-None-Match``/``If-Modified-Since`` from the validators kept
  for the URL; a 304 comes back as ``Fetched(not_modified=True)``.  Only printable-ASCII
  validators of at most 1 KB are sent (``clean_validator``); an odd one kept by an old
  cache is left out (the request goes unconditional) and ``Fetched.validators_dropped``
  says so.
- Every failure leaves as a ``FeedError`` (``feeds.errors.classify``).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import math
import ssl
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from feeds.decoding import decode_body
from feeds.errors import FeedError, HttpStatusError, InvalidPayloadError, classify
from feeds.models import RequestSpec

if TYPE_CHECKING:
    # httpx and httpcore are imported by the first client built or request made, not with
    # this module: the daemon republishes and sends READY=1 without them (issue 20).
    import httpx

    from feeds.resolver import Resolver

__all__ = [
    "DEFAULT_RETRY_AFTER_MAX",
    "MAX_REDIRECTS",
    "Fetched",
    "MAX_VALIDATOR",
    "build_client",
    "clean_validator",
    "fetch",
    "parse_retry_after",
    "redirect_allowed",
]

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
#: The longest ``ETag``/``Last-Modified`` kept and sent back (1 KB): servers refuse header
#: lines past 4-8 KB with a 400, and no sane validator comes near this.
MAX_VALIDATOR = 1024
#: ``[http] retry_after_max``: the longest a ``Retry-After`` may hold a feed back.
DEFAULT_RETRY_AFTER_MAX = 3600.0


@dataclass(frozen=True)
class Fetched:
    """A successful answer: its body (empty on 304), headers and final URL."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    not_modified: bool = False
    #: Validators were kept for the URL but could not be sent (``clean_validator``).
    validators_dropped: bool = False


@functools.cache
def _resolving_transport() -> Callable[..., httpx.AsyncHTTPTransport]:
    """The transport class, defined at the first client built (it subclasses httpx's)."""
    import httpcore
    import httpx

    from feeds.resolver import resolving_backend

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
                network_backend=resolving_backend(resolver),
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

    return _ResolvingTransport


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
    import httpx

    if transport is None:
        from feeds.resolver import SystemResolver

        transport = _resolving_transport()(resolver or SystemResolver(), ssl_context=trust, proxy=proxy)
    return httpx.AsyncClient(
        transport=transport,
        headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,
        timeout=httpx.Timeout(10.0),
        trust_env=False,
    )


def clean_validator(value: object) -> str | None:
    """``value`` when it can be sent back as it came: printable ASCII, 1 to 1 KB; else None.

    A raw 0xff, UTF-8 text or a control character cannot be encoded into a request header
    (httpx refuses it, so no request is made at all), and a 9 KB ETag earns a 400: kept,
    either would freeze the feed.  Anything else (a number from an old cache) is None too.
    """
    if not isinstance(value, str) or not 0 < len(value) <= MAX_VALIDATOR:
        return None
    if not all(" " <= c <= "~" for c in value):
        return None
    return value


def parse_retry_after(
    value: str | None, now: datetime | None = None, *, cap: float = DEFAULT_RETRY_AFTER_MAX
) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Never more than ``cap`` (``[http] retry_after_max``, default 1 h): an upstream cannot
    hold a feed back until 9999.  A capped value is logged.  Anything unreadable is None
    (as if the header were absent); no value raises, however long or odd.
    """
    if not value:
        return None
    value = value.strip()
    wanted: float
    if value.isascii() and value.isdigit():
        # A 20-digit (or 4,000-digit) number: no float/timedelta arithmetic on it.
        wanted = float(value) if len(value) <= 12 else math.inf
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        try:
            wanted = max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
        except OverflowError:
            wanted = math.inf
    if wanted > cap:
        logger.info("Retry-After capped wanted_s=%s capped_s=%.0f", _show_seconds(wanted), cap)
        return cap
    return wanted


def _show_seconds(value: float) -> str:
    return "huge" if not math.isfinite(value) else f"{value:.0f}"


def redirect_allowed(origin: httpx.URL, target: httpx.URL, follow_to: Collection[str] = ()) -> bool:
    """Whether a redirect from a feed's configured ``origin`` to ``target`` is followed.

    The scheme never changes (an https feed is never downgraded, nor an http one silently
    moved).  The host and port must be the origin's, unless the target's host (or
    ``host:port``) is listed in ``[http] follow_redirects_to``.
    """
    if target.scheme != origin.scheme or not target.host:
        return False
    if target.host == origin.host and target.port == origin.port:
        return True
    allowed = {h.strip().lower() for h in follow_to}
    return target.host.lower() in allowed or f"{target.host.lower()}:{target.port}" in allowed


def _redirect_refused(status_code: int, why: str) -> HttpStatusError:
    return HttpStatusError(why, status_code=status_code, detail="redirect")


@functools.lru_cache(maxsize=1024)
def _url(url: str, params: tuple[tuple[str, str], ...]) -> httpx.URL:
    """The request's URL, built once per (url, params): httpx checks every character of a
    query (an Open-Meteo batch of 100 places: ~2,000), 30 batches took ~19 ms of the event
    loop per attempt (issue 20).  ``httpx.URL`` is immutable: sharing one is safe."""
    import httpx

    return httpx.URL(url, params=list(params) if params else None)


async def fetch(
    client: httpx.AsyncClient,
    spec: RequestSpec,
    *,
    timeout: float,
    max_body: int,
    validators: Mapping[str, str] | None = None,
    now: datetime | None = None,
    retry_after_max: float = DEFAULT_RETRY_AFTER_MAX,
    follow_redirects_to: Collection[str] = (),
    on_send: Callable[[], Awaitable[None]] | None = None,
) -> Fetched:
    """GET ``spec`` and return the answer, or raise a classified FeedError.

    ``on_send`` is awaited when a request's headers are about to be written (its connection
    made: httpcore's ``trace`` extension), and may hold it back there."""
    import httpx

    extensions: dict[str, Any] = {}
    if on_send is not None:
        async def trace(event: str, info: Mapping[str, Any]) -> None:
            if event == "http11.send_request_headers.started":
                await on_send()

        extensions["trace"] = trace

    headers = dict(spec.headers)
    dropped = False
    if validators:
        # Only what can be sent back as it came (clean_validator); an odd one is left out,
        # and the request goes unconditional instead of failing here, before any request.
        for key, header in (("etag", "If-None-Match"), ("last_modified", "If-Modified-Since")):
            raw = validators.get(key)
            value = clean_validator(raw)
            if value is not None:
                headers[header] = value
            elif raw:
                dropped = True
    try:
        url = origin = _url(spec.url, spec.params)
        for _ in range(MAX_REDIRECTS + 1):
            request = client.build_request(
                "GET", url, headers=headers, timeout=httpx.Timeout(timeout), extensions=extensions
            )
            try:
                resp = await client.send(request, stream=True, follow_redirects=False)
            except httpx.RemoteProtocolError as exc:
                # httpx builds the next request of a redirect itself and fails on a Location
                # it cannot read: that is a deterministic redirect failure, not a dropped line.
                if isinstance(exc.__context__, httpx.InvalidURL):
                    raise _redirect_refused(300, "redirect with an invalid Location") from None
                raise
            try:
                if resp.status_code == 304:
                    return Fetched(304, dict(resp.headers), b"", str(url), not_modified=True, validators_dropped=dropped)
                if 300 <= resp.status_code < 400:
                    location = resp.headers.get("Location")
                    target = resp.next_request.url if resp.next_request and location else None
                    if target is None:
                        raise _redirect_refused(resp.status_code, "redirect without a Location")
                    if not redirect_allowed(origin, target, follow_redirects_to):
                        raise _redirect_refused(resp.status_code, "redirect to another origin refused")
                    url = target
                    continue
                if not 200 <= resp.status_code < 300:
                    raise HttpStatusError(
                        f"upstream answered HTTP {resp.status_code}",
                        status_code=resp.status_code,
                        retry_after=parse_retry_after(
                            resp.headers.get("Retry-After"), now, cap=retry_after_max
                        ),
                    )
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and (len(declared) > 15 or int(declared) > max_body):
                    raise InvalidPayloadError("answer larger than max_body", detail="too_large")
                if resp.is_stream_consumed:
                    # An in-memory answer (httpx.MockTransport with bytes): httpx read it
                    # already; nothing came over a wire.
                    body = resp.content
                    if len(body) > max_body:
                        raise InvalidPayloadError("answer larger than max_body", detail="too_large")
                    return Fetched(resp.status_code, dict(resp.headers), body, str(url), validators_dropped=dropped)
                # The raw bytes, as sent: httpx must not inflate them (unbounded); the bounded
                # decoder below does, every layer capped at max_body.
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_raw():
                    size += len(chunk)
                    if size > max_body:
                        raise InvalidPayloadError("answer larger than max_body", detail="too_large")
                    chunks.append(chunk)
                body = decode_body(b"".join(chunks), resp.headers.get("Content-Encoding"), max_body)
                return Fetched(resp.status_code, dict(resp.headers), body, str(url), validators_dropped=dropped)
            finally:
                await resp.aclose()
        raise _redirect_refused(300, "too many redirects")
    except FeedError:
        raise
    except Exception as exc:
        raise classify(exc) from exc
