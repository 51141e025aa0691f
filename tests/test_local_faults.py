"""Issue 9 §5-§7 and issue 10 §2: local faults are local.

A snapshot that cannot be written (a directory in its place, a full or read-only disk) and a
cache that cannot be written are classified ``local``, recorded in health (the feed is
``not_written``, never ``fresh``), make ``check`` CRITICAL at once, are logged once per
transition without a traceback, never stop the other feeds, and heal when the fault goes.
Temporary files of killed writes are removed at start.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feeds.cli import main
from feeds.config import load_config
from feeds.health import evaluate_check, feed_rows, print_status, run_check
from feeds.localfaults import NOT_WRITTEN, remove_stale_temps
from feeds.store import MemoryStore, open_store
from feeds.testing.upstream import UpstreamSimulator
from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_fixture


@pytest.fixture
def sim() -> Iterator[UpstreamSimulator]:
    with UpstreamSimulator() as s:
        yield s


def two_feeds(tmp_path: Path, sim: UpstreamSimulator) -> Path:
    path = tmp_path / "portal-feeds.toml"
    path.write_text(f"""
[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"

[monitoring]
# fetch without a daemon, as from cron (issue 16: check would say the daemon is down)
check_require_daemon = false

[feeds.rates]
kind = "vietcombank"
url = "{sim.url('vietcombank')}"
min_interval = "0s"
timeout = "2s"
deadline = "3s"

[feeds.weather]
kind = "open-meteo"
url = "{sim.url('open-meteo')}"
min_interval = "0s"
timeout = "2s"
deadline = "3s"
locations = [{{ id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 }}]
""", encoding="utf-8")
    return path


def _json(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def test_a_directory_for_a_snapshot_stops_only_that_feed(tmp_path: Path, sim: UpstreamSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = two_feeds(tmp_path, sim)
    (tmp_path / "snapshots" / "weather.json").mkdir(parents=True)
    code = main(["fetch", "--config", str(cfg)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "fresh" in lines["rates"]
    assert "not_written" in lines["weather"] and "(local: publish:is_a_directory)" in lines["weather"]
    assert "weather: the snapshot could not be written: a directory is where the file should be" in err
    assert _json(tmp_path / "snapshots" / "rates.json")["status"] == "fresh"
    # status: a publish error, not fresh; check: CRITICAL at once.
    config = load_config(cfg)
    sink = _Sink()
    assert print_status(config, as_json=True, out=sink) == 1  # type: ignore[arg-type]
    doc = json.loads(sink.text)
    row = {r["feed"]: r for r in doc["feeds"]}["weather"]
    assert (row["status"], row["outcome"], row["detail"]) == (NOT_WRITTEN, "local", "publish:is_a_directory")
    assert any("is_a_directory" in f for f in doc["local_faults"])
    sink = _Sink()
    assert run_check(config, list(config.feeds), out=sink) == 2  # type: ignore[arg-type]
    line = sink.text
    assert line.startswith("PORTAL-FEEDS CRITICAL") and "weather not written (local/publish:is_a_directory)" in line
    # The admin removes the directory: the next run publishes and all is well.
    (tmp_path / "snapshots" / "weather.json").rmdir()
    assert main(["fetch", "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert _json(tmp_path / "snapshots" / "weather.json")["status"] == "fresh"
    assert run_check(config, list(config.feeds), out=_Sink()) == 0  # type: ignore[arg-type]


RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
min_interval = "0s"
"""


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.ENOTDIR])
def test_failed_write_is_reported_at_once_and_healed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, err: int) -> None:
    """Defect 6: health reflects a failed write (good data was stored before it); check is
    CRITICAL at once, not after 3 x every; the next attempt with space back publishes."""
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    coord, clock, store, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    assert asyncio.run(coord.refresh(feed)).status == "fresh"
    before = (tmp_path / "snapshots" / "exchange-rates.json").read_bytes()

    import feeds.publish as publish

    real = publish.write_atomic

    def broken(path: Path, content: bytes, mode: int = 0o644) -> None:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(publish, "write_atomic", broken)
    clock.advance(900)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            r = asyncio.run(coord.refresh(feed))
            assert (r.status, r.outcome) == (NOT_WRITTEN, "local")
            clock.advance(60)
    assert r.detail is not None and r.detail.startswith("publish:")
    assert (tmp_path / "snapshots" / "exchange-rates.json").read_bytes() == before  # old file intact
    errors = [x for x in caplog.records if x.levelno >= logging.ERROR]
    assert len(errors) == 1 and "could not be written" in errors[0].getMessage()  # once per transition
    assert not any(x.exc_info for x in caplog.records)
    rows = feed_rows(cfg, store, clock.now())
    assert rows[0].status == NOT_WRITTEN
    result = evaluate_check(rows, clock.now())
    assert result.code == 2 and "not written" in result.line

    monkeypatch.setattr(publish, "write_atomic", real)
    r = asyncio.run(coord.refresh(feed))
    assert (r.status, r.outcome) == ("fresh", "ok")
    after = evaluate_check(feed_rows(cfg, store, clock.now()), clock.now())
    # (The recorded fixture is years old: the frozen-upstream rule may still WARN.)
    assert after.code < 2 and "not written" not in after.line


