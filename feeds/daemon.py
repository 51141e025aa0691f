"""The long-running service: ``portal-feeds run``.

- Warm start: before any fetch, every feed's snapshot is republished from the store with its
  true status, so a restart in the middle of an outage still serves the last good data.
- APScheduler 3.x ``AsyncIOScheduler``: one job per feed (a fixed grid with per-run jitter,
  ``feeds.schedule.GridTrigger``, or a cron expression in Vietnam time); after a failed
  attempt a one-off retry job at the earliest polite moment (``feeds.schedule.retry_at``), ``coalesce``, ``max_instances=1``, a misfire grace.  The job
  body is ``Coordinator.refresh``, which classifies every upstream fault itself, so a
  scheduler error event means a bug of ours: it is logged and recorded, never fatal.
- systemd notify protocol (``feeds.notify``): READY=1 after the warm start, STATUS= after
  each attempt, WATCHDOG=1 from a task inside the event loop (a wedged loop stops the pings
  and systemd restarts us), RELOADING=1 on SIGHUP, STOPPING=1 on SIGTERM/SIGINT.
- SIGTERM/SIGINT: stop scheduling, give in-flight attempts a short grace, exit 0.
  SIGHUP: reload the configuration; a bad file is refused and the old one keeps running.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from feeds.app import Runtime, open_runtime
from feeds.clock import Clock
from feeds.config import Config, ConfigError, FeedConfig, load_config
from feeds.health import feed_rows, status_line
from feeds.instance import InstanceLock
from feeds.logs import setup_logging
from feeds.notify import Notifier
from feeds.schedule import build_trigger, crontab_day_of_week, vietnam_zone

__all__ = ["Daemon", "build_trigger", "crontab_day_of_week", "run_daemon"]

logger = logging.getLogger(__name__)

#: How long in-flight attempts may finish after SIGTERM before they are cancelled.
STOP_GRACE = 5.0
#: How often the daemon's heartbeat is written to the instance lock's record.
HEARTBEAT_EVERY = 10.0
#: A run may start this late (e.g. after a suspend) and still run.
MISFIRE_GRACE = 300


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
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.clock = clock
        self.notifier = notifier or Notifier.from_env()
        self.runtime_factory = runtime_factory or (lambda cfg: open_runtime(cfg, clock=clock))
        self.stop_event = asyncio.Event()
        self.inflight: set[asyncio.Task[Any]] = set()
        self.rt: Runtime | None = None
        self.scheduler: AsyncIOScheduler | None = None
        #: The cache's instance lock; its record carries our heartbeat for ``status``.
        self.instance = instance

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit code."""
        loop = asyncio.get_running_loop()
        async with self.runtime_factory(self.config) as rt:
            self.rt = rt
            self.warm_start()
            self.scheduler = AsyncIOScheduler(event_loop=loop, timezone=vietnam_zone())
            self.scheduler.add_listener(
                self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
            )
            self._schedule_all(first_run_now=True)
            self.scheduler.start()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop_event.set)
            loop.add_signal_handler(signal.SIGHUP, self._reload)
            self.notifier.ready()
            self._update_status()
            logger.info("started feeds=%d config=%s", len(self.config.feeds), self.config.path or "embedded")
            watchdog = asyncio.create_task(self._watchdog())
            heartbeat = asyncio.create_task(self._heartbeat())
            try:
                await self.stop_event.wait()
            finally:
                self.notifier.stopping()
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

    def warm_start(self) -> None:
        """Republish every feed's snapshot from the store, before any fetch."""
        assert self.rt is not None
        for feed in self.config.feeds.values():
            try:
                r = self.rt.coordinator.republish(feed, next_update_at=self.rt.clock.now())
                logger.info("warm start feed=%s status=%s", feed.name, r.status)
            except Exception:
                logger.exception("warm start failed feed=%s", feed.name)

    # -- scheduling ----------------------------------------------------------------------
    def _schedule_all(self, *, first_run_now: bool) -> None:
        assert self.scheduler is not None and self.rt is not None
        now = self.rt.clock.now()
        for feed in self.config.feeds.values():
            self.scheduler.add_job(
                self._job,
                trigger=build_trigger(feed),
                args=[feed.name],
                id=feed.name,
                name=feed.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=MISFIRE_GRACE,
                next_run_time=now if first_run_now else None,
                replace_existing=True,
            )

    async def _job(self, name: str) -> None:
        """The job body: one refresh, then health outputs; never raises for upstream faults."""
        assert self.rt is not None and self.scheduler is not None
        feed = self.config.feeds.get(name)
        if feed is None:  # removed by a reload while queued
            return
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            job = self.scheduler.get_job(name)
            nxt: datetime | None = job.next_run_time if job is not None else None
            if nxt is None or nxt <= self.rt.clock.now():
                nxt = self.rt.clock.now() + timedelta(seconds=feed.every)
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
            id=f"{feed.name}#retry",
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
        name = {EVENT_JOB_ERROR: "job_error", EVENT_JOB_MISSED: "missed", EVENT_JOB_MAX_INSTANCES: "still_running"}[
            event.code
        ]
        if event.code == EVENT_JOB_ERROR:
            exc = getattr(event, "exception", None)
            logger.error("scheduler event=%s feed=%s error=%s", name, event.job_id, type(exc).__name__)
        else:
            logger.warning("scheduler event=%s feed=%s", name, event.job_id)
        if self.rt is not None:
            key = f"scheduler/{event.job_id}"
            counts: dict[str, int] = dict(self.rt.store.get(key) or {})
            counts[name] = counts.get(name, 0) + 1
            self.rt.store.set(key, counts)
            when = getattr(event, "scheduled_run_time", None)
            self.rt.store.set(f"{key}/last", {"event": name, "at": when})

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
        old_names = set(self.config.feeds)
        changed = {n for n in old_names & set(new.feeds) if new.feeds[n] != self.config.feeds[n]}
        self.config = new
        self.rt.config = new
        self.rt.coordinator.config = _keep_cache_dir(new, self.rt.coordinator.config)
        for name in old_names - set(new.feeds):
            self.scheduler.remove_job(name)
        self._schedule_all(first_run_now=False)
        # New feeds and changed ones (a fixed URL, say) are attempted at once: the admin sees
        # the effect of the edit now (politeness towards the upstream still applies).
        for name in (set(new.feeds) - old_names) | changed:
            job = self.scheduler.get_job(name)
            if job is not None:
                job.modify(next_run_time=self.rt.clock.now())
        logger.info("reloaded feeds=%d", len(new.feeds))
        self.notifier.ready()
        self._update_status()

    # -- health outputs ------------------------------------------------------------------
    def _rows(self) -> list[Any]:
        assert self.rt is not None
        return feed_rows(self.config, self.rt.store, self.rt.clock.now())

    def _update_status(self) -> None:
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
        if self.instance is None:
            return
        while True:
            self.instance.beat()
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog from inside the loop: a wedged loop stops the pings."""
        interval = self.notifier.watchdog_interval()
        if not interval:
            return
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)


def _keep_cache_dir(new: Config, old: Config) -> Config:
    from dataclasses import replace

    return replace(new, cache_dir=old.cache_dir)


def run_daemon(config_path: str | Path | None, config: Config, *, instance: InstanceLock | None = None) -> int:
    """Entry point of ``portal-feeds run`` (the caller holds the cache's instance lock)."""
    setup_logging(logging.INFO)
    return asyncio.run(Daemon(config_path, config, instance=instance).run())
