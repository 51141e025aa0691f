"""The resolver seam: every host name portal-feeds connects to is looked up here.

``ResolvingBackend`` is an httpcore network backend: httpcore asks it to connect to
``(host, port)``; it resolves ``host`` through our ``Resolver`` and opens the socket to the
address it chose.  httpcore still starts TLS with ``server_hostname`` = the real host name,
so SNI is sent and the certificate is verified against the name, never the address.

The chain of lookups (``ServeStaleResolver``):

1. the system resolver (``getaddrinfo`` in a worker thread, bounded by ``dns.timeout``, so
   a stuck lookup never blocks the event loop, the scheduler or another feed);
2. the fallback nameservers of ``[dns] nameservers`` (dnspython's async resolver);
3. the last known good addresses of the host, kept in the store, for at most
   ``[dns] stale_max`` after they were last resolved -- the serve-stale of RFC 8767 §4;
   and, with the client response timer of RFC 8767 §5, as soon as a lookup has taken
   ``[dns] stale_answer_after`` (1.8 s) while it goes on in the background.

When every step fails the lookup raises ``DnsError`` with detail ``nxdomain``,
``no_answer``, ``temporary`` or ``timeout``.  A lookup that used stale addresses is noted
in ``ResolutionLog`` so the coordinator can record it in health.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import ipaddress
import logging
import select
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from feeds.errors import DnsError, dns_detail_from_gaierror
from feeds.store import Store

if TYPE_CHECKING:
    import httpcore

__all__ = [
    "NameserverResolver",
    "ResolutionLog",
    "Resolver",
    "ServeStaleResolver",
    "StaticResolver",
    "SystemResolver",
    "resolution_log",
    "resolving_backend",
]

logger = logging.getLogger(__name__)


class Resolver(Protocol):
    """Turns a host name into IP addresses, or raises DnsError."""

    async def resolve(self, host: str) -> list[str]: ...


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP literal (nothing to resolve)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class SystemResolver:
    """The operating system's resolver (``getaddrinfo``), bounded by a timeout."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    async def resolve(self, host: str) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            # getaddrinfo runs in the loop's thread pool: the loop itself never blocks.
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), self.timeout
            )
        except TimeoutError:
            raise DnsError("name resolution timed out", detail="timeout") from None
        except socket.gaierror as exc:
            raise DnsError(
                "name resolution failed", detail=dns_detail_from_gaierror(exc)
            ) from None
        except UnicodeError:
            raise DnsError("invalid host name", detail="nxdomain") from None
        addrs = _unique(str(info[4][0]) for info in infos)
        if not addrs:
            raise DnsError("no address for the name", detail="no_answer")
        return addrs


class NameserverResolver:
    """Explicit nameservers through dnspython (``"1.1.1.1"`` or ``"127.0.0.1:5353"``)."""

    def __init__(self, nameservers: Sequence[str], timeout: float = 5.0) -> None:
        import dns.asyncresolver

        self.timeout = timeout
        self._resolver = dns.asyncresolver.Resolver(configure=False)
        self._resolver.nameservers = []
        ports: dict[str, int] = {}
        for ns in nameservers:
            addr, port = _split_nameserver(ns)
            self._resolver.nameservers.append(addr)
            ports[addr] = port
        self._resolver.nameserver_ports = ports
        self._resolver.lifetime = timeout
        self._resolver.timeout = min(2.0, timeout)
        self._resolver.cache = None

    async def resolve(self, host: str) -> list[str]:
        import dns.exception
        import dns.resolver

        addrs: list[str] = []
        errors: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(host, rdtype, search=False)
            except dns.resolver.NXDOMAIN:
                raise DnsError("the name does not exist", detail="nxdomain") from None
            except dns.resolver.NoAnswer:
                errors.append("no_answer")
                continue
            except dns.resolver.LifetimeTimeout:
                errors.append("timeout")
                continue
            except (dns.resolver.NoNameservers, dns.exception.DNSException):
                errors.append("temporary")
                continue
            addrs.extend(r.to_text() for r in answer)
        if addrs:
            return _unique(addrs)
        # A (no_answer) + AAAA (no_answer) is a real "no address"; anything else is temporary.
        if errors and all(e == "no_answer" for e in errors):
            raise DnsError("no address for the name", detail="no_answer")
        detail = "timeout" if "timeout" in errors else "temporary"
        raise DnsError("nameservers did not answer", detail=detail)