def test_warm_start_with_a_broken_snapshot_is_no_crash(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    (tmp_path / "snapshots" / "exchange-rates.json").mkdir(parents=True)
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())), store=MemoryStore())
    r = coord.republish(cfg.feeds["exchange-rates"])
    assert (r.status, r.outcome, r.detail) == (NOT_WRITTEN, "local", "publish:is_a_directory")


def test_cache_fault_is_local_and_snapshots_still_fresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = config_file(tmp_path, RATES)
    cfg.cache_dir.parent.mkdir(parents=True, exist_ok=True)
    cfg.cache_dir.write_text("a file where the cache folder should be")
    store = open_store(cfg.cache_dir)
    coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())), store=store)
    with caplog.at_level(logging.INFO):
        r = asyncio.run(coord.refresh(cfg.feeds["exchange-rates"]))
    assert (r.status, r.outcome, r.detail) == ("fresh", "local", "store:not_a_directory")
    assert _json(tmp_path / "snapshots" / "exchange-rates.json")["status"] == "fresh"
    assert not any(x.exc_info for x in caplog.records)
    store.close()
    # check sees it from outside, without the daemon's memory: it cannot read the health.
    sink = _Sink()
    # (CRITICAL, not UNKNOWN: no daemon runs here, issue 16.)
    assert run_check(load_config(tmp_path / "portal-feeds.toml"), ["exchange-rates"], out=sink) == 2  # type: ignore[arg-type]
    assert "is not a folder" in sink.text


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)


def test_stale_temp_files_removed_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "snapshots"
    folder.mkdir()
    (folder / "weather").mkdir()
    old = [folder / ".rates.json.k2j3h4g5.tmp", folder / ".weather.html.abcd1234.tmp", folder / "weather" / ".hue.json.x1y2z3w4.tmp"]
    new = folder / ".rates.json.zzzz9999.tmp"
    keep = [folder / "rates.json", folder / ".hidden", folder / "x.tmp"]
    for p in [*old, new, *keep]:
        p.write_text("{}")
    ten_min_ago = time.time() - 600
    for p in [*old, *keep]:
        os.utime(p, (ten_min_ago, ten_min_ago))
    assert remove_stale_temps(folder) == 3
    assert not any(p.exists() for p in old)
    assert new.exists() and all(p.exists() for p in keep)
    assert remove_stale_temps(tmp_path / "missing") == 0


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def test_live_lock_holder_is_a_local_fault_not_a_crash(tmp_path: Path) -> None:
    """Issue 10 §2: a process holding the store lock costs an attempt a few ms and a
    ``local (store:busy)`` outcome, never a traceback or a wait."""
    import subprocess
    import sys

    cfg = config_file(tmp_path, RATES)
    store = open_store(cfg.cache_dir)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(cfg.cache_dir / "store.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        coord, _, _, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())), store=store)
        r = asyncio.run(coord.refresh(cfg.feeds["exchange-rates"]))
        assert (r.outcome, r.detail) == ("local", "store:busy")
    finally:
        holder.kill()
        holder.wait()
        store.close()
