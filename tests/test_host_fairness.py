"""Issue 16, reproduction 5 / item 8: feeds sharing a host each get their turn.

A feed sharing a host with a busier feed made 1 request in 64 s: whenever its run came,
the other feed had just taken the host's politeness slot, so it was held back, run after
run.  Now a feed held back by another feed's request is owed the host's next turn; the
rule "never more than one request per min_interval per host" still holds.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.clock import FakeClock
from feeds.config import Config
from feeds.errors import ConnectError
from feeds.models import RequestSpec
from feeds.pipeline import HeldBack, RequestPipeline
from feeds.politeness import HostGuard
from feeds.retry import RetryPolicy
from feeds.store import MemoryStore
from tests.helpers import config_file

FEEDS = """
[feeds.busy]
kind = "vietcombank"
url = "https://bank.example/a"
every = "{busy_every}"
timeout = "5s"
deadline = "20s"
min_interval = "5m"

[feeds.quiet]
kind = "vietcombank"
url = "https://bank.example/b"
every = "15m"
timeout = "5s"
deadline = "20s"
min_interval = "5m"
"""

MIN_INTERVAL = timedelta(minutes=5)


class Run:
    """Feeds' attempts at given times (seconds from the start) through one pipeline."""

    def __init__(self, tmp_path: Path, busy_every: str = "15m") -> None:
        self.cfg: Config = config_file(tmp_path, FEEDS.format(busy_every=busy_every))
        self.clock = FakeClock()
        self.start = self.clock.monotonic()
        self.store = MemoryStore()
        self.hits: list[tuple[datetime, str]] = []

        def handler(req: httpx.Request) -> httpx.Response:
            self.hits.append((self.clock.now(), req.url.path))
            return httpx.Response(200, content=b"ok")

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        retry = RetryPolicy(self.clock, rng=random.Random(7))
        self.pipe = RequestPipeline(self.cfg, self.store, client, self.clock, retry, HostGuard(self.store))

    def attempt(self, feed: str, *, forced: bool = False) -> bool:
        f = self.cfg.feeds[feed]
        try:
            asyncio.run(
                self.pipe.get_parsed(f, RequestSpec(f.source.url), self.clock.monotonic() + f.deadline, bytes,
                                     forced=forced)
            )
        except HeldBack:
            return False
        return True

    def play(self, schedule: list[tuple[float, str]]) -> Counter[str]:
        for at, feed in sorted(schedule):
            self.clock.advance(max(0.0, self.start + at - self.clock.monotonic()))
            self.attempt(feed)
        return Counter({"busy": 0, "quiet": 0} | Counter(
            "busy" if path == "/a" else "quiet" for _, path in self.hits
        ))

    def assert_polite(self) -> None:
        times = [t for t, _ in self.hits]
        assert all(b - a >= MIN_INTERVAL for a, b in zip(times, times[1:], strict=False)), times


def test_two_feeds_on_one_grid_take_turns(tmp_path: Path) -> None:
    # Two rates feeds on the bank's host every 15 minutes, the jitter puts one 60 s after
    # the other: it found the slot taken every time (0 requests in 3 hours).
    run = Run(tmp_path)
    counts = run.play([(900 * k, "busy") for k in range(12)] + [(900 * k + 60, "quiet") for k in range(12)])
    run.assert_polite()
    assert counts["quiet"] >= 5, counts
    assert counts["busy"] >= 5, counts


def test_a_busier_feed_leaves_the_quiet_one_its_turn(tmp_path: Path) -> None:
    run = Run(tmp_path, busy_every="5m")
    counts = run.play([(300 * k, "busy") for k in range(36)] + [(900 * k + 60, "quiet") for k in range(12)])
    run.assert_polite()
    # Once it has had to wait, the quiet feed is owed a turn at each of its runs: it gets
    # (nearly) every one, and the busier feed the slots its grid leaves around them.
    assert counts["quiet"] >= 10, counts
    assert counts["busy"] >= 12, counts


def test_a_turn_owed_to_a_feed_that_never_comes_back_expires(tmp_path: Path) -> None:
    # The quiet feed is refused once and then removed (a reload): the busy one is held
    # back at most until the quiet one's next run would have ended, then goes on.
    run = Run(tmp_path, busy_every="5m")
    counts = run.play([(300 * k, "busy") for k in range(36)] + [(60, "quiet")])
    run.assert_polite()
    assert counts["quiet"] == 0
    assert counts["busy"] >= 33, counts


def test_a_forced_fetch_ignores_the_turns(tmp_path: Path) -> None:
    run = Run(tmp_path)
    assert run.attempt("busy")
    run.clock.advance(60)
    assert not run.attempt("quiet")  # owed the next turn now
    run.clock.advance(300)
    assert run.attempt("busy", forced=True)
    assert len(run.hits) == 2


