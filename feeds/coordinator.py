"""One refresh of one feed, orchestrated: fetch -> decide -> compose/store -> write -> record.

The coordinator owns the whole attempt and never lets an exception out: every failure is
classified (``feeds.errors``), recorded in the feed's health, and the snapshot is
republished from the last good data with the status ``feeds.decision`` decides.  A failed
attempt never overwrites good data.

Each concern has its own module; the coordinator only runs them in order:

- ``feeds.attempt``: the ``Attempt`` made for each refresh (feed, start, deadline, forced,
  errors), handed to the fetch strategies;
- ``feeds.fetching``: which strategy fetches the feed -- one request (rates,
  ``fetch_single``), batches with per-location failover (``feeds.batching``), a peer's copy
  (``feeds.peering``) -- all through ``feeds.pipeline`` (politeness -> breaker -> retry ->
  conditional request -> bounded body);
- ``feeds.decision``: the status and ``stale_since``, a pure function;
- ``feeds.publishing``: composing, checking and writing the snapshot, never older over newer,
  and the last good data;
- ``feeds.recording``: the feed's health entry and the attempt's log line.

The publish step (compose, store, write, record) runs in a worker thread, one at a time per
feed, so the event loop never waits on it.  Side effects arrive through the seams given to
the constructor: the httpx client (its transport carries the resolver), the clock and the
store; replacing one (a reload's new config, a test's client) replaces it everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

from feeds import decision
from feeds.attempt import Attempt
from feeds.batching import HostLimits
from feeds.clock import Clock
from feeds.config import Config, FeedConfig
from feeds.errors import FeedError, FetchTimeoutError, LocalError, classify
from feeds.fetching import fetch_feed
from feeds.localfaults import NOT_WRITTEN, local_error
from feeds.models import RequestSpec
from feeds.pipeline import Got, HeldBack, RequestPipeline, fresh_for, honoured_expires
from feeds.politeness import HostGuard
from feeds.portal import end_preparation, prepare_companions, write_companions
from feeds.publish import write_snapshot
from feeds.publishing import Decide, NotWritten, Publisher, decider, internal_error
from feeds.recording import log_attempt, outcome_of, record_health
from feeds.redact import redact_url
from feeds.resolver import resolution_log
from feeds.retry import RetryPolicy
from feeds.sources import registry
from feeds.store import GoodData, Store

if TYPE_CHECKING:
    import httpx

__all__ = ["NOT_WRITTEN", "AttemptResult", "Coordinator", "HeldBack", "honoured_expires", "source_module"]

logger = logging.getLogger(__name__)

#: The names before Got and fresh_for moved to feeds.pipeline (other branches may still use them).
_Got = Got
_fresh_for = fresh_for
#: The name before the publish step moved to feeds.publishing.
_NotWritten = NotWritten


def source_module(kind: str) -> ModuleType:
    """The source module of a kind, from the one registry (feeds.sources.registry)."""
    return registry.source(kind)


@dataclass(frozen=True)
class AttemptResult:
    """What one refresh did, for the CLI, logs and tests."""

    feed: str
    status: str
    outcome: str  # "ok", "held_back" or an error kind
    detail: str | None
    duration_s: float
    snapshot: dict[str, Any]
    error: FeedError | None = None
    #: Held back: seconds until the upstream may be asked again (politeness or circuit).
    retry_in: float | None = None
    #: ``fetch --force``: the politeness window / open circuit was ignored for this attempt.
    forced: bool = False

    @property
    def summary(self) -> str:
        """``20 rates`` / ``34 locations`` / ``no data``."""
        data = self.snapshot.get("data")
        if not data:
            return "no data"
        if "rates" in data:
            return f"{len(data['rates'])} rates"
        return f"{len(data.get('locations', []))} locations"


class Coordinator:
    """Refreshes feeds; one instance per run, shared by every feed."""

    def __init__(
        self,
        config: Config,
        store: Store,
        client: httpx.AsyncClient,
        clock: Clock,
        *,
        retry: RetryPolicy | None = None,
        guard: HostGuard | None = None,
    ) -> None:
        #: The request pipeline every source's requests go through (feeds.pipeline).
        self.pipeline = RequestPipeline(
            config,
            store,
            client,
            clock,
            retry or RetryPolicy(clock),
            guard or HostGuard(
                store, breaker_threshold=config.breaker_failures, breaker_cooldown=config.breaker_cooldown,
                retry_after_max=config.retry_after_max, monotonic=clock.monotonic,
            ),
        )
        #: Composing, checking and writing snapshots; the last good data (feeds.publishing).
        self.publisher = Publisher(config, store, clock, self._write_files)
        #: Per-host concurrency and rate limits of concurrent requests (feeds.batching).
        self.host_limits = HostLimits(config.per_host_concurrency)
        #: The publish step of one feed runs in a worker thread, one at a time per feed:
        #: attempts queue on the asyncio lock (no thread held while waiting), and the thread
        #: lock also orders ``republish`` (called on the loop) against a step under way, so
        #: an older snapshot is never written after a newer one (``newer_on_disk`` reads
        #: what the previous step wrote).
        self._publishing: dict[str, tuple[asyncio.Lock, threading.Lock]] = {}
        self._publishing_guard = threading.Lock()

    # -- the seams: one value for the pipeline and the publish step -----------------------
    @property
    def config(self) -> Config:
        return self.pipeline.config

    @config.setter
    def config(self, value: Config) -> None:
        self.pipeline.config = self.publisher.config = value

    @property
    def store(self) -> Store:
        return self.pipeline.store

    @store.setter
    def store(self, value: Store) -> None:
        self.pipeline.store = self.publisher.store = value

    @property
    def clock(self) -> Clock:
        return self.pipeline.clock

    @clock.setter
    def clock(self, value: Clock) -> None:
        self.pipeline.clock = self.publisher.clock = value

    @property
    def client(self) -> httpx.AsyncClient:
        return self.pipeline.client

    @client.setter
    def client(self, value: httpx.AsyncClient) -> None:
        self.pipeline.client = value

    @property
    def retry(self) -> RetryPolicy:
        return self.pipeline.retry

    @retry.setter
    def retry(self, value: RetryPolicy) -> None:
        self.pipeline.retry = value

    @property
    def guard(self) -> HostGuard:
        return self.pipeline.guard

    @guard.setter
    def guard(self, value: HostGuard) -> None:
        self.pipeline.guard = value

    # -- public ----------------------------------------------------------------------
    async def refresh(
        self, feed: FeedConfig, *, next_update_at: datetime | None = None, force: bool = False
    ) -> AttemptResult:
        """Make one attempt at ``feed`` and publish its snapshot; never raises for upstream faults.

        ``force`` (``fetch --force``, an admin checking a fix): one request per upstream call
        now, ignoring the politeness window (``min_interval``, ``Retry-After``), an ``Expires``
        still running, and an open circuit, once.  Its time still counts for the window.
        """
        try:
            result = await self._refresh(feed, next_update_at=next_update_at, force=force)
        except Exception as exc:  # a bug of ours past every other guard: still no traceback out
            error = self._internal(feed, exc)
            result = AttemptResult(feed.name, NOT_WRITTEN, error.kind, error.detail, 0.0, {}, error)
        return replace(result, forced=True) if force else result

    def attempt(self, feed: FeedConfig, *, force: bool = False) -> Attempt:
        """A new attempt at ``feed``, starting now (what the fetch strategies are handed)."""
        t0 = self.clock.monotonic()
        return Attempt(
            feed, self.pipeline, self.load_good, started=self.clock.now(), t0=t0,
            deadline_at=t0 + feed.deadline, forced=force,
        )

    async def _refresh(self, feed: FeedConfig, *, next_update_at: datetime | None, force: bool) -> AttemptResult:
        attempt = self.attempt(feed, force=force)
        # Files the publish step will want (new per-location files' spares), made meanwhile.
        prepare_companions(self.config, feed)
        error: FeedError | None = None
        held: HeldBack | None = None
        got: Got | None = None
        with resolution_log() as rlog:
            try:
                # The deadline bounds the attempt in real time; the retry policy also stops
                # before it on the injected clock, so tests with a fake clock never wait.
                async with asyncio.timeout(feed.deadline):
                    got = await self._fetch_feed(attempt)
            except HeldBack as hb:
                held = hb
            except TimeoutError:
                # Out of time while retrying: the failure being retried says more than
                # "timeout" (e.g. dns/timeout while the resolver is down).
                error = attempt.errors[-1] if attempt.errors else FetchTimeoutError(
                    "the attempt's deadline passed", detail="deadline"
                )
            except FeedError as exc:
                error = exc
            except Exception as exc:  # a bug of ours: log it loudly, still publish
                logger.exception("unexpected error feed=%s", feed.name)
                error = classify(exc)
        if next_update_at is None:
            next_update_at = attempt.started + timedelta(seconds=feed.every)
        # Storing and publishing (encode, validate, render, write, fsync) take long at scale:
        # off the event loop, so the watchdog, other feeds and the metrics never wait on them.
        loop_lock, thread_lock = self._feed_locks(feed.name)
        async with loop_lock:
            step = asyncio.ensure_future(asyncio.to_thread(
                self._locked, thread_lock, self._finish,
                attempt, got, error, held, next_update_at, rlog.stale_hosts,
            ))
            try:
                return await asyncio.shield(step)
            except asyncio.CancelledError:
                # A stop while publishing: the step under way still ends (as it did on the
                # loop) before the runtime closes the store under it; then the stop goes on.
                while not step.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait({step})
                raise

    def _feed_locks(self, name: str) -> tuple[asyncio.Lock, threading.Lock]:
        with self._publishing_guard:
            locks = self._publishing.get(name)
            if locks is None:
                locks = self._publishing[name] = (asyncio.Lock(), threading.Lock())
            return locks

    @staticmethod
    def _locked(lock: threading.Lock, fn: Callable[..., AttemptResult], *args: Any) -> AttemptResult:
        with lock:
            return fn(*args)

    def republish(self, feed: FeedConfig, *, next_update_at: datetime | None = None) -> AttemptResult:
        """Publish the feed's snapshot from the store without fetching (warm start); never raises."""
        try:
            return self._locked(self._feed_locks(feed.name)[1], self._republish, feed, next_update_at)
        except Exception as exc:  # a bug of ours: one ERROR line, the previous file stays
            error = self._internal(feed, exc)
            return AttemptResult(feed.name, NOT_WRITTEN, error.kind, error.detail, 0.0, {}, error)

    def _republish(self, feed: FeedConfig, next_update_at: datetime | None) -> AttemptResult:
        try:
            status, snap = self.publisher.republish(feed, next_update_at)
        except NotWritten as nw:
            return AttemptResult(
                feed.name, NOT_WRITTEN, nw.error.kind, nw.error.detail, 0.0, nw.snapshot, nw.error
            )
        return AttemptResult(feed.name, status, "republished", None, 0.0, snap)

    # -- fetching --------------------------------------------------------------------
    async def _fetch_feed(self, attempt: Attempt) -> Got:
        """The fetch step of an attempt (feeds.fetching)."""
        return await fetch_feed(attempt, self.host_limits)

    async def get_parsed(
        self,
        feed: FeedConfig,
        spec: RequestSpec,
        deadline_at: float,
        parse: Callable[[bytes], Any],
        *,
        max_attempts: int | None = None,
        received: Callable[[], None] | None = None,
    ) -> Any:
        """One request through the pipeline (feeds.pipeline) outside any attempt: not forced,
        its failures not collected (an attempt's own requests go through ``Attempt.get_parsed``)."""
        return await self.pipeline.get_parsed(
            feed, spec, deadline_at, parse, max_attempts=max_attempts, received=received
        )

    _get_parsed = get_parsed  # the names before the strategies' interface (feeds.attempt.Attempt)

    # -- the last good data ----------------------------------------------------------
    def load_good(self, feed: FeedConfig) -> GoodData | None:
        """The feed's last good data (recovered from its published snapshot when the store has none)."""
        return self.publisher.load_good(feed)

    _load_good = load_good

    # -- the publish step (a worker thread, one at a time per feed) -------------------------
    def _finish(
        self,
        attempt: Attempt,
        got: Got | None,
        error: FeedError | None,
        held: HeldBack | None,
        next_update_at: datetime,
        stale_hosts: list[str],
    ) -> AttemptResult:
        feed = attempt.feed
        now = self.clock.now()
        self.publisher.keep_newer(feed, now)  # recovers from the snapshot (and its state) if older or none
        state: dict[str, Any] = self.store.get(f"snapshot/{feed.name}") or {}
        fetched: GoodData | None = None
        if got is not None:
            src = source_module(got.source.kind)
            fetched = GoodData(
                data=got.data,
                fetched_at=got.oldest_location_at or got.fetched_at,
                as_of=got.as_of,
                source_name=got.source_name or src.SOURCE_NAME,
                source_url=got.source.public_url or redact_url(got.source_url or got.source.url),
            )
            error = got.partial_error
        decide = _decider(
            feed, state, started=attempt.started, now=now, requested=held is None, got=got, fetched=fetched
        )
        try:
            snap, _, status, stale_since, error, refused = self.publisher.compose(
                feed, fetched, error, decide, next_update_at, now, vouched=got.checked if got else frozenset()
            )
            if refused:
                got = None  # refused data is never stored: the attempt failed
            written = status
            self.publisher.write(feed, snap)
        except NotWritten as nw:
            # A local fault outranks the upstream's outcome: the admin must act on it.
            snap, error, written = nw.snapshot, nw.error, NOT_WRITTEN
        except Exception as exc:  # a bug of ours in the publish path: the previous file stays
            snap, error, written = {}, self._internal(feed, exc), NOT_WRITTEN
            got = got if self.publisher.stored(feed) else None  # last_success_at: only data kept
            status, stale_since = state.get("status") or "unavailable", state.get("stale_since")
        if self.store.fault and (error is None or error.kind != "local"):
            # The cache could not be written (its updates are kept in memory meanwhile).
            reason = self.store.fault.split(":", 1)[1]
            if error is None:
                error = local_error("store", reason)
        outcome = outcome_of(error, held)
        detail = error.detail if error else (held.reason if held else None)
        duration = self.clock.monotonic() - attempt.t0
        record_health(
            self.store, feed, attempt.started, duration, got, error, held, written, next_update_at, stale_hosts
        )
        log_attempt(feed, outcome, detail, duration, written, state.get("outcome"), error)
        end_preparation(self.config, feed)  # made ahead for this attempt's write only
        self.store.set(
            f"snapshot/{feed.name}",
            {
                # The status of the file on disk: a failed write left the previous one.
                "status": status if written != NOT_WRITTEN else state.get("status"),
                "stale_since": stale_since if written != NOT_WRITTEN else state.get("stale_since"),
                "outcome": outcome,
            },
        )
        return AttemptResult(feed.name, written, outcome, detail, duration, snap, error,
                             retry_in=held.wait if held is not None and error is None else None)

    def _write_files(self, feed: FeedConfig, snap: dict[str, Any]) -> None:
        """Write ``<feed>.json`` and its companions: this module's ``write_snapshot`` and
        ``write_companions``, looked up when called (the seams tests replace)."""
        write_snapshot(self.config.snapshot_dir, snap, functools.partial(write_companions, self.config, feed))

    def _internal(self, feed: FeedConfig, exc: BaseException) -> LocalError:
        """A bug of ours in the publish path, as a classified local fault (no traceback)."""
        return internal_error(feed, exc)


def _decider(
    feed: FeedConfig,
    state: dict[str, Any],
    *,
    started: datetime,
    now: datetime,
    requested: bool,
    got: Got | None,
    fetched: GoodData | None,
) -> Decide:
    """``feeds.publishing.decider`` for an attempt that got ``got`` (a peer's own status)."""
    origin = decision.Origin(got.origin_status, got.origin_stale_since) if got is not None else None
    return decider(feed, state, started=started, now=now, requested=requested, origin=origin, fetched=fetched)
