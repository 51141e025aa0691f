"""One refresh of one feed: request -> parse -> validate -> store last good -> decide -> publish.

The coordinator owns the whole attempt and never lets an exception out: every failure is
classified (``feeds.errors``), recorded in the feed's health, and the snapshot is
republished from the last good data with the status ``feeds.freshness`` decides.  A failed
attempt never overwrites good data.  Logs follow transitions: one WARNING when a feed
starts failing, one INFO line when it recovers, DEBUG while nothing changes.

Side effects arrive through the seams given to the constructor: the httpx client (its
transport carries the resolver), the clock and the store.

The coordinator orchestrates, decides and publishes; it does not talk HTTP or know any
source.  Sources are found through ``feeds.sources.registry`` (one protocol: requests, a
pure read, plausibility checks, freshness expectations); every request goes through
``feeds.pipeline`` (politeness -> breaker -> retry -> conditional request -> bounded body).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import httpx

from feeds import bounds, freshness, history, trust
from feeds.batching import HostLimits, fetch_weather
from feeds.clock import AHEAD_SLACK, Clock
from feeds.config import PEER_KIND, Config, FeedConfig, SourceConfig
from feeds.errors import (
    FeedError,
    FetchTimeoutError,
    InvalidPayloadError,
    LocalError,
    RejectedError,
    classify,
)
from feeds.frozen import upstream_stale_since
from feeds.localfaults import NOT_WRITTEN, local_error
from feeds.models import RequestSpec
from feeds.peering import fetch_peer
from feeds.pipeline import Got, HeldBack, RequestPipeline, fresh_for, honoured_expires
from feeds.politeness import HostGuard
from feeds.portal import write_companions
from feeds.publish import build_snapshot, write_snapshot
from feeds.recovery import MAX_SNAPSHOT_BYTES, read_snapshot, snapshot_path
from feeds.redact import redact_url
from feeds.resolver import resolution_log
from feeds.retry import RetryPolicy
from feeds.sources import registry
from feeds.store import GoodData, Health, Store
from feeds.timezone import in_zone

__all__ = ["NOT_WRITTEN", "AttemptResult", "Coordinator", "HeldBack", "honoured_expires", "source_module"]

logger = logging.getLogger(__name__)

#: The names before Got and fresh_for moved to feeds.pipeline (other branches may still use them).
_Got = Got
_fresh_for = fresh_for

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


class _Seam:
    """An attribute of the coordinator that lives on its request pipeline."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        return getattr(obj.pipeline, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj.pipeline, self.name, value)


