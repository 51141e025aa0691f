"""The request pipeline every source's requests go through, the same for all of them:

    politeness (min_interval, Retry-After) -> circuit breaker -> retries within the
    attempt's deadline -> conditional request (ETag/Last-Modified; Expires where the
    source's terms ask for it, capped) -> bounded body (feeds.transport) -> parse
    (the source's ``read`` + ``check``, given as one callable)

Politeness includes the turns of feeds sharing a host (``feeds.politeness``): a feed held
back by another feed's request is owed the host's next turn (``HeldBack("host_turn")`` for
the others meanwhile).  Validators are sanitised (``feeds.transport.clean_validator``:
printable ASCII, at most 1 KB, kept and sent); a 4xx to a conditional request drops them
and asks once unconditionally, as the attempt's retry with its own politeness slot.

``RequestPipeline.get_parsed`` returns the parsed answer or raises a ``FeedError`` (or
``HeldBack`` when politeness or an open circuit kept it from asking); a refused body is kept
(``rejected/<feed>``) for inspection.  The coordinator orchestrates feeds, decides their
status and publishes; it never talks HTTP itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from feeds.clock import Clock
from feeds.config import Config, FeedConfig, SourceConfig
from feeds.decision import fresh_for  # its name here before feeds.decision
from feeds.errors import (
    ConnectError,
    DnsError,
    FeedError,
    HttpStatusError,
    InvalidPayloadError,
    RejectedError,
)
from feeds.models import RequestSpec
from feeds.politeness import HostGuard
from feeds.priority import lower_thread_priority
from feeds.retry import RetryPolicy
from feeds.sources import registry
from feeds.store import Store
from feeds.transport import MAX_VALIDATOR, Fetched, clean_validator, fetch

if TYPE_CHECKING:
    import httpx

__all__ = [
    "EXPIRES_MAX",
    "Got",
    "KEEP_REJECTED",
    "KEEP_REJECTED_BYTES",
    "HeldBack",
    "RequestPipeline",
    "fresh_for",
    "honoured_expires",
    "honours_expires",
    "refuses_validators",
    "usable_validators",
]

#: A body at least this big is parsed in a worker thread: an Open-Meteo batch of 100 locations
#: (~100 KB) takes 20-80 ms to read and check, a peer's weather snapshot far more.  Parsers
#: may use the store (trust, rejected bodies), which is safe from a worker thread.
THREAD_PARSE_BYTES = 32 * 1024
_PARSER: ThreadPoolExecutor | None = None
_PARSER_LOCK = threading.Lock()
#: How much nicer (lower in the kernel's scheduling) the parsing thread is than the process.
#: When the event loop wakes (an answer came in, the next request of a batch is due), the
#: kernel runs it before the parse under way instead of letting the parse go on for a time
#: slice; the parse gets every moment the loop waits.  Nice, not idle: on a server whose CPU
#: other processes keep busy, the parse still gets its share (~10% against one busy process)
#: and the attempt ends within its deadline.  3,000 locations, one core (bench/scale.py): the
#: fetch phase 15-40 ms shorter, the worst loop lag 13-24 -> 9-13 ms (issue 20).
PARSER_NICE = 10


def _parser() -> ThreadPoolExecutor:
    """The one thread big bodies are parsed in (started on first use, at ``PARSER_NICE``)."""
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            _PARSER = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="feeds-parse", initializer=_lower_priority
            )
        return _PARSER


def _lower_priority() -> None:
    """This thread ``PARSER_NICE`` nicer than it is (``feeds.priority``)."""
    lower_thread_priority(PARSER_NICE)


@dataclass
class Got:
    """A successful fetch of one feed, before it is stored (what every fetch strategy returns)."""

    data: dict[str, Any]
    as_of: datetime | None
    source: SourceConfig
    fetched_at: datetime
    oldest_location_at: datetime | None = None
    partial_error: FeedError | None = None
    #: Weather: how many locations a fallback source answered.
    fallback_locations: int = 0
    #: A peer's copy (feeds.peering): the origin's status and stale_since, never bettered.
    origin_status: str | None = None
    origin_stale_since: datetime | None = None
    #: The origin's source, named in our snapshot (else the source module's name).
    source_name: str | None = None
    source_url: str | None = None
    #: Weather: ``id()`` of the entries of ``data["locations"]`` the strategy already checked
    #: (``bounds.check_location`` and ``bounds.location_ok``, while later batches were still on
    #: the wire; issue 20): the publish step does not check them again.  By identity, not by
    #: location id: an entry replaced on the way (a newer one from the file) is checked.
    checked: frozenset[int] = frozenset()


logger = logging.getLogger("feeds.coordinator")  # the same logger name as before the split

#: How many refused bodies are kept per feed for inspection.
KEEP_REJECTED = 5
#: How much of a refused body is kept.
KEEP_REJECTED_BYTES = 64 * 1024
#: How often a feed waiting for another feed's owed turn looks again (within its deadline).
TURN_LOOK = 0.5
#: A request going out this many seconds or more after its host's slot was taken has the
#: host's last request moved to when it went out (``HostGuard.going_out``).
SEND_LATE = 0.05
#: How many times a slot is looked for again within one request, when it was taken meanwhile.
RECLAIMS = 3
#: The longest an ``Expires`` keeps us from asking, whatever the upstream says.
EXPIRES_MAX = 3600.0


class HeldBack(Exception):
    """Politeness (min_interval, Retry-After) or an open circuit kept us from asking."""

    def __init__(self, reason: str, wait: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class _Final(Exception):
    """Stop retrying and fail with an earlier error (politeness forbids another request)."""

    def __init__(self, error: FeedError) -> None:
        super().__init__(error.message)
        self.error = error


def honours_expires(feed: FeedConfig, url: str) -> bool:
    """Whether the source of ``feed`` at ``url`` asks clients to honour ``Expires``."""
    for s in feed.sources:
        if s.url == url:
            try:
                if registry.source(s.kind).HONOURS_EXPIRES:
                    return True
            except ValueError:
                continue
    return False


def honoured_expires(value: str | None, now: datetime, every: float) -> datetime | None:
    """The time before which no request is made, from an ``Expires`` header, or None.

    Capped at ``min(every, EXPIRES_MAX)`` from ``now``: data reused under an ``Expires`` was
    fetched within the feed's current interval, never longer ago (an ``Expires`` in 9999
    once made every later run republish one cached body as fresh, forever).  Unreadable,
    zone-less or past values are None.
    """
    if not value:
        return None
    try:
        expires = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if expires.tzinfo is None or expires <= now:
        return None
    return min(expires, now + timedelta(seconds=min(every, EXPIRES_MAX)))


def usable_validators(cached: Any) -> dict[str, str] | None:
    """The ETag/Last-Modified of a cache entry that may be sent back, or None."""
    if not isinstance(cached, dict):
        return None
    out = {
        key: value
        for key in ("etag", "last_modified")
        if (value := clean_validator(cached.get(key))) is not None
    }
    return out or None


def refuses_validators(exc: HttpStatusError) -> bool:
    """Whether a 4xx to a conditional request may be about its validators.

    408 and 429 are about timing and pace, not the request's headers: they keep their own
    handling (retry, Retry-After).
    """
    return 400 <= exc.status_code < 500 and exc.status_code not in (408, 429)


class RequestPipeline:
    """One per run, shared by every feed: the client, the store's HTTP cache and host state."""

    def __init__(
        self,
        config: Config,
        store: Store,
        client: httpx.AsyncClient,
        clock: Clock,
        retry: RetryPolicy,
        guard: HostGuard,
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.clock = clock
        self.retry = retry
        self.guard = guard

    async def get_parsed(
        self,
        feed: FeedConfig,
        spec: RequestSpec,
        deadline_at: float,
        parse: Callable[[bytes], Any],
        *,
        forced: bool = False,
        errors: list[FeedError] | None = None,
        max_attempts: int | None = None,
        received: Callable[[], None] | None = None,
    ) -> Any:
        """GET with politeness, the breaker, conditional requests and retries; then parse.

        ``received`` is called on the event loop once the body is in, before it is parsed
        (feeds.batching frees the host's slot for the next batch then, not after a parse
        that may queue behind others).

        ``forced`` (``fetch --force``): one request now, whatever politeness, a running
        ``Expires`` or the breaker say.  ``errors`` collects every failure met (the
        coordinator reports the last one when the deadline cuts the attempt).
        ``max_attempts`` bounds the retries of this request.
        """
        import httpx

        host = httpx.URL(spec.url).host
        cache_key = f"http/{spec.url}?{'&'.join(f'{k}={v}' for k, v in spec.params)}"
        raw_cached = self.store.get(cache_key)
        cached: dict[str, Any] | None = raw_cached if isinstance(raw_cached, dict) else None
        # What is sent back: only validators that can be (feeds.transport.clean_validator);
        # an odd one an old cache still holds is dropped here, before any request.
        validators: dict[str, str] | None = usable_validators(cached)
        if cached and any(
            cached.get(k) and (validators or {}).get(k) != cached.get(k) for k in ("etag", "last_modified")
        ):
            logger.info("stored validator dropped feed=%s: not printable ASCII of at most %d bytes",
                        feed.name, MAX_VALIDATOR)
            self.drop_validators(cache_key, keep=validators)
            cached = {**cached, "etag": None, "last_modified": None, **(validators or {})}
        now = self.clock.now()
        # MET Norway: do not ask again before the (capped) Expires the server gave.  An
        # entry from before the cap (no stored_at) or past the cap is not honoured.
        if (
            not forced
            and cached
            and cached.get("expires")
            and cached.get("stored_at")
            and now < cached["expires"]
            # stored "in the future": the clock was stepped back; the entry's age is unknown
            and timedelta(0) <= now - cached["stored_at"] < timedelta(seconds=min(feed.every, EXPIRES_MAX))
            and honours_expires(feed, spec.url)
        ):
            return await self.parse_off_loop(feed, cached["body"], parse)
        breaker = self.guard.breaker(host, now)
        if breaker.state == "open" and not forced:
            left = (breaker.opened_at + self.guard.cooldown - now).total_seconds() if breaker.opened_at else 0.0
            raise HeldBack("circuit_open", max(0.0, left))
        # Half-open: one probe request, not a retried attempt, decides the breaker's fate.
        # A forced attempt is one request too, whatever the breaker says.
        probe_only = breaker.state == "half_open" or forced
        tried: list[FeedError] = []

        async def once() -> Fetched:
            nonlocal validators
            sent = validators
            try:
                return await ask(sent)
            except HttpStatusError as exc:
                if not sent or not refuses_validators(exc):
                    raise
            # The server refused our conditional request (a 400 for a validator it cannot
            # read, a 412, ...): drop the validators for good and ask once unconditionally.
            # That second request is this attempt's retry and a real request like any
            # other: it waits for, and takes, its own politeness slot (one claim per
            # request reaching the host).  Where min_interval does not fit in the deadline
            # (Vietcombank: 5 minutes, 20 s) the 4xx ends this attempt and the next one,
            # with no validators left, is unconditional.
            # A forced attempt and the breaker's half-open probe are one request each: they
            # only drop the validators, and the next attempt asks unconditionally.
            validators = None
            self.drop_validators(cache_key)
            logger.warning(
                "conditional request refused feed=%s status=%s: validators dropped%s",
                feed.name, tried[-1].detail if tried else None,
                "" if probe_only else ", asking unconditionally",
            )
            if probe_only:
                raise tried[-1]
            return await ask(None)

        async def ask(conditional: dict[str, str] | None) -> Fetched:
            if getattr(self.client, "built", True) is False:
                # The run's client is made at its first use (feeds.app.DeferredClient): made
                # now, before the host's slot is taken, so that the slot's time is the
                # request's (a slow first build on a loaded machine put two requests to one
                # host 130-190 ms apart with min_interval 0.5 s).
                self.client.build()  # type: ignore[attr-defined]
            remaining = deadline_at - self.clock.monotonic()
            now = self.clock.now()
            # The usual case, a free host: one claim reads the host's records once each, under
            # its lock (each read is a round trip to SQLite on the event loop; issue 20).
            claimed = None if forced else self.guard.claim_slot(host, feed.min_interval, now, feed=feed.name)
            if claimed is None:
                wait, reason = 0.0, "min_interval"
                if not forced:
                    wait, reason = self._host_wait(host, feed, now)
                    # A turn owed to another feed ends as soon as that feed has asked, usually
                    # long before its latest return: look again within this attempt's deadline
                    # rather than give the whole run up (three feeds owing each other turns held
                    # one back two runs in a row, and its data went stale with a healthy upstream).
                    while reason == "host_turn" and wait >= remaining - 1:
                        look = min(TURN_LOOK, remaining - 1)
                        if look <= 0:
                            break
                        await self.clock.sleep(look)
                        remaining = deadline_at - self.clock.monotonic()
                        now = self.clock.now()
                        wait, reason = self._host_wait(host, feed, now)
                if wait > 0:
                    # Held back by another feed of the host (its request, or a turn owed to it):
                    # this feed is owed the next turn (feeds.politeness, "Turns").
                    other = reason == "host_turn" or self.guard.blocked_by_other(host, feed.name)
                    if wait < remaining - 1:
                        if other:
                            self.guard.owe_turn(
                                host, feed.name, now, now + timedelta(seconds=wait),
                                now + timedelta(seconds=remaining), feed.min_interval,
                            )
                        await self.clock.sleep(wait)
                    else:
                        if other:
                            self.owe_next_run(host, feed, now, wait)
                        if tried:
                            raise _Final(tried[-1])
                        raise HeldBack(reason, wait)
                claimed = self.guard.claim_slot(
                    host, feed.min_interval, self.clock.now(), force=forced, feed=feed.name
                )
                for _ in range(RECLAIMS):
                    if claimed is not None:
                        break
                    # Taken meanwhile: another feed or process, or a request that went out
                    # late and was spaced from then (``guard.going_out``).  Its turn again
                    # when that fits in this attempt.
                    now = self.clock.now()
                    wait, reason = self._host_wait(host, feed, now)
                    remaining = deadline_at - self.clock.monotonic()
                    if reason != "min_interval" or not 0 < wait < remaining - 1:
                        break
                    await self.clock.sleep(wait)
                    claimed = self.guard.claim_slot(host, feed.min_interval, self.clock.now(), feed=feed.name)
                if claimed is None:
                    # Taken meanwhile (another feed, another process) or owed to another feed.
                    if tried:
                        raise _Final(tried[-1])
                    raise HeldBack("min_interval", feed.min_interval)
            before, place = claimed.previous, claimed.turn
            if place is not None and place.owed is not None and place.owed["until"] > now:
                # Served on a turn owed to it: the contention is likely to last, so its next
                # run is owed a turn too (lapses if it does not come, changes nothing if no
                # other feed wants the host).
                self.owe_next_run(host, feed, self.clock.now(), 0.0)
            slot_at, slot_mono = self.clock.now(), self.clock.monotonic()

            async def going_out() -> None:
                """The request's bytes go out now: spaced from here if that is well after the
                slot was taken (a slow lookup, a TLS handshake, a loaded machine)."""
                if forced or feed.min_interval <= 0 or self.clock.monotonic() - slot_mono < SEND_LATE:
                    return
                for _ in range(RECLAIMS):
                    wait = self.guard.going_out(host, feed.min_interval, slot_at, self.clock.now())
                    if wait <= 0:
                        return
                    await self.clock.sleep(wait)

            try:
                return await fetch(
                    self.client,
                    spec,
                    on_send=going_out,
                    timeout=max(0.1, min(feed.timeout, deadline_at - self.clock.monotonic())),
                    max_body=self.config.max_body,
                    validators=conditional,
                    now=self.clock.now(),
                    retry_after_max=self.config.retry_after_max,
                    follow_redirects_to=self.config.follow_redirects_to,
                )
            except FeedError as exc:
                tried.append(exc)
                if errors is not None:
                    errors.append(exc)
                if isinstance(exc, DnsError) or (
                    isinstance(exc, ConnectError) and exc.detail == "refused"
                ):
                    self.guard.release(host, before, place)  # never reached the host
                if isinstance(exc, HttpStatusError) and exc.retry_after is not None:
                    left = deadline_at - self.clock.monotonic()
                    if exc.retry_after >= left:
                        self.guard.defer(host, self.clock.now() + timedelta(seconds=exc.retry_after))
                raise

        try:
            got: Fetched = await self.retry.call(
                once, deadline_at=deadline_at, feed=feed.name, max_attempts=1 if probe_only else max_attempts
            )
        except _Final as f:
            self.guard.record_result(host, False, self.clock.now(), f.error.kind)
            raise f.error from None
        except FeedError as exc:
            self.guard.record_result(host, False, self.clock.now(), exc.kind)
            raise
        if got.validators_dropped:
            self.drop_validators(cache_key)
        kept_body = cached.get("body") if cached else None
        body = kept_body if got.not_modified and isinstance(kept_body, bytes) else got.body
        if received is not None:
            received()
        try:
            result = await self.parse_off_loop(feed, body, parse)
        except FeedError as exc:
            self.guard.record_result(host, False, self.clock.now(), exc.kind)
            raise
        self.guard.record_result(host, True, self.clock.now())
        self.remember_validators(cache_key, got, body, feed, spec.url, had_entry=raw_cached is not None)
        return result

    def _host_wait(self, host: str, feed: FeedConfig, now: datetime) -> tuple[float, str]:
        """Seconds until ``feed`` may ask ``host``, and why: its window, or another's turn."""
        wait = self.guard.wait_needed(host, feed.min_interval, now)
        turn = self.guard.turn_wait(host, feed.name, now)
        return (turn, "host_turn") if turn > wait else (wait, "min_interval")

    def owe_next_run(self, host: str, feed: FeedConfig, now: datetime, wait: float) -> None:
        """``feed``'s attempt ends held back by another feed: owe it the turn at its next run.

        Its next run comes on the grid (feeds.schedule): ``every`` later, give or take the
        jitter (a tenth of the interval, at most 2 minutes), and ends within its deadline.
        """
        jitter = min(feed.every * 0.1, 120.0)
        earliest = now + timedelta(seconds=max(wait, feed.every - jitter))
        until = now + timedelta(seconds=max(wait, feed.every + jitter) + feed.deadline)
        self.guard.owe_turn(host, feed.name, now, earliest, until, feed.min_interval)

    async def parse_off_loop(self, feed: FeedConfig, body: bytes, parse: Callable[[bytes], Any]) -> Any:
        """``parse_or_keep``; a body of ``THREAD_PARSE_BYTES`` or more in a worker thread, so
        reading and checking it never holds up the event loop (issue 20)."""
        if len(body) < THREAD_PARSE_BYTES:
            return self.parse_or_keep(feed, body, parse)
        # One parsing thread for every feed: more threads would only queue for the GIL, and
        # the event loop with them (each waiting thread holds it for a switch interval).
        call = functools.partial(contextvars.copy_context().run, self.parse_or_keep, feed, body, parse)
        return await asyncio.get_running_loop().run_in_executor(_parser(), call)

    def parse_or_keep(self, feed: FeedConfig, body: bytes, parse: Callable[[bytes], Any]) -> Any:
        """Parse ``body``; keep it when refused; a parser bug becomes ``parser_error``."""
        try:
            return parse(body)
        except (InvalidPayloadError, RejectedError) as exc:
            self.keep_rejected(feed, body, exc)
            raise
        except Exception as exc:  # a parser bug must not take the daemon down (last defence)
            logger.exception("parser failed feed=%s", feed.name)
            err = InvalidPayloadError("the answer could not be parsed", detail="parser_error")
            self.keep_rejected(feed, body, err)
            raise err from exc

    def remember_validators(
        self, key: str, got: Fetched, body: bytes, feed: FeedConfig | None = None, url: str = "",
        *, had_entry: bool = True,
    ) -> None:
        """Keep ETag/Last-Modified (and a capped Expires where honoured) with the body.

        Only validators that can be sent back as they came are kept: printable ASCII, at
        most 1 KB (``clean_validator``).  Anything else is dropped here, with one INFO line.
        An answer without any drops the entry kept for ``key``, if there was one (``had_entry``).
        """
        h = {k.lower(): v for k, v in got.headers.items()}
        etag, lm = clean_validator(h.get("etag")), clean_validator(h.get("last-modified"))
        for name, raw, kept in (("etag", h.get("etag"), etag), ("last_modified", h.get("last-modified"), lm)):
            if raw and kept is None:
                logger.info(
                    "validator dropped feed=%s header=%s size=%d: not printable ASCII of at most %d bytes",
                    feed.name if feed else "", name, len(raw), MAX_VALIDATOR,
                )
        expires = (
            honoured_expires(h.get("expires"), self.clock.now(), feed.every)
            if feed is not None and honours_expires(feed, url)
            else None
        )
        if etag or lm or expires:
            self.store.set(
                key,
                {"etag": etag, "last_modified": lm, "expires": expires, "body": body,
                 "stored_at": self.clock.now()},
            )
        elif not got.not_modified and had_entry:
            self.store.delete(key)

    def drop_validators(self, key: str, keep: dict[str, str] | None = None) -> None:
        """Forget the validators kept for ``key``, but those in ``keep`` (the body and a
        running Expires stay)."""
        cached = self.store.get(key)
        if isinstance(cached, dict) and (cached.get("etag") or cached.get("last_modified")):
            self.store.set(key, {**cached, "etag": None, "last_modified": None, **(keep or {})})

    def keep_rejected(self, feed: FeedConfig, body: bytes, exc: FeedError) -> None:
        """Keep the last few refused bodies of a feed (never published)."""
        key = f"rejected/{feed.name}"
        kept: list[dict[str, Any]] = list(self.store.get(key) or [])
        kept.append(
            {
                "at": self.clock.now(),
                "kind": exc.kind,
                "detail": exc.detail,
                "size": len(body),
                "body": body[:KEEP_REJECTED_BYTES],
            }
        )
        self.store.set(key, kept[-KEEP_REJECTED:])