class StaticResolver:
    """A table of answers, for tests and the demo; a missing name is NXDOMAIN."""

    def __init__(self, table: Mapping[str, Sequence[str] | DnsError] | None = None) -> None:
        self.table: dict[str, Sequence[str] | DnsError] = dict(table or {})
        self.calls: list[str] = []

    async def resolve(self, host: str) -> list[str]:
        self.calls.append(host)
        value = self.table.get(host)
        if value is None:
            raise DnsError("the name does not exist", detail="nxdomain")
        if isinstance(value, DnsError):
            raise value
        return list(value)


@dataclass
class ResolutionLog:
    """What the lookups of one attempt did (read by the coordinator for health)."""

    stale_hosts: list[str] = field(default_factory=list)
    fallback_hosts: list[str] = field(default_factory=list)


_log_var: contextvars.ContextVar[ResolutionLog | None] = contextvars.ContextVar(
    "portal_feeds_resolution_log", default=None
)


class resolution_log:  # noqa: N801 - used like a function: ``with resolution_log() as log``
    """Collect what the lookups inside the block did, per asyncio task."""

    def __enter__(self) -> ResolutionLog:
        self._log = ResolutionLog()
        self._token = _log_var.set(self._log)
        return self._log

    def __exit__(self, *exc: object) -> None:
        _log_var.reset(self._token)


class ServeStaleResolver:
    """System resolver, then fallback nameservers, then last known good addresses.

    RFC 8767 §5 client response timer: when the host has usable last known addresses and
    the lookup has not answered within ``stale_answer_after`` (1.8 s, the RFC's suggested
    value), the stale addresses are answered at once while the lookup goes on in the
    background; when it completes it refreshes the store for the next connection.  One
    background lookup per host at a time.  Without last known addresses the lookup is
    awaited to its own bound (``dns.timeout``).
    """

    def __init__(
        self,
        store: Store,
        now: Callable[[], datetime],
        *,
        primary: Resolver | None = None,
        fallbacks: Iterable[Resolver] = (),
        stale_max: float = 7 * 86400.0,
        stale_answer_after: float = 1.8,
    ) -> None:
        self.store = store
        self.now = now
        self.primary = primary or SystemResolver()
        self.fallbacks = list(fallbacks)
        self.stale_max = timedelta(seconds=stale_max)
        self.stale_answer_after = stale_answer_after
        self._inflight: dict[str, asyncio.Task[list[str]]] = {}

    def _known(self, host: str) -> dict[str, Any] | None:
        known: dict[str, Any] | None = self.store.get(f"dns/{host.lower()}")
        if known and self.now() - known["resolved_at"] <= self.stale_max:
            return known
        return None

    async def _lookup(self, host: str) -> list[str]:
        """The chain of resolvers; stores and returns the first answer, else the first error."""
        first_error: DnsError | None = None
        for i, resolver in enumerate([self.primary, *self.fallbacks]):
            try:
                addrs = await resolver.resolve(host)
            except DnsError as exc:
                first_error = first_error or exc
                continue
            self.store.set(f"dns/{host.lower()}", {"addrs": addrs, "resolved_at": self.now()})
            log = _log_var.get()
            if i > 0 and log is not None:
                log.fallback_hosts.append(host)
            return addrs
        assert first_error is not None
        raise first_error

    def _stale(self, host: str, known: dict[str, Any], detail: str | None) -> list[str]:
        log = _log_var.get()
        if log is not None:
            log.stale_hosts.append(host)
        logger.info(
            "dns failed, using last known addresses host_age_s=%d kind=dns detail=%s",
            (self.now() - known["resolved_at"]).total_seconds(),
            detail,
        )
        return list(known["addrs"])

    async def resolve(self, host: str) -> list[str]:
        known = self._known(host)
        if known is None or self.stale_answer_after <= 0:
            try:
                return await self._lookup(host)
            except DnsError as exc:
                known = self._known(host)
                if known is None:
                    raise
                return self._stale(host, known, exc.detail)
        task = self._inflight.get(host)
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(self._lookup(host))
            self._inflight[host] = task
            task.add_done_callback(functools.partial(self._done, host))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.stale_answer_after)
        except TimeoutError:
            # The lookup goes on (and will refresh the store); this connection goes ahead.
            return self._stale(host, known, "slow_lookup")
        except DnsError as exc:
            return self._stale(host, known, exc.detail)

    def _done(self, host: str, task: asyncio.Task[list[str]]) -> None:
        if self._inflight.get(host) is task:
            del self._inflight[host]
        if not task.cancelled():
            task.exception()  # retrieved: a failed background lookup is not an error to log


