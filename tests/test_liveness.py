"""Issue 16, item 3: the liveness check inside the daemon.

A feed not attempted within ``feeds.schedule.stall_limit`` of its last attempt (about
``2 x every + deadline``; for ``at`` feeds, the cron expression's own gaps), measured on the
monotonic clock, is re-planned at once, logged at ERROR, counted in the metrics and shown in
``status`` (the scheduler event ``stalled``).  The stall here is the reload bug's: a job
that APScheduler holds paused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feeds.clock import FakeClock, SteppableClock
from feeds.schedule import GridTrigger, build_trigger, stall_limit
from tests.helpers import config_file

FEED = (
    '[monitoring]\nmetrics_file = "portal_feeds.prom"\n\n'
    '[feeds.rates]\nkind = "vietcombank"\nurl = "http://127.0.0.1:9/pXML.aspx"\nevery = "15m"\n'
    'timeout = "1s"\ndeadline = "2s"\n'
)


@contextlib.asynccontextmanager
async def paused_daemon(cfg, clock):  # type: ignore[no-untyped-def]
    """A daemon on ``clock`` with its jobs planned and its scheduler paused: the test drives it."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from feeds.app import open_runtime
    from feeds.daemon import Daemon
    from feeds.notify import Notifier
    from feeds.schedule import vietnam_zone

    async with open_runtime(cfg, clock=clock) as rt:
        d = Daemon(None, cfg, clock=clock, notifier=Notifier(None))
        d.rt = rt
        d.scheduler = AsyncIOScheduler(timezone=vietnam_zone())
        d._schedule_all(first_run_now=False)
        d.scheduler.start(paused=True)
        try:
            yield d, rt
        finally:
            d.scheduler.shutdown(wait=False)


def test_stall_limit_grid_is_about_two_intervals_plus_deadline() -> None:
    trigger = GridTrigger(900, jitter=90, seed="rates")
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    for minute in range(0, 30, 3):
        now = start + timedelta(minutes=minute, seconds=17)
        limit = stall_limit(trigger, now, 2.0)
        assert limit is not None and 900 < limit <= 2 * 900 + 90 + 2


def test_stall_limit_cron_follows_the_expression() -> None:
    vn = ZoneInfo("Asia/Ho_Chi_Minh")
    from dataclasses import replace

    from feeds.config import load_config

    feed = replace(next(iter(load_config(None).feeds.values())), at="0 8 * * 1-5", deadline=20.0)
    trigger = build_trigger(feed)
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=vn)  # after Friday's run
    limit = stall_limit(trigger, friday, 20.0)
    # The second planned run is Tuesday 08:00 (no false alarm over the weekend).
    assert limit == (datetime(2026, 12, 1, 8, 0, tzinfo=vn) - friday).total_seconds() + 20.0


def test_a_stalled_feed_is_re_planned_logged_counted_and_shown(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]

    from feeds.health import feed_rows, format_table

    caplog.set_level(logging.INFO, logger="feeds")
    cfg = config_file(tmp_path, FEED)
    clock = SteppableClock(FakeClock(datetime.now(UTC).replace(microsecond=0)))
    base: FakeClock = clock.base  # type: ignore[assignment]

    async def go() -> None:
        async with paused_daemon(cfg, clock) as (d, rt):
            await d._job("rates")  # an attempt (connection refused): the clock starts
            # (the attempt's retries moved the fake clock: the limit counts from its start)
            limit = d._due["rates"] - base.monotonic()
            assert 900 - 60 < limit <= 2 * 900 + 90 + 2
            assert d._check_liveness() == []
            job = d.scheduler.get_job("rates")
            job.pause()  # what a reload used to do: never run again
            base.advance(limit - 1)
            assert d._check_liveness() == []  # not yet: the second planned run + deadline
            base.advance(2)
            assert d._check_liveness() == ["rates"]
            job = d.scheduler.get_job("rates")
            assert job.next_run_time == clock.now()  # re-planned at once
            assert d._check_liveness() == []  # one alarm, not one per look
            # A step back of the wall clock does not hide a stall (monotonic clock).
            job.pause()
            clock.step(-86400)
            base.advance(2 * 900 + 90 + 3)
            assert d._check_liveness() == ["rates"]
            # An attempt restarts the clock.
            await d._job("rates")
            base.advance(900)
            assert d._check_liveness() == []
            now = clock.now()
            rows = feed_rows(cfg, rt.store, now)
        assert rows[0].scheduler_events.get("stalled") == 2
        assert rows[0].last_scheduler_event == "stalled"
        assert "scheduler stalled" in format_table(rows, now)

    asyncio.run(go())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "stalled" in r.getMessage()]
    assert len(errors) == 2, [r.getMessage() for r in errors]
    assert "feed stalled feed=rates not_attempted_s=" in errors[0].getMessage()
    assert "planned=none: re-planned now" in errors[0].getMessage()
    metrics = (tmp_path / "portal_feeds.prom").read_text(encoding="utf-8")
    assert 'portal_feeds_scheduler_events_total{event="stalled",feed="rates"} 2.0' in metrics