@pytest.mark.parametrize("gap", [0, 1, 30, 89, 90, 250])
def test_the_feed_held_back_by_the_other_finds_the_host_free_at_its_next_run(tmp_path: Path, gap: int) -> None:
    # busy asks every 5 minutes; quiet (every 15 minutes) is refused `gap` s after busy's
    # request.  busy goes on taking slots that free up before quiet can be back (its next
    # run, at the earliest 15 min - 90 s of jitter later) and leaves it the one it needs.
    run = Run(tmp_path, busy_every="5m")
    assert run.attempt("busy")
    run.clock.advance(gap)
    assert not run.attempt("quiet")
    back = run.clock.monotonic() + 900
    busy_ok = []
    while True:
        run.clock.advance(300 - (run.clock.monotonic() - run.start) % 300)
        if run.clock.monotonic() >= back:
            break
        busy_ok.append(run.attempt("busy"))
    assert busy_ok[0]  # the slot at 5 minutes frees up long before quiet's next run
    assert not busy_ok[-1]  # the one before quiet's return is left to it
    run.clock.advance(back - run.clock.monotonic())
    assert run.attempt("quiet")
    run.clock.advance(300)
    assert run.attempt("busy")  # and then the busy one again
    run.assert_polite()


def test_the_earliest_return_allows_for_the_jitter(tmp_path: Path) -> None:
    # quiet's next run may come 90 s early (the grid's jitter): the host is free by then.
    run = Run(tmp_path, busy_every="5m")
    assert run.attempt("busy")
    run.clock.advance(60)
    assert not run.attempt("quiet")
    run.clock.advance(900 - 90)
    assert run.attempt("quiet")
    run.assert_polite()


def test_a_feed_a_second_away_from_its_slot_waits_inside_its_attempt(tmp_path: Path) -> None:
    run = Run(tmp_path, busy_every="5m")
    assert run.attempt("busy")
    run.clock.advance(299)
    assert run.attempt("quiet")  # waits 1 s within its 20 s deadline
    assert run.clock.sleeps == [1.0]
    run.assert_polite()


