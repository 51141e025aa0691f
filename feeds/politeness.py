"""Per-host politeness and circuit breaking, persisted in the store.

Politeness: requests that reach a host are spaced by at least the feed's ``min_interval``
(Vietcombank: "Only one request every 5 minutes!"), across retries, separate ``fetch``
runs, feeds sharing the host and restarts -- the time of the last request is kept in the
store under ``polite/<host>``.  A ``Retry-After`` that did not fit in an attempt's deadline
becomes a ``not_before`` for the host, honoured the same way.  Requests that never reached
the host (DNS or connect failures) do not count.

Turns (``turns/<host>``): feeds sharing a host each get their turn.  A feed held back
because *another* feed of the host has just taken the slot is owed the host's next turn:
until it is back (its next run: at the earliest ``every`` minus the grid's jitter, at the
latest ``every`` plus jitter plus its deadline) the other feeds take only slots that leave
the host quiet for *its* ``min_interval`` by its earliest return (a weather feed with none,
asking every second, starved a rates feed that needs five quiet seconds), and when several
feeds are owed a turn, the one served longest ago goes first.  A feed served on an owed
turn is owed its next run as well (the pipeline renews it): the contention usually lasts,
and a feed that had to wait once should not have to lose every other run.  Without this,
two feeds whose runs fall a minute apart on a host with a 5-minute ``min_interval`` (or a
busier feed beside a quieter one) let one of them take every slot and the other none.  A turn is only owed, never a licence:
the one-request-per-``min_interval`` rule is checked first, and ``fetch --force`` ignores
turns as it ignores the window.  A turn owed to a feed that never comes back (removed by a
reload) lapses at its latest return.

Circuit breaker (``breaker/<host>``): after ``threshold`` consecutive failed attempts the
host is left alone for ``cooldown`` seconds (open); then one attempt is let through
(half-open); its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from feeds.clock import AHEAD_SLACK
from feeds.store import Store

__all__ = [
    "DEFAULT_BREAKER_COOLDOWN",
    "DEFAULT_BREAKER_THRESHOLD",
    "BreakerState",
    "Claimed",
    "FeedTurn",
    "HostGuard",
    "HostState",
]

DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_COOLDOWN = 600.0
#: ``[http] retry_after_max``'s default: no ``not_before`` lies further ahead than this.
DEFAULT_RETRY_AFTER_MAX = 3600.0


@dataclass(frozen=True)
class HostState:
    """Politeness state of one host."""

    last_request_at: datetime | None = None
    not_before: datetime | None = None


@dataclass(frozen=True)
class FeedTurn:
    """One feed's place among the feeds sharing a host: last served, and a turn owed to it."""

    feed: str
    served_at: datetime | None = None
    owed: dict[str, datetime] | None = None


@dataclass(frozen=True)
class Claimed:
    """A request slot taken (``HostGuard.claim_slot``): the host's state and the feed's turn
    before it was taken."""

    previous: HostState
    turn: FeedTurn | None


@dataclass(frozen=True)
class BreakerState:
    """Circuit breaker state of one host: ``closed``, ``open`` or ``half_open``."""

    state: str = "closed"
    failures: int = 0
    opened_at: datetime | None = None
    last_kind: str | None = None


