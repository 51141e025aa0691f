"""Where the seams are built: store, resolver, client, clock -> a Coordinator.

The CLI and the daemon call ``open_runtime``; tests pass their own clock, resolver or
transport.  Nothing else in the package constructs these.

The daemon's runtime defers the fetch machinery (``defer_client``): it republishes every feed
from the store and sends READY=1 before the first request, and the HTTP client (httpcore,
the resolver chain, the TLS context and its CA bundle), tenacity and lxml were a good part of
a start (issue 20).  ``load_fetch_machinery`` loads them right after READY, before the event
loop runs an attempt; the deferred client (``DeferredClient``) would also build itself at its
first use.

Nor does it need the coordinator for its warm start: ``warm_publisher`` and ``republish``
republish every feed from the store before the event loop exists (``feeds.daemon.run_daemon``),
so neither asyncio nor the fetch machinery under the coordinator is imported before READY=1;
``open_runtime`` builds the coordinator (and imports it) when the loop runs.
"""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from feeds.clock import Clock, SystemClock
from feeds.config import Config, FeedConfig
from feeds.localfaults import NOT_WRITTEN, remove_stale_temps
from feeds.portal import write_companions
from feeds.publish import write_snapshot
from feeds.publishing import NotWritten, Publisher, internal_error
from feeds.store import Store, open_store

if TYPE_CHECKING:
    import httpx

    from feeds.coordinator import Coordinator
    from feeds.resolver import Resolver

__all__ = [
    "DeferredClient", "Runtime", "build_resolver", "load_fetch_machinery", "open_runtime", "republish",
    "warm_publisher",
]


@dataclass
class Runtime:
    """Everything one run shares."""

    config: Config
    store: Store
    client: httpx.AsyncClient
    clock: Clock
    coordinator: Coordinator


def build_resolver(config: Config, store: Store, clock: Clock) -> Resolver:
    """System resolver, configured fallback nameservers, then serve-stale from the store."""
    from feeds.resolver import NameserverResolver, ServeStaleResolver, SystemResolver

    fallbacks = (
        [NameserverResolver(config.dns.nameservers, timeout=config.dns.timeout)]
        if config.dns.nameservers
        else []
    )
    return ServeStaleResolver(
        store,
        clock.now,
        primary=SystemResolver(timeout=config.dns.timeout),
        fallbacks=fallbacks,
        stale_max=config.dns.stale_max,
        stale_answer_after=config.dns.stale_answer_after,
    )


@asynccontextmanager
async def open_runtime(
    config: Config,
    *,
    clock: Clock | None = None,
    store: Store | None = None,
    resolver: Resolver | None = None,
    primary_resolver: Resolver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    defer_client: bool = False,
) -> AsyncIterator[Runtime]:
    """Open the store and the client for a run; close them afterwards.

    ``defer_client`` (the daemon): the client and the rest of the fetch machinery are loaded
    by ``load_fetch_machinery`` (or the client at its first use), not when the runtime opens.
    """
    # The event loop shares the GIL with the threads that parse big answers and publish:
    # after each syscall (a socket read, an SQLite call) it waits for the GIL up to the
    # switch interval, 5 ms by default — a 100-location batch's response handling then
    # took up to ~60 ms of the loop while a parse ran.  0.5 ms keeps the loop (watchdog,
    # other feeds, metrics) responsive; the worker threads lose a little throughput
    # (bench/scale.py, issue 20).  Restored when the run ends.
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(previous_interval, SWITCH_INTERVAL))
    # The cyclic garbage collector, likewise: a 3,000-location attempt makes ~300,000
    # containers that live on (the new data), and with the default thresholds (700, 10, 10)
    # the collector scanned them ~100 times per attempt, once or twice all of the heap
    # (20-70 ms each, the loop stopped).  Young collections every 10,000 net allocations
    # (each <= ~15 ms here), full ones rarer; never disabled.  Restored when the run ends.
    previous_gc = gc.get_threshold()
    gc.set_threshold(*(max(a, b) for a, b in zip(previous_gc, GC_THRESHOLDS, strict=True)))
    try:
        async with _open_runtime(
            config, clock, store, resolver, primary_resolver, transport, defer_client
        ) as rt:
            yield rt
    finally:
        sys.setswitchinterval(previous_interval)
        gc.set_threshold(*previous_gc)


