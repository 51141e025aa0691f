"""Issue 16 §4: ``check`` cannot be fooled, and no duration is ever negative.

Reproductions: a file the daemon stopped rewriting while the health still says ``fresh``
(check said OK); the clock stepped back so that stored times are in the future (``status``
printed ``AGE -86327s``, ``check`` ``stale for -9862s``); the daemon down (check said OK as
long as the last attempt was recent enough).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import instance
from feeds.config import Config, load_config
from feeds.health import (
    evaluate_check,
    feed_rows,
    format_table,
    print_status,
    published_files,
    rewrite_deadline,
    run_check,
)
from feeds.instance import InstanceLock
from feeds.store import GoodData, Health, MemoryStore, open_store

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
#: A negative duration as status/check would print it: "-86327s", "-5m", "-1h00m", "-2d3h".
NEGATIVE = re.compile(r"(?<![\w:T+-])-\d+(s|m|h\d|d\d)|\"(data_age_s|age_s)\": -")


class Fixed:
    def __init__(self, now: datetime = NOW) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t


def _write_config(tmp_path: Path, extra: str = "", feed_extra: str = 'every = "15m"\n') -> Config:
    path = tmp_path / "portal-feeds.toml"
    path.write_text(
        f'[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n{extra}\n[feeds.rates]\nkind = "vietcombank"\n'
        f'url = "http://127.0.0.1:9/x"\nmin_interval = "0s"\ntimeout = "10s"\ndeadline = "20s"\n{feed_extra}',
        encoding="utf-8",
    )
    return load_config(path)


def _health(config: Config, *, attempt_ago: float = 60, fetched_ago: float = 60, status: str = "fresh",
            upstream_since_ago: float | None = None) -> None:
    store = open_store(config.cache_dir)
    try:
        store.set("health/rates", Health(feed="rates", last_attempt_at=NOW - timedelta(seconds=attempt_ago),
                                         last_success_at=NOW - timedelta(seconds=fetched_ago), outcome="ok",
                                         status=status, next_attempt_at=NOW + timedelta(minutes=14)))
        store.set("good/rates", GoodData({"x": 1}, NOW - timedelta(seconds=fetched_ago), None, "S", "http://x/"))
        if upstream_since_ago is not None:
            store.set("trust/rates", {"upstream_stale_since": NOW - timedelta(seconds=upstream_since_ago)})
    finally:
        store.close()


def _file(config: Config, written_ago: float) -> None:
    config.snapshot_dir.mkdir(parents=True, exist_ok=True)
    when = (NOW - timedelta(seconds=written_ago)).astimezone(UTC).isoformat(timespec="seconds")
    (config.snapshot_dir / "rates.json").write_text(json.dumps({"generated_at": when, "feed": "rates"}))


@pytest.fixture(autouse=True)
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.setattr(instance, "SYSTEM_RUNTIME_DIR", tmp_path / "no-run")
    monkeypatch.setattr(instance, "TMP_ROOT", tmp_path / "no-tmp")
    monkeypatch.setattr(instance, "XDG_ROOT", tmp_path / "no-run-user")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[InstanceLock]:
    lock = InstanceLock(tmp_path / "cache", "run", tmp_path / "portal-feeds.toml").acquire()
    lock.beat(NOW - timedelta(seconds=5))
    yield lock
    lock.release()


def _check(config: Config, now: datetime = NOW) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(config, list(config.feeds), clock=Fixed(now), out=out)
    return code, out.getvalue()


def test_a_file_not_rewritten_is_critical_though_health_says_fresh(tmp_path: Path, daemon: InstanceLock) -> None:
    """Reproduction: the daemon stopped rewriting; health (and the file) still say fresh."""
    config = _write_config(tmp_path)
    _health(config, attempt_ago=60, fetched_ago=60)
    _file(config, written_ago=2 * 900 + 20 + 1)
    code, line = _check(config)
    assert code == 2, line
    assert "rates file not rewritten for 30m (limit 30m)" in line
    _file(config, written_ago=2 * 900 + 20 - 1)  # within 2 x every + deadline: fine
    code, line = _check(config)
    assert code == 0, line


def test_a_missing_or_garbage_file_is_critical(tmp_path: Path, daemon: InstanceLock) -> None:
    config = _write_config(tmp_path)
    _health(config)
    code, line = _check(config)
    assert code == 2 and "rates file missing" in line
    config.snapshot_dir.mkdir(parents=True, exist_ok=True)
    (config.snapshot_dir / "rates.json").write_bytes(b"\x00garbage")
    code, line = _check(config)
    assert code == 2 and "rates file not json" in line


def test_the_daemon_down_is_critical_unless_fetch_runs_from_cron(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    _health(config)
    _file(config, written_ago=30)
    code, line = _check(config)
    assert code == 2 and "daemon down" in line, line
    cron = _write_config(tmp_path, "[monitoring]\ncheck_require_daemon = false\n")
    code, line = _check(cron)
    assert code == 0, line
    _file(cron, written_ago=3600)  # cron stopped: the file rule still holds
    code, line = _check(cron)
    assert code == 2 and "not rewritten" in line and "daemon down" not in line


def test_the_daemon_down_is_critical_even_when_health_cannot_be_read(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    code, line = _check(config)
    assert code == 2 and line.startswith("PORTAL-FEEDS CRITICAL - daemon down")
    assert "cannot read the feed health" in line and line.count("\n") == 1


def test_a_wedged_daemon_is_critical(tmp_path: Path, daemon: InstanceLock) -> None:
    config = _write_config(tmp_path)
    _health(config)
    _file(config, written_ago=30)
    daemon.beat(NOW - timedelta(minutes=10))
    code, line = _check(config)
    assert code == 2 and "daemon last heartbeat 10m ago: wedged" in line


def test_clock_stepped_back_no_negative_ages_and_no_ok(tmp_path: Path, daemon: InstanceLock) -> None:
    """Reproduction 2: after a +1 day step and back, times are a day in the future."""
    config = _write_config(tmp_path)
    _health(config, attempt_ago=-86327, fetched_ago=-86327, upstream_since_ago=-9862)
    _file(config, written_ago=-86327)
    code, line = _check(config)
    assert not NEGATIVE.search(line), line
    assert code == 2 and "file generated_at in the future (clock stepped?)" in line
    assert "fetched_at in the future (clock stepped?)" in line
    out = io.StringIO()
    assert print_status(config, clock=Fixed(), out=out) == 1
    text = out.getvalue()
    assert not NEGATIVE.search(text), text
    row = text.splitlines()[3]
    assert row.split()[:2] == ["rates", "fresh"] and "in the future (clock stepped?)" in row
    out = io.StringIO()
    print_status(config, as_json=True, clock=Fixed(), out=out)
    doc = json.loads(out.getvalue())
    feed = doc["feeds"][0]
    assert feed["data_age_s"] == 0 and feed["fetched_at_in_future"] is True
    assert feed["published"]["generated_at_in_future"] is True and feed["published"]["age_s"] is None
    assert "fetched_at in the future (clock stepped?)" in feed["clock_warnings"]


def test_cron_feeds_are_judged_by_their_own_schedule(tmp_path: Path) -> None:
    """``at = "*/15 7-18 * * 1-6"``: quiet nights are not an alarm, a missed day run is."""
    config = _write_config(tmp_path, feed_extra='at = "*/15 7-18 * * 1-6"\n')
    feed = config.feeds["rates"]
    vn = timedelta(hours=7)
    tuesday_3am = datetime(2026, 11, 24, 3, 0, tzinfo=UTC) - vn  # 2026-11-24 is a Tuesday
    # The last two runs due were Monday 18:45 and 18:30 (Vietnam time).
    assert rewrite_deadline(feed, tuesday_3am) == datetime(2026, 11, 23, 18, 30, tzinfo=UTC) - vn - timedelta(seconds=1)
    # Mid-morning: the last two runs are 15 minutes apart.
    ten = datetime(2026, 11, 24, 10, 1, tzinfo=UTC) - vn
    assert rewrite_deadline(feed, ten) == datetime(2026, 11, 24, 9, 45, tzinfo=UTC) - vn - timedelta(seconds=1)
    grid = _write_config(tmp_path).feeds["rates"]
    assert rewrite_deadline(grid, NOW) == NOW - timedelta(seconds=2 * 900 + 20)


offsets = st.one_of(st.none(), st.floats(min_value=-3 * 86400, max_value=3 * 86400, allow_nan=False))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(attempt=offsets, fetched=offsets, since=offsets, written=offsets, beat=offsets)
def test_no_negative_duration_and_no_unproven_ok(attempt: float | None, fetched: float | None, since: float | None,
                                                 written: float | None, beat: float | None) -> None:
    """Any mix of past and future times: no negative duration anywhere; OK only when every
    time is in the past and the file was rewritten in time."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        config = _write_config(tmp)
        store = MemoryStore()
        if attempt is not None:
            store.set("health/rates", Health(feed="rates", status="fresh", outcome="ok",
                                             last_attempt_at=NOW - timedelta(seconds=attempt),
                                             last_success_at=NOW - timedelta(seconds=attempt)))
        if fetched is not None:
            store.set("good/rates", GoodData({"x": 1}, NOW - timedelta(seconds=fetched), None, "S", "http://x/"))
        if since is not None:
            store.set("trust/rates", {"upstream_stale_since": NOW - timedelta(seconds=since)})
        if written is not None:
            _file(config, written)
        rows = feed_rows(config, store, NOW)
        lock = InstanceLock(tmp / "cache", "run", None, environ={"XDG_RUNTIME_DIR": d}).acquire()
        try:
            if beat is not None:
                lock.beat(NOW - timedelta(seconds=beat))
            else:
                lock.beat(NOW)
            state = instance.daemon_state(tmp / "cache", {"XDG_RUNTIME_DIR": d})
        finally:
            lock.release()
        state = instance.DaemonState(True, command="run", pid=1, heartbeat_at=state.heartbeat_at)
        result = evaluate_check(rows, NOW, published=published_files(config, ["rates"], NOW), daemon=state,
                                require_daemon=True)
        texts: list[Any] = [result.line, format_table(rows, NOW), state.describe(NOW),
                            json.dumps([r.to_json() for r in rows]),
                            json.dumps([p.to_json() for p in published_files(config, ["rates"], NOW)])]
        for text in texts:
            assert not NEGATIVE.search(text), text
        future = [x for x in (attempt, fetched, since, written, beat) if x is not None and x < -2]
        if future:
            assert result.code >= 1, result.line
        if written is None or written > 2 * 900 + 20 or written < -2:
            assert result.code == 2, result.line
