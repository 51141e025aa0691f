"""Timing (feeds.schedule): runs stay on their grid whatever the jitter; a failed attempt is
retried at the earliest polite moment, then backing off, never past the next grid run."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.daemon import build_trigger
from feeds.schedule import ORIGIN, GridTrigger, retry_at
from tests.helpers import config_file


def fire_times(trigger: GridTrigger, start: datetime, runs: int) -> list[datetime]:
    out: list[datetime] = []
    prev = None
    now = start
    for _ in range(runs):
        nxt = trigger.get_next_fire_time(prev, now)
        out.append(nxt)
        prev, now = nxt, nxt  # the scheduler asks right after a run fired
    return out


@pytest.mark.parametrize("every", ["30s", "15m"])
def test_runs_stay_on_the_grid(tmp_path: Path, every: str) -> None:
    cfg = config_file(tmp_path, f'[feeds.a]\nkind = "vietcombank"\nevery = "{every}"\nmin_interval = "0s"\n')
    feed = cfg.feeds["a"]
    trigger = build_trigger(feed)
    assert isinstance(trigger, GridTrigger)
    start = datetime(2026, 11, 24, 8, 0, 7, tzinfo=UTC)
    times = fire_times(trigger, start, 1000)
    jitter = min(feed.every * 0.1, 120)
    k0 = trigger.index_of(times[0])
    for i, t in enumerate(times):
        grid = ORIGIN + timedelta(seconds=(k0 + i) * feed.every)
        assert grid <= t < grid + timedelta(seconds=jitter)  # in its own cell: no drift
    # 100 runs take 100 intervals (plus less than one jitter), not 105.
    span = (times[100] - times[0]).total_seconds()
    assert abs(span - 100 * feed.every) < jitter
    assert len({round(t.timestamp() - (k0 + i) * feed.every, 6) for i, t in enumerate(times)}) > 1  # jittered


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.floats(1, 86400),
    st.floats(0, 1),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
)
def test_first_run_is_the_next_grid_point(every: float, share: float, now: datetime) -> None:
    trigger = GridTrigger(every, jitter=every * 0.1 * share, seed="x")
    first = trigger.get_next_fire_time(None, now)
    assert now <= first < now + timedelta(seconds=every + trigger.jitter + 1e-3)
    second = trigger.get_next_fire_time(first, first)
    assert trigger.index_of(second) == trigger.index_of(first) + 1
    # A run started at "now" off the grid (the daemon's first run) is followed by the grid.
    after_now = trigger.get_next_fire_time(now, now)
    assert after_now > now and trigger.index_of(after_now) == trigger.index_of(now) + 1


def test_retry_at_earliest_polite_moment_then_back_off() -> None:
    t = datetime(2026, 11, 24, 8, 0, 20, tzinfo=UTC)
    grid = datetime(2026, 11, 24, 8, 15, tzinfo=UTC)
    # The bank (5 min politeness): the first retry comes as soon as the bank allows it.
    assert retry_at(now=t, failures=1, polite_wait=280, min_interval=300, next_run=grid) == t + timedelta(seconds=300)
    # Second failure at 08:05:20: 10 minutes would meet the 08:15 run: that run is the retry.
    t2 = t + timedelta(minutes=5)
    assert retry_at(now=t2, failures=2, polite_wait=300, min_interval=300, next_run=grid) is None
    # Hourly feed: 5, then 10, then 20 minutes.
    hour = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert retry_at(now=t2, failures=2, polite_wait=300, min_interval=300, next_run=hour) == t2 + timedelta(minutes=10)
    # No politeness (weather): one minute, doubling.
    assert retry_at(now=t, failures=1, polite_wait=0, min_interval=0, next_run=hour) == t + timedelta(minutes=1)
    assert retry_at(now=t, failures=3, polite_wait=0, min_interval=0, next_run=hour) == t + timedelta(minutes=4)
    assert retry_at(now=t, failures=0, polite_wait=0, min_interval=0, next_run=hour) is None


def test_daemon_schedules_the_retry_and_publishes_its_time(tmp_path: Path) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from feeds.app import open_runtime
    from feeds.clock import FakeClock
    from feeds.daemon import Daemon
    from feeds.notify import Notifier
    from feeds.testing.upstream import Fault, UpstreamSimulator

    with UpstreamSimulator() as sim:
        cfg = config_file(
            tmp_path,
            f'[feeds.rates]\nkind = "vietcombank"\nurl = "{sim.url("vietcombank")}"\nevery = "15m"\n'
            'timeout = "1s"\ndeadline = "2s"\n',
        )
        clock = FakeClock(datetime.now(UTC).replace(microsecond=0))

        async def go() -> tuple[datetime | None, datetime | None, int]:
            async with open_runtime(cfg, clock=clock) as rt:
                d = Daemon(None, cfg, clock=clock, notifier=Notifier(None))
                d.rt = rt
                d.scheduler = AsyncIOScheduler()
                d._schedule_all(first_run_now=False)
                d.scheduler.start(paused=True)
                try:
                    await d._job("rates")  # fresh
                    clock.advance(900)
                    sim.set_faults("vietcombank", [Fault.status(503)], repeat_last=True)
                    await d._job("rates")  # fails: a retry in 5 minutes
                    retry = d.scheduler.get_job("rates#retry")
                    return retry.next_run_time if retry else None, clock.now(), len(sim.requests("vietcombank"))
                finally:
                    d.scheduler.shutdown(wait=False)

        when, now, n = asyncio.run(go())
    assert n == 2  # one request per attempt: polite
    assert when is not None and when == now + timedelta(seconds=300)
    snap = json.loads((tmp_path / "snapshots" / "rates.json").read_text(encoding="utf-8"))
    assert snap["status"] == "stale"
    assert datetime.fromisoformat(snap["next_update_at"]) == when.replace(microsecond=0)