class Coordinator:
    """Refreshes feeds; one instance per run, shared by every feed."""

    config: Config = _Seam()  # type: ignore[assignment]
    store: Store = _Seam()  # type: ignore[assignment]
    client: httpx.AsyncClient = _Seam()  # type: ignore[assignment]
    clock: Clock = _Seam()  # type: ignore[assignment]
    retry: RetryPolicy = _Seam()  # type: ignore[assignment]
    guard: HostGuard = _Seam()  # type: ignore[assignment]

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
        #: The request pipeline every source's requests go through (feeds.pipeline).  The
        #: seams below are the pipeline's: replacing one here (a reload's new config, a
        #: test's client) replaces it there.
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
        #: Per-host concurrency and rate limits of concurrent requests (feeds.batching).
        self.host_limits = HostLimits(config.per_host_concurrency)
        #: Feeds whose current attempt was forced (``fetch --force``).
        self._forced: set[str] = set()
        #: Failures met during the current attempt of each feed (feeds run concurrently).
        self._errors: dict[str, list[FeedError]] = {}
        #: Per feed: whether the publish step under way stored the data just fetched (health).
        #: Per feed because publish steps of different feeds run at once in worker threads.
        self._stored: dict[str, bool] = {}
        #: The publish step of one feed runs in a worker thread, one at a time per feed:
        #: attempts queue on the asyncio lock (no thread held while waiting), and the thread
        #: lock also orders ``republish`` (called on the loop) against a step under way, so
        #: an older snapshot is never written after a newer one (``_newer_on_disk`` reads
        #: what the previous step wrote).
        self._publishing: dict[str, tuple[asyncio.Lock, threading.Lock]] = {}
        self._publishing_guard = threading.Lock()
        #: Per feed: the published file's stat key, its fetched_at and its locations' (never
        #: older over newer reads the file again only when it changed).
        self._on_disk: dict[str, tuple[tuple[int, int, int], datetime | None, dict[str, datetime]]] = {}

    # -- public ----------------------------------------------------------------------
    async def refresh(
        self, feed: FeedConfig, *, next_update_at: datetime | None = None, force: bool = False
    ) -> AttemptResult:
        """Make one attempt at ``feed`` and publish its snapshot; never raises for upstream faults.

        ``force`` (``fetch --force``, an admin checking a fix): one request per upstream call
        now, ignoring the politeness window (``min_interval``, ``Retry-After``), an ``Expires``
        still running, and an open circuit, once.  Its time still counts for the window.
        """
        if force:
            self._forced.add(feed.name)
        try:
            result = await self._refresh(feed, next_update_at=next_update_at)
        except Exception as exc:  # a bug of ours past every other guard: still no traceback out
            error = self._internal(feed, exc)
            result = AttemptResult(feed.name, NOT_WRITTEN, error.kind, error.detail, 0.0, {}, error)
        finally:
            self._forced.discard(feed.name)
        return replace(result, forced=True) if force else result

    async def _refresh(self, feed: FeedConfig, *, next_update_at: datetime | None) -> AttemptResult:
        started = self.clock.now()
        t0 = self.clock.monotonic()
        error: FeedError | None = None
        held: HeldBack | None = None
        got: Got | None = None
        self._errors[feed.name] = []
        with resolution_log() as rlog:
            try:
                # The deadline bounds the attempt in real time; the retry policy also stops
                # before it on the injected clock, so tests with a fake clock never wait.
                async with asyncio.timeout(feed.deadline):
                    got = await self._fetch_feed(feed, t0 + feed.deadline)
            except HeldBack as hb:
                held = hb
            except TimeoutError:
                # Out of time while retrying: the failure being retried says more than
                # "timeout" (e.g. dns/timeout while the resolver is down).
                seen = self._errors.get(feed.name) or []
                error = seen[-1] if seen else FetchTimeoutError(
                    "the attempt's deadline passed", detail="deadline"
                )
            except FeedError as exc:
                error = exc
            except Exception as exc:  # a bug of ours: log it loudly, still publish
                logger.exception("unexpected error feed=%s", feed.name)
                error = classify(exc)
        if next_update_at is None:
            next_update_at = started + timedelta(seconds=feed.every)
        # Storing and publishing (encode, validate, render, write, fsync) take long at scale:
        # off the event loop, so the watchdog, other feeds and the metrics never wait on them.
        loop_lock, thread_lock = self._feed_locks(feed.name)
        async with loop_lock:
            step = asyncio.ensure_future(asyncio.to_thread(
                self._locked, thread_lock, self._finish,
                feed, started, t0, got, error, held, next_update_at, rlog.stale_hosts,
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
        now = self.clock.now()
        self._keep_newer(feed, now)  # recovers from the snapshot (and its state) if older or none
        state = self.store.get(f"snapshot/{feed.name}") or {}
        prev_status = state.get("status")

        def decide(good: GoodData | None, error: FeedError | None) -> tuple[str, datetime | None]:
            if good is None:
                status: str = "unavailable"
            else:
                status = freshness.decide(
                    succeeded=False,
                    last_good_at=good.fetched_at,
                    max_stale=timedelta(seconds=feed.max_stale),
                    now=now,
                    was_fresh=prev_status == "fresh",
                    fresh_for=fresh_for(feed),
                )
            return status, None if status == "fresh" else (state.get("stale_since") or now)

        try:
            snap, _, status, _, _, _ = self._compose(feed, None, None, decide, next_update_at, now)
            self._write(feed, snap, now)
        except _NotWritten as nw:
            logger.error(
                "snapshot not written feed=%s kind=local detail=%s: %s",
                feed.name, nw.error.detail, nw.error.message,
            )
            return AttemptResult(
                feed.name, NOT_WRITTEN, nw.error.kind, nw.error.detail, 0.0, nw.snapshot, nw.error
            )
        return AttemptResult(feed.name, status, "republished", None, 0.0, snap)

    # -- fetching --------------------------------------------------------------------
    async def _fetch_feed(self, feed: FeedConfig, deadline_at: float) -> Got:
        errors: list[FeedError] = []
        held: HeldBack | None = None
        for i, source in enumerate(feed.sources):
            try:
                if source.kind == PEER_KIND:
                    # Another instance's snapshot (feeds.peering); then the sources behind it.
                    return await fetch_peer(self, feed, source, deadline_at)
                if feed.data_kind == "weather":
                    # Every remaining source, per location, concurrently (feeds.batching).
                    rest = tuple(s for s in feed.sources[i:] if s.kind != PEER_KIND)
                    return await fetch_weather(self, feed, deadline_at, rest)
                return await self._fetch_rates(feed, source, deadline_at)
            except HeldBack as hb:
                held = held or hb
            except FeedError as exc:
                errors.append(exc)
            if self.clock.monotonic() >= deadline_at or (
                feed.data_kind == "weather" and source.kind != PEER_KIND
            ):
                break
        if errors:
            raise errors[0]
        assert held is not None
        raise held

    async def _fetch_rates(self, feed: FeedConfig, source: SourceConfig, deadline_at: float) -> Got:
        mod = registry.source(source.kind)
        ((spec, _),) = mod.requests(
            source.url, (), user_agent=self.config.user_agent, batch_size=feed.batch_size
        )
        previous = self.load_good(feed)

        def parse(body: bytes) -> Any:
            rates = mod.read(body, ())
            # The bank's date: no later than now + 1 day (the parser bounds the rest).
            bounds.check_time(rates.as_of, self.clock.now(), "the table's DateTime")
            try:
                mod.check(
                    rates,
                    previous=previous.data if previous and previous.source_name == mod.SOURCE_NAME else None,
                    max_change=feed.max_change,
                    asked=(),
                )
            except RejectedError as exc:
                # The recovery rule: the same move in enough answers over enough time is real.
                if exc.detail != "moved_too_far" or not trust.confirm_move(
                    self.store, feed.name, rates, self.clock.now(), feed.max_change
                ):
                    raise
            else:
                trust.clear_move(self.store, feed.name)
            trust.update(self.store, feed.name, dropped=list(rates.dropped) or None)
            return rates

        rates = await self.get_parsed(feed, spec, deadline_at, parse)
        now = self.clock.now()
        return Got(rates.to_data(), rates.as_of, source, now)

    async def get_parsed(
        self,
        feed: FeedConfig,
        spec: RequestSpec,
        deadline_at: float,
        parse: Callable[[bytes], Any],
        *,
        max_attempts: int | None = None,
    ) -> Any:
        """One request through the pipeline (feeds.pipeline), with this attempt's state.

        ``max_attempts`` bounds the retries of this request (feeds.batching: a primary with a
        fallback behind it tries twice, then its locations go to the fallback).
        """
        return await self.pipeline.get_parsed(
            feed,
            spec,
            deadline_at,
            parse,
            forced=feed.name in self._forced,
            errors=self._errors.setdefault(feed.name, []),
            max_attempts=max_attempts,
        )

    _get_parsed = get_parsed  # the names before the strategies' interface (feeds.batching.FetchContext)

    # -- storing and publishing ----------------------------------------------------------
    def load_good(self, feed: FeedConfig) -> GoodData | None:
        """The feed's last good data (recovered from its published snapshot when the store has none)."""
        good = self.store.get(f"good/{feed.name}")
        if isinstance(good, GoodData):
            return good
        return self._recover(feed)

    _load_good = load_good

    def _recover(self, feed: FeedConfig) -> GoodData | None:
        """The store has no good data: take it back from the published snapshot (issue 9)."""
        rec = read_snapshot(self.config.snapshot_dir, feed)
        if rec is None:
            return None
        try:
            bounds.check_good(rec.good)
        except InvalidPayloadError as exc:
            logger.warning(
                "published snapshot not recovered feed=%s detail=%s: %s", feed.name, exc.detail, exc.message
            )
            return None
        now = self.clock.now()
        self.store.set(f"good/{feed.name}", rec.good)
        self.store.set(
            f"recovered/{feed.name}", {"at": now, "fetched_at": rec.good.fetched_at, "path": str(rec.path)}
        )
        if not self.store.get(f"snapshot/{feed.name}"):
            # The file's own state: republish() and the next attempt keep its stale_since.
            self.store.set(
                f"snapshot/{feed.name}",
                {"status": rec.status, "stale_since": rec.stale_since, "outcome": None},
            )
        logger.warning(
            "recovered last good data from the published snapshot feed=%s fetched_at=%s age_s=%d",
            feed.name, rec.good.fetched_at.isoformat(), (now - rec.good.fetched_at).total_seconds(),
        )
        return rec.good

    def _finish(
        self,
        feed: FeedConfig,
        started: datetime,
        t0: float,
        got: Got | None,
        error: FeedError | None,
        held: HeldBack | None,
        next_update_at: datetime,
        stale_hosts: list[str],
    ) -> AttemptResult:
        now = self.clock.now()
        max_stale = timedelta(seconds=feed.max_stale)
        self._keep_newer(feed, now)  # recovers from the snapshot (and its state) if older or none
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

        def decide(good: GoodData | None, err: FeedError | None) -> tuple[str, datetime | None]:
            last_good_at = good.fetched_at if good else None
            if held is not None and err is None:
                # Held back by politeness: not a failure, but the status still follows the age.
                status: str = freshness.decide(
                    succeeded=False, last_good_at=last_good_at, max_stale=max_stale, now=now,
                    was_fresh=state.get("status") == "fresh", fresh_for=fresh_for(feed),
                )
            else:
                status = freshness.decide(
                    succeeded=err is None, last_good_at=last_good_at, max_stale=max_stale, now=now
                )
            if good is fetched and got is not None and got.origin_status == "stale" and status == "fresh":
                status = "stale"  # a peer's copy is never fresher than its origin
            stale_since = (
                None
                if status == "fresh"
                else freshness.next_stale_since(
                    succeeded=False, previous=state.get("stale_since"), attempt_started=started
                )
            )
            if (
                good is fetched and got is not None and got.origin_stale_since is not None
                and stale_since is not None
            ):
                stale_since = min(stale_since, got.origin_stale_since)
            return status, stale_since

        try:
            snap, accepted, status, stale_since, error, refused = self._compose(
                feed, fetched, error, decide, next_update_at, now
            )
            if refused:
                got = None  # refused data is never stored: the attempt failed
            written = status
            self._write(feed, snap, now)
        except _NotWritten as nw:
            # A local fault outranks the upstream's outcome: the admin must act on it.
            snap, error, written = nw.snapshot, nw.error, NOT_WRITTEN
        except Exception as exc:  # a bug of ours in the publish path: the previous file stays
            snap, error, written = {}, self._internal(feed, exc), NOT_WRITTEN
            got = got if self._stored.get(feed.name) else None  # last_success_at: only data kept
            status, stale_since = state.get("status") or "unavailable", state.get("stale_since")
        if self.store.fault and (error is None or error.kind != "local"):
            # The cache could not be written (its updates are kept in memory meanwhile).
            reason = self.store.fault.split(":", 1)[1]
            if error is None:
                error = local_error("store", reason)
        outcome = "ok" if error is None and held is None else (error.kind if error else "held_back")
        detail = error.detail if error else (held.reason if held else None)
        duration = self.clock.monotonic() - t0
        self._record_health(feed, started, duration, got, error, held, written, next_update_at, stale_hosts)
        self._log(feed, outcome, detail, duration, written, state.get("outcome"), error)
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

    def _compose(
        self,
        feed: FeedConfig,
        fetched: GoodData | None,
        error: FeedError | None,
        decide: Callable[[GoodData | None, FeedError | None], tuple[str, datetime | None]],
        next_update_at: datetime | None,
        now: datetime,
    ) -> tuple[dict[str, Any], GoodData | None, str, datetime | None, FeedError | None, bool]:
        """The snapshot to write, built and checked against the schema before anything is stored.

        Candidates in order: the data just fetched, the store's last good data, the data of
        the published file.  Fetched data that cannot be published is refused
        (``invalid_payload``: ``bad_time``, ``out_of_bounds``, ``schema``) and never stored;
        stored data that cannot be published is set aside (one ERROR line).  Data older than
        the published file's is never written over it (``_newer_on_disk``).  Returns the
        snapshot, the data it carries, its status and stale_since, the attempt's error and
        whether the fetched data was refused.
        """
        refused = False
        self._stored[feed.name] = False
        if fetched is not None and feed.data_kind == "weather":
            fetched, error = self._drop_bad_locations(feed, fetched, error)
            refused = fetched is None
        good: GoodData | None = fetched
        #: The data whose every number and time was checked in this step (each location once:
        #: 3,000 of them cost ~40 ms a pass, issue 20); rendering it does not check again.
        checked: GoodData | None = None
        if fetched is not None:
            try:
                # Weather: _drop_bad_locations checked each location just above.
                bounds.check_good(fetched, now, locations=feed.data_kind != "weather")
                checked = fetched
            except InvalidPayloadError as exc:
                refused, error, good = True, exc, None
        if good is None:
            good = self.load_good(feed)
        setaside_file = False
        for _ in range(4):
            newer = self._newer_on_disk(feed, good, now)
            if newer is not None:
                good = newer
            status, stale_since = decide(good, error)
            try:
                snap = self._render(
                    feed, status, good, stale_since, next_update_at, now, checked=good is checked
                )
            except InvalidPayloadError as exc:
                if good is None:
                    raise  # an unavailable snapshot always validates: a bug, a local fault
                if good is fetched:
                    refused, error, good = True, exc, self.load_good(feed)
                elif setaside_file:
                    self._set_aside(feed, good, exc)
                    good = None
                else:
                    self._set_aside(feed, good, exc)
                    setaside_file = True
                    good = self._recover(feed)
                continue
            if good is not None and good is not fetched and newer is good:
                self.store.set(f"good/{feed.name}", good)  # the file's newer data, kept
            elif good is not None and good is fetched:
                self.store.set(f"good/{feed.name}", good)
                self._stored[feed.name] = True
                self._record_history(feed, good, now)
            upstream_since = snap.get("upstream_stale_since")
            # The cache lock held by a live process: the snapshot is still published.
            with contextlib.suppress(LocalError):
                trust.update(
                    self.store, feed.name,
                    upstream_stale_since=datetime.fromisoformat(upstream_since) if upstream_since else None,
                )
            return snap, good, status, stale_since, error, refused
        raise RuntimeError("no publishable snapshot after every candidate")

    def _record_history(self, feed: FeedConfig, good: GoodData, now: datetime) -> None:
        """Rates: a gated table becomes its Vietnam day's last in the archive (feeds.history)."""
        if feed.data_kind != "exchange_rates" or not feed.history_keep:
            return
        try:
            history.record(
                self.config.snapshot_dir, feed.name, as_of=good.as_of, fetched_at=good.fetched_at,
                source=good.source_name, data=good.data, today=history.vietnam_day(now), keep_days=feed.history_keep,
            )
        except OSError as exc:  # the snapshot still goes out; the day is filed by the next table
            logger.warning("history not written feed=%s: %s", feed.name, local_error("history", exc).message)

    def _with_change(self, feed: FeedConfig, good: GoodData) -> dict[str, Any]:
        """Rates: each rate with ``previous`` and ``change`` against the last earlier day archived."""
        if feed.data_kind != "exchange_rates" or not feed.history_keep:
            return good.data
        return history.with_change(good.data, history.previous(self.config.snapshot_dir, feed.name, good.as_of))

    def _drop_bad_locations(
        self, feed: FeedConfig, fetched: GoodData, error: FeedError | None
    ) -> tuple[GoodData | None, FeedError | None]:
        """Weather: a location whose times or numbers cannot be published keeps its previous
        entry (as an unanswered location does); the attempt is then ``partial``.  None when
        no location of this attempt is left (the whole answer is refused)."""
        locations = fetched.data.get("locations")
        if not isinstance(locations, list):
            return fetched, error
        bad: InvalidPayloadError | None = None
        previous: dict[Any, Any] | None = None
        kept: list[Any] = []
        fresh = 0
        for loc in locations:
            try:
                if not isinstance(loc, dict):
                    raise InvalidPayloadError("a location entry is not an object", detail="schema")
                bounds.check_location(loc, fetched.fetched_at)
            except InvalidPayloadError as exc:
                bad = bad or exc
                if previous is None:
                    prev = self.load_good(feed)
                    previous = {
                        entry.get("id"): entry
                        for entry in ((prev.data.get("locations") or []) if prev else [])
                        if isinstance(entry, dict)
                    }
                old = previous.get(loc.get("id")) if isinstance(loc, dict) else None
                if old is not None:
                    kept.append(old)
                continue
            kept.append(loc)
            fresh += 1
        if bad is None:
            return fetched, error
        if not fresh:
            return None, bad
        at = [t for loc in kept if (t := _parse_time(loc.get("fetched_at"))) is not None]
        return (
            replace(fetched, data={**fetched.data, "locations": kept}, fetched_at=min(at, default=fetched.fetched_at)),
            error or bad.with_detail("partial"),
        )

    def _render(
        self,
        feed: FeedConfig,
        status: str,
        good: GoodData | None,
        stale_since: datetime | None,
        next_update_at: datetime | None,
        now: datetime,
        *,
        checked: bool = False,
    ) -> dict[str, Any]:
        """Build the snapshot document and check it: ``InvalidPayloadError`` if it cannot be published.

        ``checked``: ``good`` was checked in this very step (``bounds.check_good``).
        """
        if good is not None and not checked:
            bounds.check_good(good)
        try:
            upstream_since = upstream_stale_since(good.source_name, good.as_of, now) if good else None
            snap = build_snapshot(
                feed=feed.name,
                kind=feed.data_kind,
                status=status,
                generated_at=now,
                fetched_at=good.fetched_at if good else None,
                as_of=good.as_of if good else None,
                stale_since=stale_since,
                next_update_at=next_update_at,
                source_name=good.source_name if good else None,
                # Again here: data stored (or recovered) before the rule is published redacted too.
                source_url=redact_url(good.source_url) if good else None,
                data=self._with_change(feed, good) if good else None,
                upstream_stale_since=upstream_since,
                # The widgets' own judgement of a file the daemon stopped rewriting.
                expires_at=good.fetched_at + timedelta(seconds=feed.max_stale) if good else None,
                widget=feed.widget.for_snapshot(feed.data_kind),
            )
            # Timestamps in [publish] timezone; <feed>.html (and per-location files) with it.
            snap = in_zone(snap, self.config.publish.tz)
        except (ArithmeticError, ValueError, TypeError, AttributeError, KeyError) as exc:
            raise InvalidPayloadError(
                f"the snapshot cannot be built ({type(exc).__name__})", detail="unpublishable"
            ) from None
        problem = bounds.schema_problem(snap)
        if problem is not None:
            raise InvalidPayloadError(f"the snapshot does not match the schema at {problem}", detail="schema")
        return snap

    def _write(self, feed: FeedConfig, snap: dict[str, Any], now: datetime) -> None:
        """Write the snapshot and its companions; a disk fault is ``_NotWritten``."""
        try:
            write_snapshot(
                self.config.snapshot_dir, snap, functools.partial(write_companions, self.config, feed)
            )
        except OSError as exc:
            # Disk full, read-only, rights, a directory where the file should be: the old
            # snapshot stays in place; the feed's health says it was not written.
            raise _NotWritten(snap, local_error("publish", exc)) from None
        self._remember_written(feed, snap)

    def _set_aside(self, feed: FeedConfig, good: GoodData, exc: InvalidPayloadError) -> None:
        """Move stored data that can no longer be published out of the way (one ERROR line)."""
        logger.error(
            "stored data set aside feed=%s kind=invalid_payload detail=%s fetched_at=%s: %s",
            feed.name, exc.detail, _text(good.fetched_at), exc.message,
        )
        with contextlib.suppress(LocalError):
            self.store.set(
                f"setaside/{feed.name}",
                {"at": self.clock.now(), "detail": exc.detail, "reason": exc.message, "good": good},
            )
            if self.store.get(f"good/{feed.name}") is not None:
                self.store.delete(f"good/{feed.name}")

    def _internal(self, feed: FeedConfig, exc: BaseException) -> LocalError:
        """A bug of ours in the publish path, as a classified local fault (no traceback)."""
        logger.error(
            "publish failed feed=%s kind=local detail=publish:internal error=%s: %s",
            feed.name, type(exc).__name__, str(exc)[:200],
        )
        return local_error("publish", "internal")

    # -- never older over newer ----------------------------------------------------------
    def _disk_state(self, feed: FeedConfig) -> tuple[datetime | None, dict[str, datetime]] | None:
        """The published file's ``fetched_at`` (and each weather location's), read only when
        the file changed since we last looked (``os.stat``): one small read after a restart."""
        path = snapshot_path(self.config.snapshot_dir, feed.name)
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        seen = self._on_disk.get(feed.name)
        if seen is not None and seen[0] == key:
            return seen[1], seen[2]
        top, locs = None, {}
        try:
            if st.st_size <= MAX_SNAPSHOT_BYTES:
                doc = json.loads(path.read_bytes())
                if isinstance(doc, dict) and doc.get("feed") == feed.name:
                    top = _parse_time(doc.get("fetched_at"))
                    data = doc.get("data")
                    for loc in (data.get("locations") or []) if isinstance(data, dict) else []:
                        at = _parse_time(loc.get("fetched_at")) if isinstance(loc, dict) else None
                        if at is not None and isinstance(loc.get("id"), str):
                            locs[loc["id"]] = at
        except (OSError, ValueError, RecursionError, AttributeError):
            pass  # unreadable or garbage: nothing newer there
        self._on_disk[feed.name] = (key, top, locs)
        return top, locs

    def _keep_newer(self, feed: FeedConfig, now: datetime) -> None:
        """Load the last good data (recovering it when the store has none) and replace it with
        the published file's where the file is newer (a restart after a cache-write outage)."""
        good = self.load_good(feed)
        newer = self._newer_on_disk(feed, good, now)
        if newer is None:
            return
        self.store.set(f"good/{feed.name}", newer)
        if not self.store.get(f"snapshot/{feed.name}"):
            # The file's own state: its stale_since is kept, its status recomputed.
            rec = read_snapshot(self.config.snapshot_dir, feed)
            if rec is not None:
                self.store.set(
                    f"snapshot/{feed.name}",
                    {"status": rec.status, "stale_since": rec.stale_since, "outcome": None},
                )

    def _remember_written(self, feed: FeedConfig, snap: dict[str, Any]) -> None:
        try:
            st = snapshot_path(self.config.snapshot_dir, feed.name).stat()
        except OSError:
            self._on_disk.pop(feed.name, None)
            return
        data = snap.get("data")
        locs = {
            loc["id"]: at
            for loc in ((data or {}).get("locations") or [])
            if (at := _parse_time(loc.get("fetched_at"))) is not None
        }
        self._on_disk[feed.name] = (
            (st.st_ino, st.st_size, st.st_mtime_ns), _parse_time(snap.get("fetched_at")), locs
        )

    def _newer_on_disk(self, feed: FeedConfig, good: GoodData | None, now: datetime) -> GoodData | None:
        """The published file's data where it is newer than ``good`` (per location for
        weather), or None when ``good`` may be written over it.

        A file time more than a day past the clock (a forged file, a clock far off) is not
        believed; the file's data is taken only if it reads back valid (feeds.recovery).
        """
        state = self._disk_state(feed)
        if state is None or good is None:
            return None
        top, locs = state
        # A file time ahead of the clock is no proof of newer data: the wall clock was stepped
        # back since it was written (NTP, a VM restore), or the file is forged.  Keeping it
        # would refuse every fetch until the clock caught up (issue 16: never silently frozen).
        limit = now + AHEAD_SLACK

        def newer(on_disk: datetime | None, ours: datetime | None) -> bool:
            if on_disk is None or on_disk > limit:
                return False
            return ours is None or on_disk > ours.replace(microsecond=0)

        ours_locs = {
            loc.get("id"): _parse_time(loc.get("fetched_at"))
            for loc in (good.data.get("locations") or [])
            if isinstance(loc, dict)
        } if feed.data_kind == "weather" else {}
        if feed.data_kind == "weather":
            wanted = {loc.id for loc in feed.locations}
            if not any(newer(at, ours_locs.get(lid)) for lid, at in locs.items() if lid in wanted):
                return None
        elif not newer(top, good.fetched_at):
            return None
        rec = read_snapshot(self.config.snapshot_dir, feed)
        if rec is None:
            return None
        try:
            bounds.check_good(rec.good)
        except InvalidPayloadError:
            return None
        if feed.data_kind != "weather":
            if not newer(rec.good.fetched_at, good.fetched_at):
                return None
            logger.warning(
                "published snapshot is newer than the data to publish, kept feed=%s file_fetched_at=%s "
                "data_fetched_at=%s", feed.name, _text(rec.good.fetched_at), _text(good.fetched_at),
            )
            return rec.good
        theirs = {loc["id"]: loc for loc in rec.good.data.get("locations") or []}
        ours = {loc.get("id"): loc for loc in good.data.get("locations") or [] if isinstance(loc, dict)}
        merged: list[dict[str, Any]] = []
        taken = 0
        for loc in feed.locations:
            mine, file_loc = ours.get(loc.id), theirs.get(loc.id)
            if file_loc is not None and newer(_parse_time(file_loc.get("fetched_at")), ours_locs.get(loc.id)):
                merged.append(file_loc)
                taken += 1
            elif mine is not None:
                merged.append(mine)
        if not taken or not merged:
            return None
        logger.warning(
            "published snapshot has newer locations than the data to publish, kept feed=%s locations=%d",
            feed.name, taken,
        )
        as_ofs = [t for t in (good.as_of, rec.good.as_of) if t is not None]
        oldest = min(at for m in merged if (at := _parse_time(m.get("fetched_at"))) is not None)
        return replace(good, data={**good.data, "locations": merged}, fetched_at=oldest,
                       as_of=min(as_ofs) if as_ofs else None)

    def _record_health(
        self,
        feed: FeedConfig,
        started: datetime,
        duration: float,
        got: Got | None,
        error: FeedError | None,
        held: HeldBack | None,
        status: str,
        next_update_at: datetime,
        stale_hosts: list[str],
    ) -> None:
        key = f"health/{feed.name}"
        with contextlib.ExitStack() as stack:
            # Another process holding the cache lock: record anyway (a per-feed key).
            with contextlib.suppress(LocalError):
                stack.enter_context(self.store.lock())
            h: Health = self.store.get(key) or Health(feed=feed.name)
            outcome = "ok" if error is None and held is None else (error.kind if error else "held_back")
            attempts = dict(h.attempts)
            attempts[outcome] = attempts.get(outcome, 0) + 1
            failed = error is not None
            h = h.evolve(
                last_attempt_at=started,
                last_attempt_duration_s=round(duration, 3),
                last_success_at=got.fetched_at if got is not None else h.last_success_at,
                outcome=outcome,
                detail=error.detail if error else (held.reason if held else None),
                message=error.message if error else (
                    f"held back ({held.reason}), next request allowed in {held.wait:.0f}s" if held else None
                ),
                consecutive_failures=h.consecutive_failures + 1 if failed else (
                    h.consecutive_failures if held else 0
                ),
                status=status,
                next_attempt_at=next_update_at,
                source_used=source_module(got.source.kind).SOURCE_NAME if got else h.source_used,
                fallback_used=bool(got and (got.source != feed.source or got.fallback_locations)),
                stale_dns_used=bool(stale_hosts),
                attempts=attempts,
            )
            self.store.set(key, h)

    def _log(
        self, feed: FeedConfig, outcome: str, detail: str | None, duration: float, status: str,
        previous: str | None, error: FeedError | None = None,
    ) -> None:
        args = (feed.name, outcome, detail or "-", duration, status)
        fmt = "attempt feed=%s kind=%s detail=%s duration_s=%.2f status=%s"
        if outcome == "local" and error is not None:
            # Our machine needs an admin: an ERROR line with what failed, once per change.
            if previous != "local":
                logger.error(fmt + ": %s", *args, error.message)
            else:
                logger.debug(fmt, *args)
        elif outcome not in ("ok", "held_back") and previous in (None, "ok", "held_back"):
            logger.warning(fmt, *args)  # started failing
        elif outcome == "ok" and previous not in (None, "ok", "held_back"):
            logger.info("recovered " + fmt, *args)
        else:
            logger.info(fmt, *args)


def _parse_time(text: Any) -> datetime | None:
    """An aware ISO 8601 time from a snapshot, or None."""
    if not isinstance(text, str):
        return None
    try:
        dt = datetime.fromisoformat(text[:40])
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


def _text(dt: datetime | None) -> str:
    try:
        return dt.isoformat() if dt is not None else "-"
    except (ValueError, OverflowError):
        return "?"


class _NotWritten(Exception):
    """The snapshot could not be written (a local fault)."""

    def __init__(self, snapshot: dict[str, Any], error: LocalError) -> None:
        super().__init__(error.message)
        self.snapshot = snapshot
        self.error = error
