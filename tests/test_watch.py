"""Issue 16, item 8 (first part) and reproduction 5's last road: published files are watched.

A snapshot deleted or replaced by garbage used to be served as it was until the feed's next
attempt (15-30 minutes), and nothing noticed.  ``feeds.publish.write_atomic`` now records
what it wrote (``feeds.watch``); the daemon checks every ``WATCH_EVERY`` seconds and
republishes a feed whose snapshot, fragment or per-location file is missing or differs: one
ERROR line naming the files, the scheduler event ``file_rewritten`` (status, metrics).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import watch
from feeds.publish import write_atomic

# -- the watcher -------------------------------------------------------------------------

#: What may happen to a published file; the second item: whether it is damage (and which).
ACTIONS: dict[str, str | None] = {
    "nothing": None,
    "touch": None,  # new mtime, same bytes
    "chmod": None,  # new ctime, same bytes
    "same_bytes_copied_over": None,  # a new inode, same bytes
    "delete": "missing",
    "truncate": "changed",
    "append": "changed",
    "same_size_garbage": "changed",  # written in place: same size, new bytes
    "garbage_renamed_over": "changed",
    "emptied": "changed",
}


def _damage(path: Path, action: str, seed: int) -> None:
    body = path.read_bytes()
    if action == "touch":
        os.utime(path, ns=(1_000_000_000, 1_000_000_000 + seed))
    elif action == "chmod":
        os.chmod(path, 0o600 if seed % 2 else 0o640)
    elif action == "same_bytes_copied_over":
        tmp = path.with_suffix(".copy")
        tmp.write_bytes(body)
        os.replace(tmp, path)
    elif action == "delete":
        path.unlink()
    elif action == "truncate":
        path.write_bytes(body[: max(0, len(body) // 2 - 1)])
    elif action == "append":
        with open(path, "ab") as f:
            f.write(b"\n")
    elif action == "same_size_garbage":
        with open(path, "r+b") as f:
            f.write(bytes((b + 1 + seed) % 256 for b in body[:8]))
    elif action == "garbage_renamed_over":
        tmp = path.with_suffix(".garbage")
        tmp.write_bytes(os.urandom(16) + body)
        os.replace(tmp, path)
    elif action == "emptied":
        path.write_bytes(b"")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    files=st.lists(
        st.tuples(st.binary(min_size=8, max_size=300), st.sampled_from(sorted(ACTIONS)), st.integers(0, 9)),
        min_size=1,
        max_size=6,
    )
)
def test_the_watcher_reports_exactly_the_damaged_files(files: list[tuple[bytes, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "snapshots"
        paths = []
        for i, (body, _, _) in enumerate(files):
            path = folder / ("sub" if i % 2 else "") / f"f{i}.json"
            write_atomic(path, body)
            paths.append(path)
        assert watch.check(folder) == []
        for path, (_, action, seed) in zip(paths, files, strict=True):
            _damage(path, action, seed)
        expected = {(p, ACTIONS[a]) for p, (_, a, _) in zip(paths, files, strict=True) if ACTIONS[a]}
        assert {(d.path, d.reason) for d in watch.check(folder)} == expected
        # A rewrite of each damaged file (what the daemon does) ends the report.
        for path, (body, _, _) in zip(paths, files, strict=True):
            if any(p == path for p, _ in expected):
                write_atomic(path, body)
        assert watch.check(folder) == []
        watch.forget(paths)


def test_other_folders_are_not_reported(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a" / "x.json", b"{}")
    write_atomic(tmp_path / "b" / "y.json", b"{}")
    (tmp_path / "b" / "y.json").unlink()
    assert watch.check(tmp_path / "a") == []
    assert [d.reason for d in watch.check(tmp_path / "b")] == ["missing"]
    watch.forget([tmp_path / "a" / "x.json", tmp_path / "b" / "y.json"])


# -- the daemon ----------------------------------------------------------------------------
TWO = '[{ id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 }, { id = "hue", name = "Huế", lat = 16.46, lon = 107.59 }]'


def test_a_deleted_or_damaged_published_file_is_rewritten(tmp_path: Path, caplog, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    from feeds.daemon import Daemon
    from feeds.health import feed_rows
    from feeds.notify import Notifier
    from feeds.testing.upstream import UpstreamSimulator
    from tests.helpers import config_file

    caplog.set_level(logging.INFO, logger="feeds")
    with UpstreamSimulator() as sim:
        cfg = config_file(
            tmp_path,
            '[monitoring]\nmetrics_file = "portal_feeds.prom"\n\n'
            f'[feeds.rates]\nkind = "vietcombank"\nurl = "{sim.url("vietcombank")}"\nevery = "1h"\n'
            'timeout = "2s"\ndeadline = "4s"\nmirror = "vietcombank-xml"\n\n'
            f'[feeds.weather]\nkind = "open-meteo"\nurl = "{sim.url("open-meteo")}"\nlocations = {TWO}\n'
            'per_location_files = true\nevery = "1h"\ntimeout = "2s"\ndeadline = "4s"\n',
        )
        snaps = tmp_path / "snapshots"
        rates, fragment, hue = snaps / "rates.json", snaps / "weather.html", snaps / "weather" / "hue.json"
        mirror = snaps / "rates.xml"
        history_file = snaps / "rates.history.json"
        d = Daemon(None, cfg, notifier=Notifier(None))
        d.watch_every = 0.3

        def fetched(path: Path) -> bool:
            try:
                return json.loads(path.read_text(encoding="utf-8")).get("fetched_at") is not None
            except (OSError, ValueError):
                return False

        async def go() -> tuple[bytes, dict[str, int], list[dict[str, int]]]:
            run = asyncio.create_task(d.run())
            try:
                for _ in range(200):
                    if fetched(rates) and fetched(snaps / "weather.json") and fetched(hue):
                        break
                    await asyncio.sleep(0.05)
                assert fetched(rates) and fetched(hue), "the first attempts did not publish"
                good_fragment = fragment.read_bytes()
                requests = {n: sim.request_count(n) for n in ("vietcombank", "open-meteo")}
                rates.unlink()
                mirror.unlink()  # the Vietcombank XML mirror is watched like the others
                fragment.write_bytes(b"<p>hacked</p>")
                hue.write_bytes(b'{"truncated": ')
                for _ in range(100):
                    if fetched(rates) and fetched(hue) and mirror.exists() and b"hacked" not in fragment.read_bytes():
                        break
                    await asyncio.sleep(0.05)
                # The mirror alone (nothing else damaged): watched like the others; so is the
                # rates history for the widget (issue 21).
                mirror.unlink()
                history_file.unlink()
                for _ in range(100):
                    if mirror.exists() and history_file.exists():
                        break
                    await asyncio.sleep(0.05)
                after = {n: sim.request_count(n) for n in ("vietcombank", "open-meteo")}
                assert d.rt is not None
                rows = feed_rows(cfg, d.rt.store, d.rt.clock.now())
                events = [r.scheduler_events for r in rows]
                return good_fragment, {k: after[k] - requests[k] for k in after}, events
            finally:
                d.stop_event.set()
                assert await asyncio.wait_for(run, 20) == 0

        good_fragment, new_requests, events = asyncio.run(go())
    validate_snapshot(rates)
    validate_snapshot(hue)
    assert mirror.read_bytes().startswith(b"<!--") or b"<ExrateList>" in mirror.read_bytes()
    assert b"hacked" not in fragment.read_bytes() and fragment.read_bytes().startswith(good_fragment[:20])
    assert new_requests == {"vietcombank": 0, "open-meteo": 0}  # from the store, not a fetch
    assert events == [{"file_rewritten": 2}, {"file_rewritten": 1}]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3, errors
    rates_line = "".join(e for e in errors if "feed=rates" in e and str(mirror) in e)
    assert f"{mirror} (missing)" in rates_line and f"{history_file} (missing)" in rates_line
    assert history_file.exists()
    assert f"published file damaged feed=rates files={rates} (missing)" in errors[0] + errors[1]
    weather_line = next(e for e in errors if "feed=weather" in e)
    assert str(fragment) in weather_line and str(hue) in weather_line
    metrics = (tmp_path / "portal_feeds.prom").read_text(encoding="utf-8")
    assert 'portal_feeds_scheduler_events_total{event="file_rewritten",feed="rates"} 2.0' in metrics


def test_a_rewrite_that_fails_is_reported_once_and_retried(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A directory where the snapshot should be: not rewritable; one ERROR, then quiet retries."""
    from datetime import UTC, datetime

    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from feeds.app import open_runtime
    from feeds.clock import FakeClock
    from feeds.daemon import REWRITE_RETRY, Daemon
    from feeds.notify import Notifier
    from feeds.schedule import vietnam_zone
    from feeds.testing.upstream import UpstreamSimulator
    from tests.helpers import config_file

    caplog.set_level(logging.DEBUG, logger="feeds.daemon")
    with UpstreamSimulator() as sim:
        cfg = config_file(
            tmp_path,
            f'[feeds.rates]\nkind = "vietcombank"\nurl = "{sim.url("vietcombank")}"\ntimeout = "2s"\ndeadline = "4s"\n',
        )
        clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
        rates = tmp_path / "snapshots" / "rates.json"

        async def go() -> list[dict[str, list[str]]]:
            async with open_runtime(cfg, clock=clock) as rt:
                d = Daemon(None, cfg, clock=clock, notifier=Notifier(None))
                d.rt = rt
                d.scheduler = AsyncIOScheduler(timezone=vietnam_zone())
                d._schedule_all(first_run_now=False)
                d.scheduler.start(paused=True)
                try:
                    await d._job("rates")
                    rates.unlink()
                    rates.mkdir()  # the rewrite cannot succeed
                    seen = [d._check_published(), d._check_published()]
                    clock.advance(REWRITE_RETRY)
                    seen.append(d._check_published())  # tried again, quietly
                    rates.rmdir()  # fixed: missing now, rewritten at once
                    seen.append(d._check_published())
                    seen.append(d._check_published())
                    return seen
                finally:
                    d.scheduler.shutdown(wait=False)

        seen = asyncio.run(go())
    assert [bool(s) for s in seen] == [True, False, True, True, False]
    assert json.loads(rates.read_text(encoding="utf-8"))["status"] == "fresh"
    damaged = [r for r in caplog.records if "published file damaged" in r.getMessage()]
    assert [r.levelno for r in damaged] == [logging.ERROR, logging.DEBUG, logging.ERROR]
    assert "(changed)" in damaged[0].getMessage() and "(missing)" in damaged[2].getMessage()
