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

from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- any sequence of valid files -----------------------------------------------------------
#: Per feed: absent, or one of a few variants of its table.
VARIANTS = ["", 'max_change = 0.3\n', 'every = "1m"\n', 'at = "*/5 7-18 * * 1-6"\n']


def _table(name: str, variant: int) -> str:
    extra = VARIANTS[variant]
    text = FEED.format(name=name, url="http://127.0.0.1:9/pXML.aspx") + extra
    if "every" in extra or "at =" in extra:
        text = text.replace('every = "1s"\n', "", 1)
    return text


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    steps=st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, len(VARIANTS) - 1), min_size=1),
        min_size=1,
        max_size=5,
    )
)
def test_any_sequence_of_reloads_keeps_every_feed_planned(steps: list[dict[str, int]]) -> None:
    """Every configured feed has a planned job; unchanged ones keep their plan; removed ones none."""
    import tempfile
    from datetime import UTC, datetime

    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from feeds.app import open_runtime
    from feeds.clock import FakeClock
    from feeds.schedule import vietnam_zone
    from feeds.store import MemoryStore

    def write(path: Path, feeds: dict[str, int]) -> None:
        body = '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n'
        path.write_text(body + "".join(_table(n, v) for n, v in sorted(feeds.items())), encoding="utf-8")

    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "portal-feeds.toml"
        current = {"a": 0, "b": 0}
        write(cfg_path, current)
        clock = FakeClock(datetime.now(UTC).replace(microsecond=0))

        async def go() -> None:
            cfg = load_config(cfg_path)
            async with open_runtime(cfg, clock=clock, store=MemoryStore()) as rt:
                d = Daemon(cfg_path, cfg, clock=clock, notifier=Notifier(None))
                d.rt = rt
                d.scheduler = AsyncIOScheduler(timezone=vietnam_zone())
                d._schedule_all(first_run_now=False)
                d.scheduler.start(paused=True)
                try:
                    nonlocal current
                    for new in steps:
                        before = {j.id: j.next_run_time for j in d.scheduler.get_jobs()}
                        write(cfg_path, new)
                        d._reload()
                        jobs = {j.id: j.next_run_time for j in d.scheduler.get_jobs()}
                        assert set(jobs) == set(new), (current, new, jobs)
                        assert all(t is not None for t in jobs.values()), (current, new, jobs)
                        for name in set(new) & set(current):
                            if new[name] == current[name]:
                                assert jobs[name] == before[name], ("unchanged feed re-planned", name)
                        current = new
                finally:
                    d.scheduler.shutdown(wait=False)

        asyncio.run(go())
