"""Issue 16, reproduction 1: a reload (SIGHUP) keeps every feed scheduled.

Before the fix, ``_schedule_all(first_run_now=False)`` re-added every job with
``next_run_time=None``, which APScheduler 3 takes as "paused": the feeds the reload did not
change were never attempted again, while ``status`` kept saying fresh.

The daemon runs in-process on the real clock against the simulator; attempts are counted
from each feed's health.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from feeds.config import load_config
from feeds.daemon import Daemon
from feeds.notify import Notifier
from feeds.testing.upstream import UpstreamSimulator

FEED = """
[feeds.{name}]
kind = "vietcombank"
url = "{url}"
every = "1s"
min_interval = "0s"
timeout = "1s"
deadline = "2s"
max_stale = "1h"
"""


def _write(path: Path, url: str, feeds: dict[str, str]) -> None:
    body = '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n'
    for name, extra in feeds.items():
        body += FEED.format(name=name, url=url) + extra
    path.write_text(body, encoding="utf-8")


def _counts(d: Daemon) -> dict[str, int]:
    """Attempts per feed so far, from the feeds' health (every attempt is one request here)."""
    out: dict[str, int] = {}
    if d.rt is None:
        return out
    for name in ("a", "b", "c"):
        h = d.rt.store.get(f"health/{name}")
        out[name] = sum(h.attempts.values()) if h is not None else 0
    return out


def _new_attempts(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}


def test_reload_keeps_changed_unchanged_added_feeds_scheduled(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="feeds")
    cfg_path = tmp_path / "portal-feeds.toml"
    with UpstreamSimulator() as sim:
        url = sim.url("vietcombank")
        _write(cfg_path, url, {"a": "", "b": ""})
        d = Daemon(cfg_path, load_config(cfg_path), notifier=Notifier(None))

        async def window(seconds: float) -> dict[str, int]:
            before = _counts(d)
            await asyncio.sleep(seconds)
            return _new_attempts(before, _counts(d))

        async def scenario() -> list[dict[str, int]]:
            run = asyncio.create_task(d.run())
            while d.scheduler is None:
                await asyncio.sleep(0.01)
            seen = []
            try:
                seen.append(await window(3.5))  # before any reload
                # 1. The same file.
                d._reload()
                seen.append(await window(3.5))
                # 2. Only b's table changed: a must go on too.
                _write(cfg_path, url, {"a": "", "b": 'max_change = 0.3\n'})
                d._reload()
                seen.append(await window(3.5))
                # 3. b removed, c added.
                _write(cfg_path, url, {"a": "", "c": ""})
                d._reload()
                await asyncio.sleep(0.5)  # a removed feed's attempt may still be in flight
                seen.append(await window(3.5))
                assert d.scheduler is not None
                jobs = {j.id: j.next_run_time for j in d.scheduler.get_jobs()}
                assert set(jobs) <= {"a", "c", "a#retry", "c#retry"}, jobs
                assert all(t is not None for t in jobs.values()), jobs  # none paused
            finally:
                d.stop_event.set()
                assert await asyncio.wait_for(run, 20) == 0
            return seen

        first, same, changed, added = asyncio.run(scenario())
    assert first["a"] >= 2 and first["b"] >= 2, first
    assert same["a"] >= 2 and same["b"] >= 2, ("same file", same)
    assert changed["a"] >= 2 and changed["b"] >= 2, ("b changed", changed)
    assert added["a"] >= 2 and added["c"] >= 2 and added.get("b", 0) == 0, ("b removed, c added", added)
    assert "Traceback" not in caplog.text
