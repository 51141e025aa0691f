"""The long-running service: ``portal-feeds run``.

- Warm start: before any fetch, every feed's snapshot is republished from the store with its
  true status, so a restart in the middle of an outage still serves the last good data.
- APScheduler 3.x ``AsyncIOScheduler``: one job per feed (a fixed grid with per-run jitter,
  ``feeds.schedule.GridTrigger``, or a cron expression in Vietnam time); after a failed
  attempt a one-off retry job at the earliest polite moment (``feeds.schedule.retry_at``), ``coalesce``, ``max_instances=1``, a misfire grace.  The job
  body is ``Coordinator.refresh``, which classifies every upstream fault itself, so a
  scheduler error event means a bug of ours: it is logged and recorded, never fatal.
- Start: the configuration, the store, the warm start, READY=1, all before the event loop
  exists (``run_daemon``): asyncio, the coordinator and the fetch machinery under it are not
  needed to republish from the store.  Only then the event loop, the fragments a warm start
  left (Jinja2), the scheduler (APScheduler), the HTTP client (httpx), tenacity and lxml are
  loaded, before the loop runs an attempt (issue 20: nothing a republish does not need is
  imported before READY, and no attempt pays for it on the loop; ``tests/test_start_lazy.py``).
  A signal that comes between READY and the loop is held and handled once the loop runs.
- systemd notify protocol (``feeds.notify``): READY=1 after the warm start, STATUS= after
  each attempt, WATCHDOG=1 from a task inside the event loop (a wedged loop stops the pings
  and systemd restarts us), RELOADING=1 on SIGHUP, STOPPING=1 on SIGTERM/SIGINT.
- SIGTERM/SIGINT: stop scheduling, give in-flight attempts a short grace, exit 0.
  SIGHUP: reload the configuration; a bad file is refused and the old one keeps running.
  Every feed stays scheduled through a reload: unchanged ones keep their plan, changed and
  added ones are attempted at once, removed ones are unscheduled (issue 16).
- Schedules survive wall-clock steps: APScheduler sleeps on the event loop's monotonic
  clock until a wall-clock time, so a step back of an hour would stop every feed for an
  hour.  ``_guard`` compares the wall and monotonic clocks every ``CLOCK_CHECK_EVERY``
  seconds; a step beyond ``CLOCK_STEP`` is logged (WARNING) and every job is re-planned
  from its trigger at the new time (retries keep their remaining delay).
- Liveness: a feed not attempted within ``feeds.schedule.stall_limit`` of its last attempt
  (about ``2 x every + deadline``, measured on the monotonic clock) is re-planned at once,
  logged at ERROR and recorded as the scheduler event ``stalled`` (``status``, metrics).
- Published files are watched (``feeds.watch``): every ``WATCH_EVERY`` seconds, a snapshot,
  fragment or per-location file that is missing or differs from what was last written makes
  the daemon republish its feed from the store: one ERROR line, the scheduler event
  ``file_rewritten``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feeds import watch
from feeds.app import Runtime, load_fetch_machinery, open_runtime
from feeds.config import Config, ConfigError, FeedConfig, load_config
from feeds.localfaults import NOT_WRITTEN
from feeds.logs import setup_logging
from feeds.notify import Notifier
from feeds.portal import LaterFragments, fragments_later

if TYPE_CHECKING:
    import asyncio

    # APScheduler (and feeds.schedule, built on it), feeds.health and the HTTP client are
    # loaded after READY=1: the start needs only the store, publish and render (issue 20).
    from apscheduler.events import JobExecutionEvent, JobSubmissionEvent
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from feeds.clock import Clock
    from feeds.instance import InstanceLock
    from feeds.publishing import Publisher
    from feeds.schedule import build_trigger, crontab_day_of_week
    from feeds.store import Store

__all__ = ["Daemon", "build_trigger", "crontab_day_of_week", "run_daemon"]


def __getattr__(name: str) -> Any:
    """``build_trigger`` and ``crontab_day_of_week`` of feeds.schedule (PEP 562), imported
    at first use like APScheduler under them."""
    if name in ("build_trigger", "crontab_day_of_week"):
        from feeds import schedule

        return getattr(schedule, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

logger = logging.getLogger(__name__)

#: How long in-flight attempts may finish after SIGTERM before they are cancelled.
STOP_GRACE = 5.0
#: How often the daemon's heartbeat is written to the instance lock's record.
HEARTBEAT_EVERY = 10.0
#: A run may start this late (e.g. after a suspend) and still run.
MISFIRE_GRACE = 300
#: How often the wall clock is compared with the monotonic clock, and liveness checked.
CLOCK_CHECK_EVERY = 5.0
#: A wall-clock step (either way) of more than this many seconds re-plans every job.
CLOCK_STEP = 10.0
#: How often the published files are compared with what was last written (feeds.watch).
WATCH_EVERY = 20.0
#: A damaged file whose rewrite failed (a full disk) is tried again this often.
REWRITE_RETRY = 300.0
#: The id suffix of a feed's one-off retry job.
RETRY = "#retry"
#: An attempt still running this long past its deadline is reported as hung (``stalled``):
#: the scheduler skips the feed's runs while it lasts (publishing at scale takes seconds).
HANG_GRACE = 60.0


class Started:
    """What ``run_daemon`` did before the event loop: every feed republished from the store
    (the fragments left for after READY in ``later``), READY=1 sent; ``signals`` holds the
    SIGTERM/SIGINT/SIGHUP that came since, for the loop to handle."""

    def __init__(self, later: LaterFragments, signals: list[int], publisher: Publisher | None = None) -> None:
        self.later = later
        self.signals = signals
        #: The warm start's publisher: the coordinator's takes over what it knows.
        self.publisher = publisher


class Daemon:
    """One daemon process: runtime, scheduler, signals, notify."""

    def __init__(
        self,
        config_path: str | Path | None,
        config: Config,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        runtime_factory: Callable[[Config], Any] | None = None,
        instance: InstanceLock | None = None,
        started: Started | None = None,
    ) -> None:
        import asyncio

        self.config_path = config_path
        self.config = config
        self.clock = clock
        self.notifier = notifier or Notifier.from_env()
        self.runtime_factory = runtime_factory or (lambda cfg: open_runtime(cfg, clock=clock, defer_client=True))
        self.stop_event = asyncio.Event()
        self.inflight: set[asyncio.Task[Any]] = set()
        self.rt: Runtime | None = None
        self.scheduler: AsyncIOScheduler | None = None
        #: The cache's instance lock; its record carries our heartbeat for ``status``.
        self.instance = instance
        #: Periods of the guard and the file watch (tests shorten them).
        self.clock_check_every = CLOCK_CHECK_EVERY
        self.watch_every = WATCH_EVERY
        #: Per feed: the monotonic time of its last attempt, and the one by which the next
        #: must have started (the liveness check).
        self._last_attempt: dict[str, float] = {}
        self._due: dict[str, float] = {}
        #: Per feed with an attempt in flight: the monotonic time it started (or was last
        #: reported hung).  The grid's runs are skipped meanwhile: not a stall.
        self._running: dict[str, float] = {}
        #: The wall and monotonic clocks at the guard's last look.
        self._clock_mark: tuple[datetime, float] | None = None
        #: Damaged published files already reported, with the monotonic time of the last
        #: rewrite tried (a rewrite that fails is tried again every ``REWRITE_RETRY`` s).
        self._reported: dict[Path, tuple[str, float]] = {}
        #: The warm start and READY=1 already done before the loop (``run_daemon``), or None:
        #: ``run`` does them.
        self.started = started

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit code."""
        import asyncio

        loop = asyncio.get_running_loop()
        async with self.runtime_factory(self.config) as rt:
            self.rt = rt
            later = self.warm_start() if self.started is None else self.started.later
            if self.started is not None and self.started.publisher is not None:
                rt.coordinator.publisher.adopt(self.started.publisher)
            # The handlers before READY (a reload may follow it at once; with ``started``, the
            # signals held since READY); they run when the loop next gets control, after the
            # scheduler below is up.
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop_event.set)
            loop.add_signal_handler(signal.SIGHUP, self._reload)
            if self.started is None:
                # READY once every feed is republished; the scheduler, the HTTP client and the
                # rest of the fetch machinery are loaded after it, before the loop runs a job.
                self.notifier.ready()
            else:
                # READY was sent before the loop; the signals held since then run likewise.
                for held in self.started.signals:
                    loop.call_soon(self._reload if held == signal.SIGHUP else self.stop_event.set)
            # The cyclic garbage collector, off for the start (feeds.cli), is on from here.
            gc.enable()
            # The fragments the warm start left (same fresh data as on disk), before any attempt.
            later.write()
            self.scheduler = self._start_scheduler(loop)
            load_fetch_machinery(rt)
            self._update_status()
            logger.info("started feeds=%d config=%s", len(self.config.feeds), self.config.path or "embedded")
            watchdog = asyncio.create_task(self._watchdog())
            heartbeat = asyncio.create_task(self._heartbeat())
            guard = asyncio.create_task(self._guard())
            watcher = asyncio.create_task(self._watch())
            try:
                await self.stop_event.wait()
            finally:
                self.notifier.stopping()
                guard.cancel()
                watcher.cancel()
                logger.info("stopping inflight=%d", len(self.inflight))
                # Stop scheduling first, let in-flight attempts finish within the grace, and
                # only then shut the scheduler down (its executor cancels what still runs).
                self.scheduler.pause()
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(sig)
                if self.inflight:
                    _, late = await asyncio.wait(set(self.inflight), timeout=STOP_GRACE)
                    # Still running after the grace: cancel them ourselves, so each ends as an
                    # interrupted attempt (``_job``) rather than a scheduler job error.
                    for task in late:
                        task.cancel()
                    if late:
                        await asyncio.wait(late, timeout=1.0)
                self.scheduler.shutdown(wait=False)
                watchdog.cancel()
                heartbeat.cancel()
                self._write_metrics()
        logger.info("stopped")
        return 0

    def _start_scheduler(self, loop: asyncio.AbstractEventLoop) -> AsyncIOScheduler:
        """The scheduler with every feed's job, the first run of each due now, started."""
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        from feeds.schedule import vietnam_zone

        self.scheduler = AsyncIOScheduler(event_loop=loop, timezone=vietnam_zone())
        self.scheduler.add_listener(
            self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self._schedule_all(first_run_now=True)
        self.scheduler.start()
        return self.scheduler

    def _ensure_folders(self) -> None:
        _ensure_folders(self.config)

    def warm_start(self) -> LaterFragments:
        """Republish every feed's snapshot from the store, before any fetch.

        A fragment whose file already shows the same fresh data is left for after READY=1
        (``feeds.portal.fragments_later``): the caller writes what is returned."""
        rt = self.rt
        assert rt is not None
        return _warm_start(self.config, lambda feed: rt.coordinator.republish(feed, next_update_at=rt.clock.now()).status)

    # -- scheduling ----------------------------------------------------------------------
    def _schedule_all(self, *, first_run_now: bool) -> None:
        for feed in self.config.feeds.values():
            self._add_job(feed, run_now=first_run_now)

    def _add_job(self, feed: FeedConfig, *, run_now: bool) -> None:
        """(Re)schedule ``feed``: at once, or at its trigger's next run.

        Never ``next_run_time=None``: APScheduler 3 takes that as "paused", which is how a
        reload used to stop every feed it did not change.
        """
        assert self.scheduler is not None and self.rt is not None
        from feeds.schedule import build_trigger

        when: dict[str, Any] = {"next_run_time": self.rt.clock.now()} if run_now else {}
        self.scheduler.add_job(
            self._job,
            trigger=build_trigger(feed),
            args=[feed.name],
            id=feed.name,
            name=feed.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE,
            replace_existing=True,
            **when,
        )
        self._expect(feed)

    def _expect(self, feed: FeedConfig) -> None:
        """Start the liveness clock of ``feed``: its next attempt is due within the limit."""
        assert self.rt is not None
        from feeds.schedule import build_trigger, stall_limit

        mono = self.rt.clock.monotonic()
        try:
            limit = stall_limit(build_trigger(feed), self.rt.clock.now(), feed.deadline)
        except (OverflowError, ValueError):
            limit = None
        self._last_attempt.setdefault(feed.name, mono)
        self._due[feed.name] = mono + limit if limit is not None else float("inf")

    async def _job(self, name: str) -> None:
        """The job body: one refresh, then health outputs; never raises for upstream faults."""
        assert self.rt is not None and self.scheduler is not None
        feed = self.config.feeds.get(name)
        if feed is None:  # removed by a reload while queued
            return
        import asyncio

        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        self._last_attempt[name] = self._running[name] = self.rt.clock.monotonic()
        self._expect(feed)
        try:
            job = self.scheduler.get_job(name)
            nxt: datetime | None = job.next_run_time if job is not None else None
            if nxt is None or nxt <= self.rt.clock.now():
                nxt = self.rt.clock.now() + timedelta(seconds=feed.every)
            self._ensure_folders()
            result = await self.rt.coordinator.refresh(feed, next_update_at=nxt)
            self._schedule_retry(feed, result, nxt)
        except asyncio.CancelledError:
            if not self.stop_event.is_set():
                raise
            # A stop is not an error: the snapshot keeps what was last published.
            logger.info("attempt interrupted by stop feed=%s", name)
            return
        finally:
            if task is not None:
                self.inflight.discard(task)
            self._running.pop(name, None)
            # The next attempt is due within the limit from this one's end (an attempt that
            # ran past a planned run made the scheduler skip it).
            if name in self.config.feeds:
                self._expect(self.config.feeds[name])
        self._update_status()
        self._write_metrics()

    def _schedule_retry(self, feed: FeedConfig, result: Any, next_run: datetime) -> None:
        """After a failed attempt: one retry at the earliest polite moment, then backing off.

        The snapshot is republished with the retry's time as ``next_update_at`` so portals
        and caches in front of them know an update may come before the next grid run.
        """
        assert self.rt is not None and self.scheduler is not None
        if result.outcome in ("ok", "held_back", "republished"):
            return
        import httpx

        from feeds.schedule import retry_at

        now = self.rt.clock.now()
        health = self.rt.store.get(f"health/{feed.name}")
        failures = getattr(health, "consecutive_failures", 1) or 1
        host = httpx.URL(feed.source.url).host
        wait = self.rt.coordinator.guard.wait_needed(host, feed.min_interval, now)
        at = retry_at(now=now, failures=failures, polite_wait=wait, min_interval=feed.min_interval, next_run=next_run)
        if at is None:
            return
        self.scheduler.add_job(
            self._job,
            trigger="date",
            run_date=at,
            args=[feed.name],
            id=f"{feed.name}{RETRY}",
            name=f"{feed.name} (retry)",
            misfire_grace_time=MISFIRE_GRACE,
            replace_existing=True,
        )
        logger.info("retry scheduled feed=%s in_s=%.0f failures=%d", feed.name, (at - now).total_seconds(), failures)
        try:
            self.rt.coordinator.republish(feed, next_update_at=at)
            if health is not None:
                with self.rt.store.lock():
                    self.rt.store.set(f"health/{feed.name}", health.evolve(next_attempt_at=at))
        except Exception:
            logger.exception("republish after scheduling a retry failed feed=%s", feed.name)

    def _on_event(self, event: JobExecutionEvent | JobSubmissionEvent) -> None:
        """Scheduler events: a bug of ours or a missed run; logged and recorded, never fatal."""
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED

        name = {EVENT_JOB_ERROR: "job_error", EVENT_JOB_MISSED: "missed", EVENT_JOB_MAX_INSTANCES: "still_running"}[
            event.code
        ]
        if event.code == EVENT_JOB_ERROR:
            exc = getattr(event, "exception", None)
            logger.error("scheduler event=%s feed=%s error=%s", name, event.job_id, type(exc).__name__)
        else:
            logger.warning("scheduler event=%s feed=%s", name, event.job_id)
        self._record_event(event.job_id, name, getattr(event, "scheduled_run_time", None))

    def _record_event(self, feed: str, name: str, when: datetime | None) -> None:
        """Count a scheduler event of ``feed`` where ``status`` and the metrics read it."""
        if self.rt is None:
            return
        key = f"scheduler/{feed}"
        try:
            counts: dict[str, int] = dict(self.rt.store.get(key) or {})
            counts[name] = counts.get(name, 0) + 1
            self.rt.store.set(key, counts)
            self.rt.store.set(f"{key}/last", {"event": name, "at": when})
        except Exception as exc:  # the cache lock held elsewhere: the log line still says it
            logger.warning("scheduler event not recorded feed=%s event=%s error=%s", feed, name, type(exc).__name__)

    # -- the guard: wall-clock steps and liveness -----------------------------------------
    async def _guard(self) -> None:
        """Every few seconds: notice wall-clock steps, then feeds that were not attempted."""
        import asyncio

        while True:
            try:
                self._check_clock()
                self._check_liveness()
            except Exception:  # a bug of ours: say so, keep guarding
                logger.exception("clock and liveness check failed")
            await asyncio.sleep(self.clock_check_every)

    def _check_clock(self) -> float:
        """Re-plan every job when the wall clock stepped; return the step in seconds (0: none).

        A step is the wall clock's move minus the monotonic clock's since the last look
        (NTP stepping, a VM restored from a snapshot, a suspend, ``date -s``).
        """
        assert self.rt is not None
        wall, mono = self.rt.clock.now(), self.rt.clock.monotonic()
        mark, self._clock_mark = self._clock_mark, (wall, mono)
        if mark is None:
            return 0.0
        step = (wall - mark[0]).total_seconds() - (mono - mark[1])
        if abs(step) <= CLOCK_STEP:
            return 0.0
        logger.warning("wall clock stepped step_s=%+.0f: every feed re-planned from the new time", step)
        self._replan(wall, step)
        return step

    def _replan(self, now: datetime, step: float) -> None:
        """Each feed's next run from its trigger at ``now``; retries keep their remaining delay."""
        assert self.scheduler is not None and self.rt is not None
        from apscheduler.jobstores.base import JobLookupError

        for job in self.scheduler.get_jobs():
            try:
                if job.id.endswith(RETRY):
                    if job.next_run_time is not None:
                        job.modify(next_run_time=job.next_run_time + timedelta(seconds=step))
                    continue
                nxt = job.trigger.get_next_fire_time(None, now)
                if nxt is not None:
                    job.modify(next_run_time=nxt)
            except (OverflowError, ValueError, JobLookupError) as exc:
                logger.warning("re-planning failed feed=%s error=%s", job.id, type(exc).__name__)
        self.scheduler.wakeup()
        # Every file restamped on the new clock, its status from the data's age on it: a
        # step back left ``generated_at`` ahead of the clock (``check`` cannot tell when such
        # a file was last rewritten), a step ahead left data older than it reads.
        for feed in self.config.feeds.values():
            job = self.scheduler.get_job(feed.name)
            try:
                self.rt.coordinator.republish(feed, next_update_at=job.next_run_time if job else None)
            except Exception:  # republish never raises; a bug of ours must not stop the guard
                logger.exception("republish after a clock step failed feed=%s", feed.name)
        self._update_status()
        self._write_metrics()

    def _check_liveness(self) -> list[str]:
        """Feeds not attempted within their limit: re-planned now, ERROR, event ``stalled``."""
        assert self.rt is not None and self.scheduler is not None
        mono = self.rt.clock.monotonic()
        stalled = []
        for name, feed in self.config.feeds.items():
            if name not in self._due:
                self._expect(feed)
                continue
            started = self._running.get(name)
            if started is not None:
                # In flight: a stall only when hung (nothing else will refresh this feed).
                if mono > started + feed.deadline + HANG_GRACE:
                    logger.error(
                        "feed stalled feed=%s attempt running_s=%.0f deadline_s=%.0f: the attempt hangs",
                        name, mono - started, feed.deadline,
                    )
                    self._record_event(name, "stalled", self.rt.clock.now())
                    self._running[name] = mono  # one alarm per period, not one per look
                    stalled.append(name)
                continue
            if mono <= self._due[name]:
                continue
            job = self.scheduler.get_job(name)
            planned = job.next_run_time if job is not None else None
            logger.error(
                "feed stalled feed=%s not_attempted_s=%.0f limit_s=%.0f planned=%s: re-planned now",
                name, mono - self._last_attempt.get(name, mono), self._due[name] - self._last_attempt.get(name, mono),
                planned.isoformat() if planned is not None else "none",
            )
            self._record_event(name, "stalled", self.rt.clock.now())
            if job is not None:
                job.modify(next_run_time=self.rt.clock.now())
                self._expect(feed)
            else:
                self._add_job(feed, run_now=True)
            stalled.append(name)
        if stalled:
            self.scheduler.wakeup()
            self._write_metrics()
        return stalled

    # -- watched files ---------------------------------------------------------------------
    async def _watch(self) -> None:
        """Every ``watch_every`` seconds: rewrite published files that went missing or changed."""
        import asyncio

        while True:
            await asyncio.sleep(self.watch_every)
            try:
                self._check_published()
            except Exception:  # a bug of ours: say so, keep watching
                logger.exception("published files check failed")

    def _feed_of(self, path: Path) -> str | None:
        """The feed a published file belongs to: one of ``feeds.portal.published_names`` (the
        snapshot, its fragment, a rates feed's mirror and history), or ``<feed>/<id>.json``."""
        from feeds.portal import published_names

        try:
            parts = path.relative_to(self.config.snapshot_dir).parts
        except ValueError:
            return None
        if len(parts) == 1:
            return next((f.name for f in self.config.feeds.values() if parts[0] in published_names(f)), None)
        if len(parts) == 2 and parts[0] in self.config.feeds:
            # A per-location file, while the feed still writes it (a location a reload
            # dropped is removed by feeds.portal, not rewritten).
            feed = self.config.feeds[parts[0]]
            ids = {f"{loc.id}.json" for loc in feed.locations} if feed.per_location_files else set()
            return feed.name if parts[1] in ids else None
        return None

    def _check_published(self) -> dict[str, list[str]]:
        """Republish each feed one of whose files is missing or not what was last written."""
        assert self.rt is not None and self.scheduler is not None
        damaged: dict[str, list[watch.Damage]] = {}
        self._ensure_folders()
        found = watch.check(self.config.snapshot_dir)
        still = {d.path for d in found}
        # Repaired (or no longer watched): a new damage to it is news again.
        self._reported = {p: t for p, t in self._reported.items() if p in still}
        mono = self.rt.clock.monotonic()
        for d in found:
            name = self._feed_of(d.path)
            if name is None:
                watch.forget(d.path)  # a removed feed's file: not ours to keep any more
                continue
            damaged.setdefault(name, []).append(d)
        done: dict[str, list[str]] = {}
        for name, items in damaged.items():
            feed = self.config.feeds[name]
            shown = ", ".join(f"{d.path} ({d.reason})" for d in items[:5])
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            news = any(self._reported.get(d.path, ("",))[0] != d.reason for d in items)
            if not news and all(mono - self._reported[d.path][1] < REWRITE_RETRY for d in items):
                continue  # the rewrite failed moments ago (and said why): not every look
            # One ERROR per damage; a rewrite that keeps failing (a full disk) says so itself.
            logger.log(
                logging.ERROR if news else logging.DEBUG,
                "published file damaged feed=%s files=%s%s: rewriting it from the store", name, shown, more,
            )
            self._reported.update((d.path, (d.reason, mono)) for d in items)
            before = {d.path: watch.generation(d.path) for d in items}
            try:
                result = self.rt.coordinator.republish(feed, next_update_at=self._next_update(name, feed))
            except Exception:
                logger.exception("rewriting published files failed feed=%s", name)
                continue
            if news:
                self._record_event(name, "file_rewritten", self.rt.clock.now())
            for d in items:
                if watch.generation(d.path) != before[d.path]:
                    # Rewritten: damaged again before the next look is news again, not a
                    # rewrite that keeps failing.
                    self._reported.pop(d.path, None)
                elif result.status != NOT_WRITTEN:
                    # Not one of the files this feed writes any more (a location dropped).
                    watch.forget(d.path)
            done[name] = [str(d.path) for d in items]
        if done:
            self._write_metrics()
        return done

    def _next_update(self, name: str, feed: FeedConfig) -> datetime:
        """The feed's next planned attempt (its retry if sooner), for ``next_update_at``."""
        assert self.rt is not None and self.scheduler is not None
        times = [
            j.next_run_time
            for j in (self.scheduler.get_job(name), self.scheduler.get_job(name + RETRY))
            if j is not None and j.next_run_time is not None
        ]
        now = self.rt.clock.now()
        return min(times) if times else now + timedelta(seconds=feed.every)

    # -- reload --------------------------------------------------------------------------
    def _reload(self) -> None:
        """SIGHUP: read the configuration again; keep the old one if the new one is bad."""
        self.notifier.reloading()
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            logger.error("reload refused, keeping the running configuration: %s", exc)
            self.notifier.ready()
            return
        if new.cache_dir != self.config.cache_dir:
            logger.warning("reload: cache_dir changed; it takes effect at the next restart")
        assert self.rt is not None and self.scheduler is not None
        from apscheduler.jobstores.base import JobLookupError

        old_names, new_names = set(self.config.feeds), set(new.feeds)
        changed = {n for n in old_names & new_names if new.feeds[n] != self.config.feeds[n]}
        added, removed = new_names - old_names, old_names - new_names
        self.config = new
        self.rt.config = new
        self.rt.coordinator.config = _keep_cache_dir(new, self.rt.coordinator.config)
        for name in removed:
            for job_id in (name, name + RETRY):
                with contextlib.suppress(JobLookupError):
                    self.scheduler.remove_job(job_id)
            self._due.pop(name, None)
            self._last_attempt.pop(name, None)
        # New feeds and changed ones (a fixed URL, say) are attempted at once: the admin sees
        # the effect of the edit now (politeness towards the upstream still applies).
        for name in added | changed:
            self._add_job(new.feeds[name], run_now=True)
        # Unchanged feeds keep their plan (the job reads the new configuration when it runs);
        # one that somehow lost its job, or has none planned, gets it back.
        for name in new_names - added - changed:
            job = self.scheduler.get_job(name)
            if job is None or job.next_run_time is None:
                self._add_job(new.feeds[name], run_now=False)
        logger.info(
            "reloaded feeds=%d added=%d changed=%d removed=%d", len(new.feeds), len(added), len(changed), len(removed)
        )
        self.notifier.ready()
        self._update_status()

    # -- health outputs ------------------------------------------------------------------
    def _rows(self) -> list[Any]:
        """Health rows for STATUS= and the metrics; never a negative age (after a clock step)."""
        assert self.rt is not None
        from dataclasses import replace

        from feeds.health import feed_rows

        rows = feed_rows(self.config, self.rt.store, self.rt.clock.now())
        return [
            replace(r, data_age_s=0.0) if r.data_age_s is not None and r.data_age_s < 0 else r for r in rows
        ]

    def _update_status(self) -> None:
        from feeds.health import status_line

        try:
            self.notifier.status(status_line(self._rows()))
        except Exception:
            logger.exception("status update failed")

    def _write_metrics(self) -> None:
        if self.config.metrics_file is None or self.rt is None:
            return
        from feeds.metrics import write_metrics

        try:
            write_metrics(self.config.metrics_file, self._rows(), self.rt.clock.now())
        except OSError as exc:
            logger.warning("metrics file not written kind=%s", type(exc).__name__)

    async def _heartbeat(self) -> None:
        """Write the heartbeat ``status`` and ``check`` show, from inside the loop."""
        import asyncio

        if self.instance is None:
            return
        while True:
            self.instance.beat()
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog from inside the loop: a wedged loop stops the pings."""
        import asyncio

        interval = self.notifier.watchdog_interval()
        if not interval:
            return
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)


def _keep_cache_dir(new: Config, old: Config) -> Config:
    from dataclasses import replace

    return replace(new, cache_dir=old.cache_dir)


def _ensure_folders(config: Config) -> None:
    """Make (or mend) the snapshot folder and per-location subfolders with modes the web
    server's group reads, whatever the umask (issue 19): a folder deleted while we run
    comes back before the next write.  A disk fault is the publish's to report."""
    from feeds.folders import ensure_published_folders

    try:
        for folder in ensure_published_folders(config):
            logger.warning("folder made again path=%s", folder)
    except OSError as exc:
        logger.debug("snapshot folders cannot be made now: %s", exc)


def _warm_start(config: Config, republish: Callable[[FeedConfig], str]) -> LaterFragments:
    """Every feed republished (``republish`` gives the status written), the fragments that may
    wait left for later."""
    _ensure_folders(config)
    with fragments_later() as later:
        for feed in config.feeds.values():
            try:
                status = republish(feed)
                logger.info("warm start feed=%s status=%s", feed.name, status)
            except Exception:
                logger.exception("warm start failed feed=%s", feed.name)
    return later


def _hold_signals() -> list[int]:
    """Until the event loop's handlers replace it: SIGTERM, SIGINT and SIGHUP noted, not acted on."""
    held: list[int] = []

    def note(signum: int, frame: object) -> None:
        held.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, note)
    return held


