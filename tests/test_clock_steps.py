"""Issue 16, reproduction 2: wall-clock steps neither stop nor burst attempts.

APScheduler sleeps on the event loop's monotonic clock until a job's wall-clock run time, so
after the wall clock stepped back an hour (NTP, a VM restore) it waited an hour more: 0
upstream requests, while ``status`` said fresh.  The daemon's guard now notices the step and
re-plans every job from its trigger at the new time.

- in-process: a ``SteppableClock`` over a ``FakeClock`` and a paused scheduler: what the
  re-planning does to the grid job and to a pending retry;
- end to end: a real ``portal-feeds run`` under libfaketime (wall clock faked from a file
  the test rewrites, monotonic clock real), against the simulator.  Skipped when
  libfaketime is missing, except under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feeds.clock import FakeClock, SteppableClock
from feeds.schedule import GridTrigger
from feeds.testing.upstream import UpstreamSimulator
from tests.helpers import config_file

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")

RATES = (
    '[feeds.rates]\nkind = "vietcombank"\nurl = "{url}"\nevery = "{every}"\n'
    'min_interval = "0s"\ntimeout = "1s"\ndeadline = "2s"\nmax_stale = "3d"\n'
)


def _replan_after_step(tmp_path: Path, step: float) -> tuple[float, dict[str, datetime | None], datetime, datetime]:
    """Schedule a 15-minute feed and a retry, step the wall clock, let the guard look twice."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from feeds.app import open_runtime
    from feeds.daemon import Daemon
    from feeds.notify import Notifier
    from feeds.schedule import vietnam_zone

    cfg = config_file(tmp_path, RATES.format(url="http://127.0.0.1:9/pXML.aspx", every="15m"))
    clock = SteppableClock(FakeClock(datetime.now(UTC).replace(microsecond=0)))

    async def go() -> tuple[float, dict[str, datetime | None], datetime, datetime]:
        async with open_runtime(cfg, clock=clock) as rt:
            d = Daemon(None, cfg, clock=clock, notifier=Notifier(None))
            d.rt = rt
            d.scheduler = AsyncIOScheduler(timezone=vietnam_zone())
            d._schedule_all(first_run_now=False)
            d.scheduler.start(paused=True)
            retry_at = clock.now() + timedelta(minutes=5)
            d.scheduler.add_job(d._job, trigger="date", run_date=retry_at, args=["rates"], id="rates#retry")
            try:
                assert d._check_clock() == 0.0  # the first look only takes the mark
                clock.base.advance(3)  # type: ignore[attr-defined]
                assert d._check_clock() == 0.0  # time passing is no step
                clock.base.advance(3)  # type: ignore[attr-defined]
                clock.step(step)
                seen = d._check_clock()
                jobs = {j.id: j.next_run_time for j in d.scheduler.get_jobs()}
                return seen, jobs, clock.now(), retry_at
            finally:
                d.scheduler.shutdown(wait=False)

    return asyncio.run(go())


@pytest.mark.parametrize("step", [-3600.0, -86400.0, 86400.0, 3600.0])
def test_a_step_re_plans_the_grid_and_shifts_the_retry(tmp_path: Path, caplog, step: float) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="feeds")
    seen, jobs, now, retry_was = _replan_after_step(tmp_path, step)
    assert seen == pytest.approx(step, abs=0.01)
    trigger = GridTrigger(900, jitter=90, seed="rates")
    # The grid job: the trigger's next run after the new time -- within one interval, never
    # an hour (or a day) away, never in the past (no burst).
    nxt = jobs["rates"]
    assert nxt is not None and nxt == trigger.get_next_fire_time(None, now)
    assert now <= nxt <= now + timedelta(seconds=900 + 90)
    # The retry keeps its remaining delay (5 minutes less the 3 s that passed).
    assert jobs["rates#retry"] == retry_was + timedelta(seconds=step)
    assert f"wall clock stepped step_s={step:+.0f}" in caplog.text


def test_small_drift_is_no_step(tmp_path: Path) -> None:
    seen, jobs, now, retry_was = _replan_after_step(tmp_path, 4.0)
    assert seen == 0.0
    assert jobs["rates#retry"] == retry_was


# -- end to end, under libfaketime ---------------------------------------------------------
def _faketime_or_skip() -> None:
    if FAKETIME.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{FAKETIME} is missing (apt-get install libfaketime)")
    pytest.skip("libfaketime is not installed")


def _wait(pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return bool(pred())


def test_a_real_daemon_keeps_fetching_through_steps_back_and_forth(tmp_path: Path) -> None:
    _faketime_or_skip()
    stamp = tmp_path / "faketime"
    stamp.write_text("+0\n")
    with UpstreamSimulator() as sim:
        body = RATES.format(url=sim.url("vietcombank"), every="2s")
        cfg = tmp_path / "portal-feeds.toml"
        cfg.write_text(
            '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n'
            '[monitoring]\nmetrics_file = "portal_feeds.prom"\n\n' + body,
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        env.update(
            LD_PRELOAD=str(FAKETIME),
            FAKETIME_TIMESTAMP_FILE=str(stamp),
            FAKETIME_NO_CACHE="1",
            FAKETIME_DONT_FAKE_MONOTONIC="1",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "feeds", "run", "--config", str(cfg)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        metrics = tmp_path / "portal_feeds.prom"

        def phase(offset: str, label: str) -> tuple[int, float]:
            """Step the clock; wait for 3 attempts, and past the guard's next look (5 s)."""
            stamp.write_text(offset + "\n")
            sim.reset_counts()
            t0 = time.monotonic()
            assert _wait(lambda: sim.request_count("vietcombank") >= 3, 25), f"no attempts after {label}"
            time.sleep(max(0.0, 7.0 - (time.monotonic() - t0)))
            n, took = sim.request_count("vietcombank"), time.monotonic() - t0
            # Every 2 s, one request per attempt: never a burst of catch-up runs.
            assert n <= took / 2 + 3, (label, n, took)
            return n, took

        try:
            assert _wait(lambda: sim.request_count("vietcombank") >= 2, 30), "no attempts at all"
            # One hour back: the attempts go on (before the fix: none for an hour).
            phase("-3600", "a step back")
            # A day ahead, then back: no burst, attempts go on, no negative age anywhere we write.
            phase("+86400", "a step ahead")
            phase("+0", "stepping back a day")
            text = metrics.read_text(encoding="utf-8")
            ages = [float(v) for v in re.findall(r"^portal_feeds_data_age_seconds\{[^}]*\} (\S+)$", text, re.M)]
            assert ages and min(ages) >= 0, text
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    assert "wall clock stepped step_s=-3600" in out, out
    assert "wall clock stepped step_s=+90000" in out, out
    assert "wall clock stepped step_s=-86400" in out, out