@pytest.mark.parametrize("every", ["1s", "2s"])
def test_a_running_daemon_is_not_reported_stalled(tmp_path: Path, caplog, every: str) -> None:  # type: ignore[no-untyped-def]
    """No false alarms: a healthy daemon on a short grid, with the guard looking often."""
    from feeds.daemon import Daemon
    from feeds.notify import Notifier

    caplog.set_level(logging.INFO, logger="feeds")
    cfg = config_file(tmp_path, FEED.replace('"15m"', f'"{every}"').replace('timeout = "1s"', 'timeout = "1s"\nmin_interval = "0s"'))
    d = Daemon(None, cfg, notifier=Notifier(None))
    d.clock_check_every = 0.2

    async def go() -> int:
        run = asyncio.create_task(d.run())
        await asyncio.sleep(5)
        d.stop_event.set()
        return await asyncio.wait_for(run, 20)

    assert asyncio.run(go()) == 0
    assert "stalled" not in caplog.text


def test_a_running_daemon_revives_a_stopped_job(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """The real scheduler: a job held paused is found stalled and attempted again."""
    from feeds.daemon import Daemon
    from feeds.notify import Notifier

    caplog.set_level(logging.INFO, logger="feeds")
    cfg = config_file(tmp_path, FEED.replace('"15m"', '"1s"').replace('timeout = "1s"', 'timeout = "1s"\nmin_interval = "0s"'))
    d = Daemon(None, cfg, notifier=Notifier(None))
    d.clock_check_every = 0.2

    def attempts() -> int:
        if d.rt is None:
            return 0
        h = d.rt.store.get("health/rates")
        return sum(h.attempts.values()) if h is not None else 0

    async def go() -> tuple[int, int]:
        run = asyncio.create_task(d.run())
        try:
            while attempts() < 2:
                await asyncio.sleep(0.05)
            assert d.scheduler is not None
            d.scheduler.get_job("rates").pause()
            await asyncio.sleep(0.3)  # an attempt in flight may finish
            paused_at = attempts()
            for _ in range(200):  # the limit is ~2 s of grid + 2 s of deadline
                if "feed stalled feed=rates" in caplog.text and attempts() >= paused_at + 2:
                    break
                await asyncio.sleep(0.05)
            return paused_at, attempts()
        finally:
            d.stop_event.set()
            assert await asyncio.wait_for(run, 20) == 0

    paused_at, after = asyncio.run(go())
    assert "feed stalled feed=rates" in caplog.text
    assert after >= paused_at + 2  # attempted again, and the grid goes on


def test_an_attempt_in_flight_is_not_a_stall_but_a_hung_one_is(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """CI's false alarm (stop 23): an attempt still running when the limit passed is not a stall.

    The grid's runs are skipped while the attempt runs (``max_instances=1``); the limit then
    counts from the attempt's end.  An attempt running past ``deadline + HANG_GRACE`` is
    reported (once per such period): nothing else would ever refresh that feed.
    """

    from feeds.daemon import HANG_GRACE

    caplog.set_level(logging.INFO, logger="feeds")
    cfg = config_file(tmp_path, FEED.replace('"15m"', '"2s"').replace('deadline = "2s"', 'deadline = "2s"\nmin_interval = "0s"'))
    clock = SteppableClock(FakeClock(datetime.now(UTC).replace(microsecond=0)))
    base: FakeClock = clock.base  # type: ignore[assignment]

    async def go() -> None:
        async with paused_daemon(cfg, clock) as (d, rt):
            release = asyncio.Event()
            real = rt.coordinator.refresh

            async def slow(feed, next_update_at=None):  # type: ignore[no-untyped-def]
                await release.wait()
                return await real(feed, next_update_at=next_update_at)

            rt.coordinator.refresh = slow
            job = asyncio.create_task(d._job("rates"))
            await asyncio.sleep(0)
            limit = d._due["rates"] - base.monotonic()
            base.advance(limit + 1)  # past the limit, the attempt still running
            assert d._check_liveness() == []
            base.advance(2.0 + HANG_GRACE)  # past deadline + grace: hung
            assert d._check_liveness() == ["rates"]
            assert d._check_liveness() == []  # one alarm, not one per look
            release.set()
            await job
            # The limit counts from the attempt's end.
            assert d._due["rates"] - base.monotonic() > 2.0
            assert d._check_liveness() == []

    asyncio.run(go())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "attempt running" in errors[0], errors