class HostGuard:
    """Decides whether a host may be asked now, and remembers what happened."""

    def __init__(
        self,
        store: Store,
        *,
        breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
        breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN,
        retry_after_max: float = DEFAULT_RETRY_AFTER_MAX,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.threshold = breaker_threshold
        self.cooldown = timedelta(seconds=breaker_cooldown)
        #: The longest a ``not_before`` can legitimately lie ahead (``[http] retry_after_max``).
        self.retry_after_max = timedelta(seconds=retry_after_max)
        #: Our own requests on the monotonic clock (this process): after a wall-clock step
        #: back, the time since the last request is still known exactly.
        self._monotonic = monotonic
        self._requested: dict[str, float] = {}

    # -- politeness -------------------------------------------------------------------
    def host_state(self, host: str) -> HostState:
        raw: dict[str, Any] = self.store.get(f"polite/{host}") or {}
        return HostState(raw.get("last_request_at"), raw.get("not_before"))

    def wait_needed(self, host: str, min_interval: float, now: datetime, state: HostState | None = None) -> float:
        """Seconds until a request to ``host`` is allowed (0 = now); ``state``: the host's
        state just read (``host_state``), else it is read here."""
        st = state if state is not None else self.host_state(host)
        waits = [0.0]
        if st.last_request_at is not None and min_interval > 0:
            if st.last_request_at <= now + AHEAD_SLACK:
                waits.append((st.last_request_at + timedelta(seconds=min_interval) - now).total_seconds())
            else:
                # The last request lies ahead: the wall clock was stepped back.  Waiting for
                # the clock to catch up would stop the host for the size of the step; the
                # monotonic clock says how long ago our own last request was (another
                # process's is unknown: one interval from now, at most).
                waits.append(self._since_step(host, min_interval))
        if st.not_before is not None:
            ahead = st.not_before - now
            # Further ahead than any Retry-After we keep: the clock was stepped back.
            waits.append(min(ahead, self.retry_after_max).total_seconds())
        return max(waits)

    def _since_step(self, host: str, min_interval: float) -> float:
        mono = self._monotonic() if self._monotonic is not None else None
        last = self._requested.get(host)
        if mono is None or last is None:
            return 0.0
        return max(0.0, min_interval - (mono - last))

    def claim(
        self, host: str, min_interval: float, now: datetime, *, force: bool = False, feed: str = ""
    ) -> bool:
        """Atomically take the host's next request slot; False if it is not free yet.

        ``feed`` names who asks: a slot owed to another feed of the host (see the module
        docstring) is not free for it.  ``force`` (``fetch --force``) takes it anyway; the
        window starts again from now.
        """
        return self.claim_slot(host, min_interval, now, force=force, feed=feed) is not None

    def claim_slot(
        self, host: str, min_interval: float, now: datetime, *, force: bool = False, feed: str = ""
    ) -> Claimed | None:
        """``claim``, saying what it took the slot from: the host's state and ``feed``'s
        turn as they were, read under the same lock (what ``release`` gives back); None if
        the slot is not free."""
        with self.store.lock():
            # Each record read once under the lock (each read is a round trip to SQLite on
            # the event loop: issue 20).
            st = self.host_state(host)
            if not force and self.wait_needed(host, min_interval, now, st) > 0:
                return None
            turns = self._turns(host) if feed else None
            if not force and turns is not None and self.turn_wait(host, feed, now, turns) > 0:
                return None
            turn = (
                FeedTurn(feed, turns["served"].get(feed), turns["owed"].get(feed)) if turns is not None else None
            )
            not_before = st.not_before
            if not_before is not None and not_before - now > self.retry_after_max:
                not_before = now + self.retry_after_max  # the clock was stepped back
            self.store.set(f"polite/{host}", {"last_request_at": now, "not_before": not_before})
            if self._monotonic is not None:
                self._requested[host] = self._monotonic()
            if turns is not None:
                turns["served"][feed] = now
                turns["owed"].pop(feed, None)
                turns["owed"] = {k: v for k, v in turns["owed"].items() if v["until"] > now}
                self.store.set(f"turns/{host}", turns)
            return Claimed(st, turn)

    def going_out(self, host: str, min_interval: float, claimed_at: datetime, now: datetime) -> float:
        """A request whose slot was taken at ``claimed_at`` goes out only ``now`` (its
        connection took that long): 0 once the host's last request is recorded as ``now``, so
        the next one is spaced from it; or the seconds to wait first, when another request
        to the host took the slot since (it may already be out).  At most ``min_interval``:
        a wall-clock step cannot hold it longer."""
        with self.store.lock():
            st = self.host_state(host)
            last = st.last_request_at
            if last is not None and last > claimed_at and last <= now + AHEAD_SLACK:
                wait = (last + timedelta(seconds=min_interval) - now).total_seconds()
                if wait > 0:
                    return min(wait, min_interval)
            self.store.set(
                f"polite/{host}",
                {"last_request_at": max(now, last) if last is not None and last <= now + AHEAD_SLACK else now,
                 "not_before": st.not_before},
            )
            if self._monotonic is not None:
                self._requested[host] = self._monotonic()
            return 0.0

    # -- turns of the feeds sharing a host ----------------------------------------------
    def _turns(self, host: str) -> dict[str, dict[str, Any]]:
        """``turns/<host>``, with anything unreadable (an old or damaged cache) left out."""
        raw = self.store.get(f"turns/{host}")
        raw = raw if isinstance(raw, dict) else {}
        served_raw = raw.get("served")
        owed_raw = raw.get("owed")
        served_raw = served_raw if isinstance(served_raw, dict) else {}
        owed_raw = owed_raw if isinstance(owed_raw, dict) else {}
        served = {k: v for k, v in served_raw.items() if isinstance(v, datetime)}
        owed = {
            k: v
            for k, v in owed_raw.items()
            if isinstance(v, dict) and all(isinstance(v.get(f), datetime) for f in ("since", "quiet_from", "until"))
        }
        return {"served": served, "owed": owed}

    def blocked_by_other(self, host: str, feed: str) -> bool:
        """Whether the host's last request was another feed's (so ``feed`` waits for it)."""
        served = self._turns(host)["served"]
        if not served:
            return False
        return max(served, key=lambda k: served[k]) != feed

    def turn_wait(
        self, host: str, feed: str, now: datetime, turns: dict[str, dict[str, Any]] | None = None
    ) -> float:
        """Seconds ``feed`` leaves the host to a feed owed its turn (0: none is in the way).

        Another feed's owed turn holds ``feed`` back when that feed goes first (served longer
        ago, or owed for longer) and a request now would keep the host busy past its
        earliest return *by that feed's* ``min_interval`` (a feed with none must not keep
        the host busy for one that needs five quiet minutes).  The wait lasts until that
        turn lapses (its latest return); a request by the owed feed ends it sooner.
        """
        turns = turns if turns is not None else self._turns(host)
        served, owed = turns["served"], turns["owed"]

        def rank(name: str, since: datetime) -> tuple[int, datetime, datetime]:
            last = served.get(name)
            return (0, since, since) if last is None else (1, last, since)

        mine = rank(feed, owed[feed]["since"] if feed in owed else now)
        wait = 0.0
        for other, o in owed.items():
            if other == feed or o["until"] <= now or rank(other, o["since"]) >= mine:
                continue
            if o["since"] > now + AHEAD_SLACK:
                continue  # owed "in the future": the clock was stepped back; the turn lapses
            if now <= o["quiet_from"]:
                continue  # the host is free again before the other feed can be back
            wait = max(wait, (o["until"] - now).total_seconds())
        return wait

    def owe_turn(
        self, host: str, feed: str, now: datetime, earliest: datetime, until: datetime, min_interval: float
    ) -> None:
        """Record that ``feed`` was held back by another feed: it is owed the next turn.

        ``earliest``/``until``: when it can be back at the soonest and the latest;
        ``min_interval``: the quiet time it needs on the host before its request.
        """
        with self.store.lock():
            turns = self._turns(host)
            current = turns["owed"].get(feed)
            since = current["since"] if current and current["until"] > now else now
            quiet_from = earliest - timedelta(seconds=min_interval)
            turns["owed"][feed] = {"since": since, "quiet_from": quiet_from, "until": until}
            self.store.set(f"turns/{host}", turns)

    def release(self, host: str, previous: HostState, turn: FeedTurn | None = None) -> None:
        """Give a slot back: the request never reached the host (DNS/connect failure).

        ``turn`` (from ``feed_turn`` before the claim) gives the feed back its place among
        the feeds sharing the host, as if it had not been served.
        """
        with self.store.lock():
            self.store.set(
                f"polite/{host}",
                {"last_request_at": previous.last_request_at, "not_before": previous.not_before},
            )
            if turn is not None:
                turns = self._turns(host)
                turns["served"].pop(turn.feed, None)
                if turn.served_at is not None:
                    turns["served"][turn.feed] = turn.served_at
                if turn.owed is not None:
                    turns["owed"][turn.feed] = turn.owed
                self.store.set(f"turns/{host}", turns)

    def feed_turn(self, host: str, feed: str) -> FeedTurn:
        """Where ``feed`` stands among the feeds sharing ``host`` (for ``release``)."""
        turns = self._turns(host)
        return FeedTurn(feed, turns["served"].get(feed), turns["owed"].get(feed))

    def defer(self, host: str, until: datetime) -> None:
        """Record the server's ``Retry-After``: no request before ``until``."""
        with self.store.lock():
            st = self.host_state(host)
            nb = max(until, st.not_before) if st.not_before else until
            self.store.set(f"polite/{host}", {"last_request_at": st.last_request_at, "not_before": nb})

    # -- circuit breaker --------------------------------------------------------------
    def breaker(self, host: str, now: datetime | None = None) -> BreakerState:
        """Current breaker state; an open breaker past its cool-down reads as half-open."""
        raw: dict[str, Any] = self.store.get(f"breaker/{host}") or {}
        st = BreakerState(
            raw.get("state", "closed"), raw.get("failures", 0), raw.get("opened_at"), raw.get("last_kind")
        )
        if st.state == "open" and now is not None and st.opened_at and (
            now - st.opened_at >= self.cooldown or st.opened_at > now + AHEAD_SLACK
        ):
            # Cooled down -- or opened "in the future": the clock was stepped back, and
            # waiting for it to catch up would leave the host alone for the size of the step.
            return BreakerState("half_open", st.failures, st.opened_at, st.last_kind)
        return st

    def breaker_allows(self, host: str, now: datetime) -> bool:
        """Whether an attempt may reach the host (closed, or the half-open probe)."""
        return self.breaker(host, now).state != "open"

    def record_result(self, host: str, ok: bool, now: datetime, kind: str | None = None) -> BreakerState:
        """Count an attempt's result towards the breaker and return the new state."""
        if ok:
            # A success of a closed breaker with no failure counted changes nothing: not even
            # the cross-process lock is taken (30 lock rounds less per 3,000-location attempt,
            # on the loop; issue 20).  Another process's failure recorded right after this read
            # stands, as it would had it come right after our success.
            st = self.breaker(host, now)
            if st == BreakerState():
                return st
        with self.store.lock():
            st = self.breaker(host, now)
            if ok:
                new = BreakerState()
            else:
                failures = st.failures + 1
                if st.state == "half_open" or failures >= self.threshold:
                    new = BreakerState("open", failures, now, kind)
                else:
                    new = BreakerState("closed", failures, None, kind)
            if new == st:
                # Nothing to change (a success of a closed breaker): no write, under the same
                # lock as the read (30 writes less per 3,000-location attempt, on the loop).
                return new
            self.store.set(
                f"breaker/{host}",
                {"state": new.state, "failures": new.failures, "opened_at": new.opened_at, "last_kind": new.last_kind},
            )
            return new
