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
    assert counts["quiet"] >= 5, counts
    # The busier feed still gets most of the host's slots (it leaves only what the quiet
    # one needs).
    assert counts["busy"] >= 18, counts


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