def run_daemon(config_path: str | Path | None, config: Config, *, instance: InstanceLock | None = None) -> int:
    """Entry point of ``portal-feeds run`` (the caller holds the cache's instance lock).

    The warm start before the event loop: the store opened, every feed republished from it
    without the coordinator (``feeds.app.republish``), READY=1; then asyncio, the event loop
    and the runtime on the same store (issue 20)."""
    from feeds.app import republish, warm_publisher
    from feeds.clock import SystemClock
    from feeds.store import open_store

    setup_logging(logging.INFO)
    clock = SystemClock()
    notifier = Notifier.from_env()
    # Temporary files of writes killed midway are removed by ``open_runtime``, after READY.
    store: Store = open_store(config.cache_dir)
    try:
        publisher = warm_publisher(config, store, clock)
        later = _warm_start(config, lambda feed: republish(publisher, feed, next_update_at=clock.now()))
        held = _hold_signals()
        notifier.ready()
        # The cyclic garbage collector, off for the start (feeds.cli), is on from here.
        gc.enable()
        import asyncio

        daemon = Daemon(
            config_path, config, clock=clock, notifier=notifier, instance=instance,
            runtime_factory=lambda cfg: open_runtime(cfg, clock=clock, store=store, defer_client=True),
            started=Started(later, held, publisher),
        )
        return asyncio.run(daemon.run())
    finally:
        store.close()
