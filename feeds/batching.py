"""Weather at scale: concurrent batches under a per-host limit, and per-location failover.

One weather attempt (``fetch_weather``):

1. **Primary, concurrently.** The primary source's batches (Open-Meteo: up to
   ``batch_size`` locations per request) run at the same time, at most
   ``[http] per_host_concurrency`` requests in flight per host (a polite default of 10;
   the limit is shared by every feed of the attempt's event loop).  Each batch keeps its own
   retries (``RetryPolicy``) within the phase's time.
2. **A bounded share.** When the feed has a fallback, the primary gets ``primary_share`` of
   the time left (default 0.5), and a failing batch is tried twice (one retry), not until
   the share is spent, so a failing primary can no longer eat the whole deadline.
   Batches still running at the end of their phase are cancelled; batches already fetched
   are **kept** -- the deadline never throws away data already received.
3. **Per-location failover.** Locations the primary did not answer (a failed batch, a held
   back host, a batch cut by the phase end) are asked of the fallback sources in order,
   concurrently within each source's published rate limit (``MAX_REQUESTS_PER_SECOND`` of
   the source module; MET Norway: 20 requests/s per application).  They are asked **oldest
   first** (never fetched, then by the age of their last good entry): a fallback too slow
   for every location in one attempt refreshes the oldest ones and the next attempt carries
   on with the rest.
4. **Merge.** Locations still unanswered keep their own last good entry and ``fetched_at``,
   as a partial answer always did.

Every request goes through the attempt's one-request path (``feeds.attempt.Attempt``:
politeness, breaker, conditional requests, retries, rejected-body keeping, feeds.pipeline),
so this module only decides what is asked, when, and how many at once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from feeds import bounds
from feeds.clock import Clock
from feeds.errors import FeedError, FetchTimeoutError, InvalidPayloadError
from feeds.models import Location, LocationWeather, isoformat
from feeds.pipeline import Got, HeldBack

if TYPE_CHECKING:
    from feeds.attempt import Attempt
    from feeds.config import SourceConfig

__all__ = [
    "DEFAULT_PER_HOST_CONCURRENCY",
    "DEFAULT_PRIMARY_SHARE",
    "HostLimits",
    "RateLimiter",
    "fetch_weather",
    "oldest_first",
    "run_until",
]

T = TypeVar("T")

#: Locations merged between two yields to the event loop (~5 ms of work each).
MERGE_STEP = 250

#: In-flight requests per upstream host: enough for 3,000 locations (30 batches) in a few
#: round trips, few enough to stay a polite client of a public API.
DEFAULT_PER_HOST_CONCURRENCY = 10
#: The primary's share of the attempt's time when a fallback exists.
DEFAULT_PRIMARY_SHARE = 0.5
#: Tries of one primary batch when a fallback exists (one retry for a passing fault).
PRIMARY_ATTEMPTS_WITH_FALLBACK = 2


def end_margin(deadline: float) -> float:
    """Time kept back at the end of an attempt to merge what was fetched and hand it over."""
    return min(0.5, deadline * 0.05)


class RateLimiter:
    """At most ``rate`` request starts per second, paced evenly, on the injected clock.

    The pacing sleep happens under a lock, so concurrent callers queue in order and a fake
    clock advances exactly as a real one would.
    """

    def __init__(self, rate: float, clock: Clock) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self._next = float("-inf")
        self._lock = asyncio.Lock()

    async def acquire(self, until: float = float("inf")) -> bool:
        """Wait for the next slot; False (without waiting) when it would come at ``until`` or later."""
        async with self._lock:
            now = self.clock.monotonic()
            if max(now, self._next) >= until:
                return False
            wait = self._next - now
            if wait > 0:
                await self.clock.sleep(wait)
                now = self.clock.monotonic()
            self._next = max(now, self._next) + self.interval
            return True


class HostLimits:
    """Per-host semaphores and rate limiters, one set per event loop (loops do not share them)."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, Any]
        ] = weakref.WeakKeyDictionary()

    def _slots(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        slots = self._per_loop.get(loop)
        if slots is None:
            slots = {}
            self._per_loop[loop] = slots
        return slots

    def semaphore(self, host: str) -> asyncio.Semaphore:
        slots = self._slots()
        key = f"sem/{host}"
        if key not in slots:
            slots[key] = asyncio.Semaphore(self.concurrency)
        sem: asyncio.Semaphore = slots[key]
        return sem

    def rate(self, host: str, per_second: float | None, clock: Clock) -> RateLimiter | None:
        if not per_second:
            return None
        slots = self._slots()
        key = f"rate/{host}"
        if key not in slots:
            slots[key] = RateLimiter(per_second, clock)
        lim: RateLimiter = slots[key]
        return lim


async def run_until(
    jobs: Sequence[Callable[[], Awaitable[T]]], *, clock: Clock, until: float
) -> list[T | BaseException | None]:
    """Run every job concurrently; at ``until`` (clock.monotonic) cancel what still runs.

    Returns one entry per job: its result, the exception it raised, or None when it was
    cut off by the end of the phase.  Finished jobs are never discarded.
    """
    if not jobs:
        return []
    tasks = [asyncio.ensure_future(job()) for job in jobs]
    timeout = max(0.0, until - clock.monotonic())
    try:
        await asyncio.wait(tasks, timeout=timeout)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        # Let the cancelled ones unwind (close their connections) before we go on.
        await asyncio.gather(*tasks, return_exceptions=True)
    out: list[T | BaseException | None] = []
    for t in tasks:
        if t.cancelled():
            out.append(None)
        elif t.exception() is not None:
            out.append(t.exception())
        else:
            out.append(t.result())
    return out


def oldest_first(
    locations: Sequence[Location], last_fetched: dict[str, datetime]
) -> list[Location]:
    """Never-fetched locations first (in feed order), then by their last good fetch, oldest first."""
    never = [loc for loc in locations if loc.id not in last_fetched]
    known = sorted(
        (loc for loc in locations if loc.id in last_fetched), key=lambda loc: last_fetched[loc.id]
    )
    return never + known


#: Per location of one answer: its id, its upstream time (``as_of``), its snapshot entry and
#: whether that entry passed the publish step's checks (``_entry``).
Fresh = tuple[str, datetime | None, dict[str, Any], bool]


def _entry(lw: LocationWeather, at: datetime) -> tuple[dict[str, Any], bool]:
    """A location's snapshot entry (fetched_at ``at``) and whether it passed the publish step's
    checks of an entry (``bounds.check_location``, ``bounds.location_ok``)."""
    entry = lw.to_data(at)
    try:
        bounds.check_location(entry, at)
    except InvalidPayloadError:
        return entry, False  # the publish step drops it (its previous entry is kept)
    return entry, bounds.location_ok(entry)


#: A source's requests for a feed's whole list of locations, made once per configuration (its
#: coordinates formatted for 3,000 places took ~3 ms before the first request; issue 20):
#: (source module, url, user agent, batch size) -> (the locations, their requests).
_REQUESTS: dict[tuple[str, str, str, int], tuple[Sequence[Location], Any]] = {}


def _requests(mod: Any, url: str, locations: Sequence[Location], user_agent: str, batch_size: int) -> Any:
    """``mod.requests(...)``, remembered while ``locations`` is the very same sequence."""
    key = (mod.__name__, url, user_agent, batch_size)
    known = _REQUESTS.get(key)
    if known is not None and known[0] is locations:
        return known[1]
    batches = mod.requests(url, locations, user_agent=user_agent, batch_size=batch_size)
    if isinstance(locations, tuple):  # immutable: safe to remember by identity
        if len(_REQUESTS) >= 64:
            _REQUESTS.clear()
        _REQUESTS[key] = (locations, batches)
    return batches


async def _ask(
    attempt: Attempt,
    limits: HostLimits,
    source: SourceConfig,
    locations: Sequence[Location],
    until: float,
    max_attempts: int | None = None,
) -> tuple[dict[str, tuple[datetime | None, dict[str, Any], bool, datetime]], list[FeedError | HeldBack]]:
    """Ask one source for ``locations``, concurrently, until ``until``; keep what came back:
    per location id, its parsed weather, its snapshot entry, whether that entry passed the
    publish step's checks and the time it was checked with (``_entry``)."""
    import httpx

    from feeds.sources import registry

    feed = attempt.feed
    mod = registry.source(source.kind)
    batches = _requests(mod, source.url, locations, attempt.config.user_agent, feed.batch_size)
    host = httpx.URL(source.url).host
    sem = limits.semaphore(host)
    limiter = limits.rate(host, getattr(mod, "MAX_REQUESTS_PER_SECOND", None), attempt.clock)
    loop = asyncio.get_running_loop()
    #: ``read`` + ``check`` + ``_entry`` of a common answer in one pass, where the source has it.
    fast: Callable[[bytes, Sequence[Location], datetime], list[Fresh] | None] | None = getattr(
        mod, "fast_entries", None
    )

    def job(spec: Any, locs: tuple[Location, ...]) -> Callable[[], Awaitable[Any]]:
        held = False

        def free_slot() -> None:
            nonlocal held
            if held:
                held = False
                sem.release()

        def parse(body: bytes) -> Any:
            # A big body is parsed in a worker thread (feeds.pipeline): the slot was freed on
            # the loop when the body came in (``received``), before its turn in that thread.
            loop.call_soon_threadsafe(free_slot)  # a cached body: no ``received`` call
            if fast is not None:
                # The common answer in one pass; anything else by the three steps below.
                at = attempt.clock.now()
                entries = fast(body, locs, at)
                if entries is not None:
                    return entries, at
            parsed = mod.read(body, locs)
            mod.check(parsed, previous=None, max_change=feed.max_change, asked=[loc.id for loc in locs])
            # Each location's snapshot entry made and checked here, while later batches are
            # still on the wire, not all 3,000 after the last one (issue 20).  It is checked
            # with fetched_at = now; the merge sets the attempt's fetched_at, later still
            # (a clock stepped back meanwhile: the publish step checks every entry again).
            at = attempt.clock.now()
            return [(lw.location.id, lw.as_of, *_entry(lw, at)) for lw in parsed], at

        async def go() -> Any:
            nonlocal held
            await sem.acquire()
            held = True
            try:
                if limiter is not None and not await limiter.acquire(until):
                    return None  # no slot left in this phase
                if attempt.clock.monotonic() >= until:
                    return None  # the phase ended while this batch waited for its turn
                return await attempt.get_parsed(spec, until, parse, max_attempts=max_attempts, received=free_slot)
            finally:
                free_slot()

        return go

    results = await run_until([job(spec, locs) for spec, locs in batches], clock=attempt.clock, until=until)

    fresh: dict[str, tuple[datetime | None, dict[str, Any], bool, datetime]] = {}
    errors: list[FeedError | HeldBack] = []
    for res in results:
        if isinstance(res, FeedError | HeldBack):
            errors.append(res)
        elif isinstance(res, BaseException):
            # A bug of ours in one batch must not lose the others.
            import logging

            logging.getLogger(__name__).error(
                "batch failed feed=%s error=%s", feed.name, type(res).__name__
            )
            errors.append(InvalidPayloadError("the answer could not be handled", detail="parser_error"))
        elif res is not None:
            entries, at = res
            for lid, as_of, entry, ok in entries:
                fresh[lid] = (as_of, entry, ok, at)
    return fresh, errors


async def fetch_weather(
    attempt: Attempt, limits: HostLimits, sources: Sequence[SourceConfig] | None = None
) -> Got:
    """One weather attempt over ``sources`` (default: the feed's), at most ``limits`` per host;
    see the module docstring."""

    feed = attempt.feed
    clock = attempt.clock
    end = attempt.deadline_at - end_margin(feed.deadline)
    # The last good data, for the merge: read off the event loop (3,000 stored locations are
    # ~3 MB), while the requests go out rather than before them (issue 20).
    loading = asyncio.ensure_future(asyncio.to_thread(attempt.load_good))
    loading.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, if unused
    kept: dict[str, dict[str, Any]] | None = None

    async def previous_locations() -> dict[str, dict[str, Any]]:
        nonlocal kept
        if kept is None:
            previous = await loading
            kept = {loc["id"]: loc for loc in (previous.data["locations"] if previous else [])}
        return kept

    fresh: dict[str, tuple[datetime | None, dict[str, Any], bool, datetime]] = {}
    used: dict[str, SourceConfig] = {}
    errors: list[FeedError | HeldBack] = []

    sources = tuple(feed.sources if sources is None else sources)
    for i, source in enumerate(sources):
        missing = [loc for loc in feed.locations if loc.id not in fresh]
        now_m = clock.monotonic()
        if not missing or now_m >= end:
            break
        attempts: int | None = None
        if i == 0:
            until = now_m + (end - now_m) * feed.primary_share if len(sources) > 1 else end
            # Nothing fetched yet: the feed's own tuple (its requests are remembered).
            asked: Sequence[Location] = feed.locations if len(missing) == len(feed.locations) else missing
            if len(sources) > 1:
                # With a fallback behind it, a failing batch is tried twice, not until its
                # share is spent: its locations go to the fallback while there is time.
                attempts = PRIMARY_ATTEMPTS_WITH_FALLBACK
        else:
            until = end
            last = {
                lid: datetime.fromisoformat(entry["fetched_at"])
                for lid, entry in (await previous_locations()).items()
                if isinstance(entry.get("fetched_at"), str)
            }
            asked = oldest_first(missing, last)
        got, errs = await _ask(attempt, limits, source, asked, until, attempts)
        errors.extend(errs)
        for lid, lw in got.items():
            fresh[lid] = lw
            used[lid] = source

    if not fresh:
        feed_errors = [e for e in errors if isinstance(e, FeedError)]
        if feed_errors:
            raise feed_errors[0]
        if errors:
            raise errors[0]
        raise FetchTimeoutError("the attempt's deadline passed", detail="deadline")

    old = await previous_locations()
    now = clock.now()
    now_text = isoformat(now) or ""
    merged: list[dict[str, Any]] = []
    checked: set[int] = set()
    for n, loc in enumerate(feed.locations, 1):
        if loc.id in fresh:
            _, entry, ok, at = fresh[loc.id]
            entry["fetched_at"] = now_text
            merged.append(entry)
            if ok and at <= now:  # checked against an earlier (or the same) fetched_at: holds now
                checked.add(id(entry))
        elif loc.id in old:
            merged.append(old[loc.id])
        if n % MERGE_STEP == 0:
            await asyncio.sleep(0)  # thousands of locations: let the loop breathe between steps
    # Every fresh entry has fetched_at == now_text: only the kept ones' times are read again.
    oldest = min(
        (datetime.fromisoformat(m["fetched_at"]) for m in merged if m["fetched_at"] != now_text),
        default=datetime.fromisoformat(now_text),
    )
    if fresh:
        oldest = min(oldest, datetime.fromisoformat(now_text))
    as_ofs = [as_of for as_of, *_ in fresh.values() if as_of is not None]
    # The snapshot names the source that answered most of this attempt's locations.
    counts: dict[SourceConfig, int] = {}
    for src in used.values():
        counts[src] = counts.get(src, 0) + 1
    source = max(sources, key=lambda s: (counts.get(s, 0), -sources.index(s)))
    partial: FeedError | None = None
    if len(fresh) < len(feed.locations):
        first = next((e for e in errors if isinstance(e, FeedError)), None)
        partial = (
            first.with_detail("partial")
            if first is not None
            else FetchTimeoutError("some locations were not answered in time", detail="partial")
        )
    return Got(
        {"locations": merged}, min(as_ofs) if as_ofs else None, source, now, oldest, partial,
        fallback_locations=sum(1 for s in used.values() if s != sources[0]),
        checked=frozenset(checked),
    )
