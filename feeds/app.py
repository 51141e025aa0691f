"""Where the seams are built: store, resolver, client, clock -> a Coordinator.

The CLI and the daemon call ``open_runtime``; tests pass their own clock, resolver or
transport.  Nothing else in the package constructs these.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from feeds.clock import Clock, SystemClock
from feeds.config import Config
from feeds.coordinator import Coordinator
from feeds.localfaults import remove_stale_temps
from feeds.resolver import NameserverResolver, Resolver, ServeStaleResolver, SystemResolver
from feeds.store import Store, open_store
from feeds.transport import build_client

__all__ = ["Runtime", "build_resolver", "open_runtime"]


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
) -> AsyncIterator[Runtime]:
    """Open the store and the client for a run; close them afterwards."""
    # The event loop shares the GIL with the threads that parse big answers and publish:
    # after each syscall (a socket read, an SQLite call) it waits for the GIL up to the
    # switch interval, 5 ms by default — a 100-location batch's response handling then
    # took up to ~60 ms of the loop while a parse ran.  0.5 ms keeps the loop (watchdog,
    # other feeds, metrics) responsive; the worker threads lose a little throughput
    # (bench/scale.py, issue 20).  Restored when the run ends.
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(previous_interval, SWITCH_INTERVAL))
    try:
        async with _open_runtime(config, clock, store, resolver, primary_resolver, transport) as rt:
            yield rt
    finally:
        sys.setswitchinterval(previous_interval)


#: The GIL switch interval while a runtime is open (``open_runtime``).
SWITCH_INTERVAL = 0.0005


@asynccontextmanager
async def _open_runtime(
    config: Config,
    clock: Clock | None,
    store: Store | None,
    resolver: Resolver | None,
    primary_resolver: Resolver | None,
    transport: httpx.AsyncBaseTransport | None,
) -> AsyncIterator[Runtime]:
    clock = clock or SystemClock()
    # Temporary files of writes killed midway (older than a few minutes) go first.
    remove_stale_temps(config.snapshot_dir)
    own_store = store is None
    store = store or open_store(config.cache_dir)
    if resolver is None:
        resolver = build_resolver(config, store, clock)
        if primary_resolver is not None:
            assert isinstance(resolver, ServeStaleResolver)
            resolver.primary = primary_resolver
    client = build_client(
        user_agent=config.user_agent, resolver=resolver, transport=transport, proxy=config.proxy
    )
    try:
        yield Runtime(config, store, client, clock, Coordinator(config, store, client, clock))
    finally:
        await client.aclose()
        if own_store:
            store.close()
