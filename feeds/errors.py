"""The one error taxonomy of portal-feeds, and the one place foreign errors are mapped to it.

    FeedError                    root; ``kind`` is the stable string shown in health/logs/CLI
    ├── DnsError                 kind="dns"; detail: nxdomain | no_answer | temporary | timeout
    ├── ConnectError             kind="connect"; refused, reset, unreachable, closed early
    ├── FetchTimeoutError        kind="timeout"; connect/read/write/pool timeout or the deadline
    ├── TlsError                 kind="tls"; handshake or certificate verification failed
    ├── HttpStatusError          kind="http_status"; a non-2xx/304 answer (``status_code``)
    ├── InvalidPayloadError      kind="invalid_payload"; the bytes are not the expected document
    ├── RejectedError            kind="rejected"; a well-formed document the validation gate refused
    └── LocalError               kind="local"; our machine, not the upstream: the snapshot or the
                                 cache could not be written (detail ``publish:disk_full``,
                                 ``store:read_only``, ... see ``feeds.localfaults``)

``classify(exc)`` turns any exception raised while fetching (httpx, httpcore, socket, ssl,
our own) into the most specific ``FeedError``.  It walks the ``__cause__``/``__context__``
chain and never matches message text.  The message of a ``FeedError`` is short, written by
us, and safe to show an admin; it never carries a host name or a foreign exception's text,
so nothing raw can leak into a snapshot.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import ClassVar

__all__ = [
    "KINDS",
    "ConnectError",
    "DnsError",
    "FeedError",
    "FetchTimeoutError",
    "HttpStatusError",
    "InvalidPayloadError",
    "LocalError",
    "RejectedError",
    "TlsError",
    "classify",
]


class FeedError(Exception):
    """A classified failure of one fetch attempt."""

    kind: ClassVar[str] = "unknown"
    #: Whether another try within the same attempt's deadline may succeed.
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, detail={self.detail!r})"

    def with_detail(self, detail: str | None) -> FeedError:
        """The same error (same class and fields) with another detail."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.args = self.args
        new.detail = detail
        return new


class DnsError(FeedError):
    """The host name could not be resolved.

    ``detail`` is ``nxdomain`` (the name does not exist), ``no_answer`` (it exists but has no
    address), ``temporary`` (the resolver failed, try again) or ``timeout``.
    """

    kind = "dns"

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.detail in ("temporary", "timeout")


class ConnectError(FeedError):
    """The TCP connection could not be made or was dropped before an answer."""

    kind = "connect"
    retryable = True


class FetchTimeoutError(FeedError):
    """A connect, read or write timeout, or the attempt's deadline ran out."""

    kind = "timeout"
    retryable = True


class TlsError(FeedError):
    """The TLS handshake failed or the certificate did not verify."""

    kind = "tls"
    retryable = False


class HttpStatusError(FeedError):
    """The upstream answered with a status we cannot use."""

    kind = "http_status"

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail if detail is not None else str(status_code))
        self.status_code = status_code
        #: Seconds the upstream asked us to wait (``Retry-After``), if it said so.
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status_code >= 500 or self.status_code in (408, 429)


class InvalidPayloadError(FeedError):
    """The body is not the document the source expects (HTML error page, truncated, empty)."""

    kind = "invalid_payload"
    retryable = False


class RejectedError(FeedError):
    """The document parsed but the validation gate refused to publish it."""

    kind = "rejected"
    retryable = False


class LocalError(FeedError):
    """A local fault: disk full, read-only, permissions, a directory where a file should be.

    Raised by the publishing and store code, never by a fetch; ``classify`` passes it through.
    """

    kind = "local"
    retryable = False


KINDS: tuple[str, ...] = (
    DnsError.kind,
    ConnectError.kind,
    FetchTimeoutError.kind,
    TlsError.kind,
    HttpStatusError.kind,
    InvalidPayloadError.kind,
    RejectedError.kind,
    LocalError.kind,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc`` and every exception behind it (cause first, then context), once each."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        for nxt in (cur.__context__, cur.__cause__):  # cause popped first
            if nxt is not None:
                stack.append(nxt)


# socket.getaddrinfo error numbers; EAI_NODATA/EAI_ADDRFAMILY are glibc-only.
_EAI_NXDOMAIN = {socket.EAI_NONAME}
_EAI_NO_ANSWER = {getattr(socket, "EAI_NODATA", -5), getattr(socket, "EAI_ADDRFAMILY", -9)}
_EAI_TEMPORARY = {socket.EAI_AGAIN, socket.EAI_FAIL}


def dns_detail_from_gaierror(err: socket.gaierror) -> str:
    """Map a getaddrinfo error number to a DnsError detail."""
    if err.errno in _EAI_NXDOMAIN:
        return "nxdomain"
    if err.errno in _EAI_NO_ANSWER:
        return "no_answer"
    return "temporary"


def classify(exc: BaseException) -> FeedError:
    """Return the most specific FeedError for ``exc`` (itself if it already is one)."""
    if isinstance(exc, FeedError):
        return exc
    import httpx  # here, not at import: the daemon's start (store, publish) needs no HTTP client

    chain = list(_chain(exc))
    # Our own errors raised deeper (e.g. by the resolver seam) win over their wrappers.
    for e in chain:
        if isinstance(e, FeedError):
            return e
    for e in chain:
        if isinstance(e, socket.gaierror):
            return DnsError("name resolution failed", detail=dns_detail_from_gaierror(e))
    import ssl  # only here: a start (before READY=1) needs no TLS (~5 ms; issue 20)

    for e in chain:
        if isinstance(e, ssl.SSLError | ssl.CertificateError):
            return TlsError("TLS handshake or certificate verification failed")
    if any(isinstance(e, httpx.TimeoutException | TimeoutError) for e in chain):
        return FetchTimeoutError("the upstream did not answer in time")
    if any(isinstance(e, httpx.TooManyRedirects) for e in chain):
        return InvalidPayloadError("too many redirects")
    if any(isinstance(e, httpx.DecodingError) for e in chain):
        return InvalidPayloadError("the body could not be decoded")
    if any(isinstance(e, httpx.HTTPStatusError) for e in chain):
        resp = next(e for e in chain if isinstance(e, httpx.HTTPStatusError)).response
        return HttpStatusError(
            f"upstream answered HTTP {resp.status_code}", status_code=resp.status_code
        )
    if any(isinstance(e, httpx.ProxyError) for e in chain):
        # The outbound proxy refused the tunnel (502/503 from it, 407 authentication).
        return ConnectError("the proxy did not open a connection to the upstream", detail="proxy")
    if any(isinstance(e, httpx.ConnectError | ConnectionRefusedError) for e in chain):
        # The connection was never made: the request did not reach the upstream.
        return ConnectError("could not connect to the upstream", detail="refused")
    if any(
        isinstance(e, httpx.TransportError | ConnectionError | OSError | EOFError) for e in chain
    ):
        # ReadError, RemoteProtocolError (closed early, truncated), resets mid-answer.
        return ConnectError("the connection dropped before a whole answer", detail="dropped")
    # Anything else is a bug of ours met while handling an answer; it is still recorded
    # under one of the seven kinds so health never shows an unknown class.
    return InvalidPayloadError("unexpected failure while handling the answer", detail="internal")