def resolving_backend(
    resolver: Resolver, inner: httpcore.AsyncNetworkBackend | None = None
) -> httpcore.AsyncNetworkBackend:
    """A ``ResolvingBackend`` over ``resolver`` (the transport's network backend)."""
    backend: httpcore.AsyncNetworkBackend = _backend_class()(resolver, inner)
    return backend


@functools.cache
def _backend_class() -> type[Any]:
    """``ResolvingBackend``, defined at the first client built: it subclasses httpcore's
    backend, and httpcore is not imported before the first fetch (issue 20)."""
    import httpcore

    class ResolvingBackend(httpcore.AsyncNetworkBackend):
        """An httpcore backend whose every TCP connect resolves through our Resolver."""

        def __init__(self, resolver: Resolver, inner: httpcore.AsyncNetworkBackend | None = None):
            self.resolver = resolver
            self.inner = inner or httpcore.AnyIOBackend()

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            addrs = [host] if is_ip(host) else await self.resolver.resolve(host)
            last: Exception | None = None
            for addr in addrs:
                try:
                    stream = await self.inner.connect_tcp(addr, port, timeout, local_address, socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc  # try the next address, like getaddrinfo-based clients do
                    continue
                kept: httpcore.AsyncNetworkStream = _stream_class()(stream)
                return kept
            assert last is not None
            raise last

        async def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
        ) -> httpcore.AsyncNetworkStream:
            return await self.inner.connect_unix_socket(path, timeout, socket_options)

        async def sleep(self, seconds: float) -> None:
            await self.inner.sleep(seconds)

    ResolvingBackend.__module__, ResolvingBackend.__qualname__ = __name__, "ResolvingBackend"
    return ResolvingBackend


@functools.cache
def _stream_class() -> type[Any]:
    """``KeptSocketStream``, defined with ``ResolvingBackend`` (httpcore imported then)."""
    import httpcore

    class KeptSocketStream(httpcore.AsyncNetworkStream):
        """A connection's stream that answers ``is_readable`` from the socket it kept.

        httpcore asks every idle connection of the pool whether the server closed it each time
        it hands a request to one; anyio's stream answers by building all of its attributes,
        with a ``getpeername`` call each time: ~400 system calls on the event loop per weather
        attempt of 30 requests (issue 20).  The answer is the same: whether a read would not
        block now (the server's end of the connection, or bytes nobody asked for).
        """

        def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
            self._inner = inner
            self._socket = inner.get_extra_info("socket")

        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return await self._inner.read(max_bytes, timeout)

        async def write(self, buffer: bytes, timeout: float | None = None) -> None:
            await self._inner.write(buffer, timeout)

        async def aclose(self) -> None:
            await self._inner.aclose()

        async def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> httpcore.AsyncNetworkStream:
            return KeptSocketStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

        def get_extra_info(self, info: str) -> Any:
            if info == "is_readable" and self._socket is not None:
                return _readable(self._socket)
            return self._inner.get_extra_info(info)

    KeptSocketStream.__module__, KeptSocketStream.__qualname__ = __name__, "KeptSocketStream"
    return KeptSocketStream


def _readable(sock: socket.socket) -> bool:
    """Whether a read of ``sock`` would return at once (bytes, or the end of a closed
    connection); a closed socket counts as readable, as httpcore counts it."""
    fd = sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def __getattr__(name: str) -> Any:
    """``ResolvingBackend`` (PEP 562): the class, built at first use."""
    if name == "ResolvingBackend":
        return _backend_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _split_nameserver(ns: str) -> tuple[str, int]:
    if ns.startswith("[") and "]:" in ns:
        addr, port = ns[1:].split("]:", 1)
        return addr, int(port)
    if ns.count(":") == 1:
        addr, port = ns.split(":")
        return addr, int(port)
    return ns, 53


def _unique(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