#: The GIL switch interval while a runtime is open (``open_runtime``).
SWITCH_INTERVAL = 0.0005
#: The garbage collector's thresholds while a runtime is open (``open_runtime``).
GC_THRESHOLDS = (10_000, 20, 20)


@asynccontextmanager
async def _open_runtime(
    config: Config,
    clock: Clock | None,
    store: Store | None,
    resolver: Resolver | None,
    primary_resolver: Resolver | None,
    transport: httpx.AsyncBaseTransport | None,
    defer_client: bool,
) -> AsyncIterator[Runtime]:
    from feeds.coordinator import Coordinator

    clock = clock or SystemClock()
    # Temporary files of writes killed midway (older than a few minutes) go first.
    remove_stale_temps(config.snapshot_dir)
    own_store = store is None
    store = store or open_store(config.cache_dir)
    opened = store

    def build() -> httpx.AsyncClient:
        from feeds.resolver import ServeStaleResolver
        from feeds.transport import build_client

        chosen = resolver
        if chosen is None:
            chosen = build_resolver(config, opened, clock)
            if primary_resolver is not None:
                assert isinstance(chosen, ServeStaleResolver)
                chosen.primary = primary_resolver
        return build_client(
            user_agent=config.user_agent, resolver=chosen, transport=transport, proxy=config.proxy
        )

    client = cast("httpx.AsyncClient", DeferredClient(build)) if defer_client else build()
    try:
        rt = Runtime(config, store, client, clock, Coordinator(config, store, client, clock))
        if not defer_client:
            load_fetch_machinery(rt)
        yield rt
    finally:
        await client.aclose()
        if own_store:
            store.close()


def load_fetch_machinery(rt: Runtime) -> None:
    """Build a deferred client now and import what an attempt runs (tenacity for the retries,
    lxml for XML answers), so that no attempt pays for them on the event loop."""
    if isinstance(rt.client, DeferredClient):
        rt.client.build()
    # What httpcore loads at a run's first connection (~20 ms here, hundreds of ms on a loaded
    # machine): loaded there, it came after the host's politeness slot was taken, and two
    # requests to one host went out closer than min_interval (tests/test_claim_at_send.py).
    import anyio._backends._asyncio  # noqa: F401
    import httpcore._backends.anyio  # noqa: F401
    import lxml.etree  # noqa: F401  (feeds.xml)
    import tenacity  # noqa: F401  (feeds.retry)


class DeferredClient:
    """Stands for the run's ``httpx.AsyncClient`` until it is built (``build``, or its first use).

    Every attribute read or written goes to the real client, built then; ``aclose`` closes
    it only if it was built.
    """

    def __init__(self, build: Callable[[], httpx.AsyncClient]) -> None:
        object.__setattr__(self, "_build", build)
        object.__setattr__(self, "_client", None)

    def build(self) -> httpx.AsyncClient:
        """The real client, built at the first call."""
        client: httpx.AsyncClient | None = self._client
        if client is None:
            client = self._build()
            object.__setattr__(self, "_client", client)
        return client

    @property
    def built(self) -> bool:
        """Whether the real client exists yet."""
        return self._client is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.build(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.build(), name, value)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


# -- the warm start before the event loop -------------------------------------------------
def warm_publisher(config: Config, store: Store, clock: Clock) -> Publisher:
    """A publisher like the coordinator's (``Coordinator._write_files`` writes the files), for
    republishing before the coordinator exists."""
    return Publisher(config, store, clock, functools.partial(_write_files, config))


def _write_files(config: Config, feed: FeedConfig, snap: dict[str, Any]) -> None:
    write_snapshot(config.snapshot_dir, snap, functools.partial(write_companions, config, feed))


def republish(publisher: Publisher, feed: FeedConfig, *, next_update_at: datetime | None) -> str:
    """``Coordinator.republish`` without the coordinator (``Publisher.republish``): the status
    written, or ``NOT_WRITTEN`` (logged).  Never raises."""
    try:
        return publisher.republish(feed, next_update_at)[0]
    except NotWritten:
        return NOT_WRITTEN
    except Exception as exc:  # a bug of ours: one ERROR line, the previous file stays
        internal_error(feed, exc)
        return NOT_WRITTEN