def test_a_damaged_turns_record_is_ignored(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.store.set("turns/bank.example", {"served": 5, "owed": {"quiet": {"since": "x"}, "b": 1}})
    assert run.attempt("busy")
    run.store.set("turns/bank.example", [1, 2])
    run.clock.advance(300)
    assert run.attempt("quiet")


def test_a_request_that_never_reached_the_host_keeps_the_feeds_turn(tmp_path: Path) -> None:
    run = Run(tmp_path, busy_every="5m")
    assert run.attempt("busy")
    run.clock.advance(60)
    assert not run.attempt("quiet")  # owed the next turn
    owed = run.store.get("turns/bank.example")["owed"]["quiet"]
    run.clock.advance(900)
    refused = httpx.ConnectError("refused")

    def down(req: httpx.Request) -> httpx.Response:
        raise refused

    run.pipe.client = httpx.AsyncClient(transport=httpx.MockTransport(down))
    with pytest.raises(ConnectError):
        run.attempt("quiet")
    turns = run.store.get("turns/bank.example")
    assert "quiet" not in turns["served"] and turns["owed"]["quiet"] == owed
    assert run.pipe.guard.wait_needed("bank.example", 300, run.clock.now()) == 0


def test_through_the_coordinator_the_wait_shows_as_host_turn(tmp_path: Path) -> None:
    from tests.helpers import make_coordinator, vcb_fixture

    cfg = config_file(tmp_path, FEEDS.format(busy_every="15m"))
    body = vcb_fixture()
    coord, clock, _, _ = make_coordinator(cfg, lambda req: httpx.Response(200, content=body))

    def refresh(name: str) -> tuple[str, str | None]:
        result = asyncio.run(coord.refresh(cfg.feeds[name]))
        return result.outcome, result.detail

    assert refresh("busy")[0] != "held_back"
    clock.advance(60)
    assert refresh("quiet") == ("held_back", "min_interval")
    clock.advance(840)
    assert refresh("busy") == ("held_back", "host_turn")
    clock.advance(60)
    assert refresh("quiet")[0] != "held_back"


MIXED = """
[feeds.busy]
kind = "open-meteo"
url = "https://shared.example/v1/forecast"
every = "1m"
timeout = "5s"
deadline = "20s"
min_interval = "0s"
locations = [{ id = "a", name = "A", lat = 1.0, lon = 1.0 }]

[feeds.quiet]
kind = "vietcombank"
url = "https://shared.example/b"
every = "15m"
timeout = "5s"
deadline = "20s"
min_interval = "5m"
"""


def test_a_feed_needing_a_quiet_host_is_not_starved_by_one_that_needs_none(tmp_path: Path) -> None:
    # A weather feed (no min_interval) asking every minute and a rates feed needing 5
    # quiet minutes on the same host: every minute's request kept the host "busy" for the
    # rates feed, which never got through.
    run = Run(tmp_path)
    run.cfg = config_file(tmp_path, MIXED)
    hits: list[tuple[datetime, str]] = []
    for _ in range(180):  # 3 hours, one busy attempt a minute
        run.clock.advance(60 - (run.clock.monotonic() - run.start) % 60)
        at = run.clock.monotonic() - run.start
        if run.attempt("busy"):
            hits.append((run.clock.now(), "busy"))
        if at % 900 == 0:
            run.clock.advance(30)
            if run.attempt("quiet"):
                hits.append((run.clock.now(), "quiet"))
    counts = Counter(name for _, name in hits)
    assert counts["quiet"] >= 5, counts
    assert counts["busy"] >= 100, counts
    # The rates feed's own rule holds: 5 quiet minutes on the host before each of its requests.
    for i, (t, name) in enumerate(hits):
        if name == "quiet" and i > 0:
            assert t - hits[i - 1][0] >= MIN_INTERVAL


FEED = st.sampled_from([0, 60, 300]).flatmap(
    lambda mi: st.tuples(
        st.sampled_from([e for e in (60, 300, 900) if e >= mi]), st.just(mi), st.integers(0, 899)
    )
)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(feeds=st.lists(FEED, min_size=2, max_size=4))
def test_no_feed_sharing_a_host_is_starved_and_politeness_holds(feeds: list[tuple[int, int, int]]) -> None:
    # 2-4 feeds on one host, each on its own grid (every, min_interval, offset), 3 hours.
    # Before: a feed could get 0 requests in 3 hours.  Now every feed is served at least
    # once in every 3 x (longest every + longest min_interval), and each request comes
    # at least the asking feed's min_interval after the host's previous one.
    import tempfile

    body = "".join(
        f'[feeds.f{i}]\nkind = "vietcombank"\nurl = "https://h.example/{i}"\nevery = "{every}s"\n'
        f'min_interval = "{mi}s"\ntimeout = "5s"\ndeadline = "20s"\n\n'
        for i, (every, mi, _) in enumerate(feeds)
    )
    with tempfile.TemporaryDirectory() as d:
        run = Run(Path(d))
        run.cfg = config_file(Path(d), body)
        hours = 3
        for at, i in sorted(
            ((off % every) + k * every, i)
            for i, (every, _, off) in enumerate(feeds)
            for k in range(hours * 3600 // every)
        ):
            run.clock.advance(max(0.0, run.start + at - run.clock.monotonic()))
            run.attempt(f"f{i}")
    hits = [(t, int(path[1:])) for t, path in run.hits]
    for (t0, _), (t1, i) in zip(hits, hits[1:], strict=False):
        assert t1 - t0 >= timedelta(seconds=feeds[i][1]), (t0, t1, i)
    start = FakeClock().now()
    bound = 3 * (max(e for e, _, _ in feeds) + max(m for _, m, _ in feeds))
    for i in range(len(feeds)):
        times = [start] + [t for t, j in hits if j == i] + [start + timedelta(hours=hours)]
        gap = max((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))
        assert gap <= bound, (i, feeds, gap)


class _ClockWithAnOtherFeed(FakeClock):
    """A fake clock on whose first sleep another feed of the host takes its owed turn
    (that feed's attempt running concurrently, as in the daemon)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_sleep: list[object] = []

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        while self.on_sleep:
            hook = self.on_sleep.pop(0)
            assert callable(hook)
            hook()


def test_a_feed_waiting_for_an_owed_turn_asks_once_it_is_taken(tmp_path: Path) -> None:
    # "quiet" is owed the host's next turn until well past "busy"'s deadline.  Before, "busy"
    # gave its whole run up (held back, host_turn) although "quiet" asked a second later;
    # three feeds owing each other turns kept one of them from the host two runs in a row.
    run = Run(tmp_path)
    clock = _ClockWithAnOtherFeed()
    run.clock = clock
    run.pipe.clock = clock
    run.pipe.retry = RetryPolicy(clock, rng=random.Random(7))
    guard = run.pipe.guard
    host = "bank.example"
    now = clock.now()
    guard.owe_turn(host, "quiet", now, now + timedelta(seconds=1), now + timedelta(minutes=15), 300)
    guard.claim(host, 300, now - timedelta(minutes=10), feed="busy")

    def quiet_asks() -> None:
        # The owed feed's request; the host's window then passes for "busy" too.
        assert guard.claim(host, 300, clock.now(), feed="quiet")
        guard.store.set(f"polite/{host}", {"last_request_at": clock.now() - timedelta(minutes=5), "not_before": None})

    clock.on_sleep.append(quiet_asks)
    assert run.attempt("busy"), "busy gave its run up although the owed turn was taken"
    assert [p for _, p in run.hits] == ["/a"]
