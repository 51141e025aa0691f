"""Issue 10 §2/§3: one process per cache (flock), and status/check that say what they read."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feeds import daemon as daemon_mod
from feeds.cli import main
from feeds.config import load_config
from feeds.daemon import Daemon
from feeds.health import print_status, run_check
from feeds.instance import AlreadyRunning, InstanceLock, daemon_state
from feeds.notify import Notifier
from feeds.store import open_store
from feeds.testing.upstream import Fault, UpstreamSimulator

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


class Fixed:
    def now(self) -> datetime:
        return NOW


def _config(tmp_path: Path, url: str = "http://127.0.0.1:9/x", extra: str = "") -> Path:
    path = tmp_path / "portal-feeds.toml"
    path.write_text(
        '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n[feeds.rates]\nkind = "vietcombank"\n'
        f'url = "{url}"\nevery = "1s"\nmin_interval = "0s"\ntimeout = "1s"\ndeadline = "2s"\n{extra}',
        encoding="utf-8",
    )
    return path


def test_second_run_and_fetch_while_the_daemon_runs_exit_75(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    with InstanceLock(tmp_path / "cache", "run", cfg):
        assert main(["run", "--config", str(cfg)]) == 75
        err = capsys.readouterr().err
        assert f"the daemon (pid {os.getpid()}) is using the cache {tmp_path / 'cache'}" in err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert main(["fetch", "--config", str(cfg)]) == 75
        err = capsys.readouterr().err
        assert "is using the cache" in err and "systemctl reload portal-feeds" in err
    assert not (tmp_path / "snapshots").exists()  # the refused fetch published nothing


def test_a_fetch_holds_the_cache_too(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    with InstanceLock(tmp_path / "cache", "fetch", cfg), pytest.raises(AlreadyRunning, match="another portal-feeds fetch"):
        InstanceLock(tmp_path / "cache", "run", cfg).acquire(patience=0)


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from feeds.instance import InstanceLock;"
        f"InstanceLock(Path({str(tmp_path / 'cache')!r}), 'run', None).acquire(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        state = daemon_state(tmp_path / "cache")
        assert state.running is True and state.pid == proc.pid and state.command == "run"
    finally:
        proc.kill()
        proc.wait()
    assert daemon_state(tmp_path / "cache").running is False
    InstanceLock(tmp_path / "cache", "run", None).acquire(patience=0).release()  # at once


def test_status_and_check_name_the_config_and_the_daemon(tmp_path: Path) -> None:
    cfg_path = _config(tmp_path)
    config = load_config(cfg_path)
    open_store(config.cache_dir).close()
    out = io.StringIO()
    print_status(config, clock=Fixed(), out=out)
    assert out.getvalue().splitlines()[0] == f"config {cfg_path}; daemon not running"
    lock = InstanceLock(config.cache_dir, "run", cfg_path).acquire()
    try:
        lock.beat(NOW - timedelta(seconds=5))
        out = io.StringIO()
        print_status(config, clock=Fixed(), out=out)
        assert out.getvalue().splitlines()[0] == (
            f"config {cfg_path}; daemon running (pid {os.getpid()}, last heartbeat 5s ago)"
        )
        out = io.StringIO()
        print_status(config, as_json=True, clock=Fixed(), out=out)
        doc = json.loads(out.getvalue())
        assert doc["config"] == str(cfg_path)
        assert doc["daemon"]["running"] is True and doc["daemon"]["heartbeat_at"] == "2026-11-24T14:59:55+07:00"  # in the [publish] zone (issue 19)
        out = io.StringIO()
        run_check(config, ["rates"], clock=Fixed(), out=out)
        line = out.getvalue()
        assert line.count("\n") == 1 and " | " in line
        assert f"daemon running (pid {os.getpid()}, last heartbeat 5s ago); config {cfg_path} |" in line
    finally:
        lock.release()
    out = io.StringIO()
    print_status(config, clock=Fixed(), out=out)
    assert out.getvalue().splitlines()[0] == f"config {cfg_path}; daemon not running (last heartbeat 5s ago)"


def test_before_the_first_start_status_is_3_and_check_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    assert main(["status", "--config", str(cfg)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist: the daemon has not run yet" in err
    assert f"config {cfg}" in err and "daemon not running" in err
    # No daemon: CRITICAL (issue 16), and it says why the health cannot be read.
    assert main(["check", "--config", str(cfg)]) == 2
    out = capsys.readouterr().out
    assert out.startswith("PORTAL-FEEDS CRITICAL - daemon down") and out.count("\n") == 1
    assert "cannot read the feed health: " in out
    assert not (tmp_path / "cache").exists()  # reading never creates the cache
    (tmp_path / "cache").mkdir()  # created by systemd (StateDirectory=) before the first start
    assert main(["status", "--config", str(cfg)]) == 3
    assert "holds no feed health yet" in capsys.readouterr().err
    assert main(["check", "--config", str(cfg)]) == 2
    assert list((tmp_path / "cache").iterdir()) == []  # no database created by a reader


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to nobody")
def test_a_user_who_cannot_read_the_cache_gets_3_and_one_line(tmp_path: Path) -> None:
    """``sudo -u nobody portal-feeds status/check``: a sentence, never a traceback."""
    import pwd

    cfg = _config(tmp_path)
    config = load_config(cfg)
    open_store(config.cache_dir).close()
    os.chmod(config.cache_dir, 0o700)
    for p in (tmp_path, cfg):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            err, out = io.StringIO(), io.StringIO()
            with redirect_stderr(err):
                code = print_status(config, clock=Fixed(), out=out)
            out2 = io.StringIO()
            code2 = run_check(config, ["rates"], clock=Fixed(), out=out2)
            os.write(w, json.dumps([code, err.getvalue(), code2, out2.getvalue()]).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    code, err, code2, line = json.loads(b"".join(chunks))
    assert code == 3 and err.count("\n") == 1 and "Traceback" not in err, err
    # The daemon is not running: CRITICAL says so even though the health cannot be read (issue 16).
    assert code2 == 2 and line.startswith("PORTAL-FEEDS CRITICAL - daemon down") and line.count("\n") == 1, line
    assert "cannot read the feed health" in line


def test_real_daemon_excludes_a_second_run_and_a_fetch(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    proc = subprocess.Popen([sys.executable, "-m", "feeds", "run", "--config", str(cfg)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            if daemon_state(tmp_path / "cache").running:
                break
            time.sleep(0.05)
        state = daemon_state(tmp_path / "cache")
        assert state.running and state.pid == proc.pid and state.heartbeat_at is not None
        for cmd in ("run", "fetch"):
            p = subprocess.run([sys.executable, "-m", "feeds", cmd, "--config", str(cfg)], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=60)
            assert p.returncode == 75, (cmd, p.stdout, p.stderr)
            assert f"the daemon (pid {proc.pid}) is using the cache" in p.stderr
        st = subprocess.run([sys.executable, "-m", "feeds", "status", "--config", str(cfg)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
        assert st.stdout.startswith(f"config {cfg}; daemon running (pid {proc.pid}, last heartbeat ")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in out


def test_stop_during_an_attempt_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """SIGTERM while an attempt hangs past the stop grace: no traceback, no job_error recorded."""
    monkeypatch.setattr(daemon_mod, "STOP_GRACE", 0.3)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="feeds")
    logging.getLogger("feeds").addHandler(caplog.handler)  # setup_logging stops propagation
    with UpstreamSimulator() as sim:
        sim.set_faults("vietcombank", [Fault.hang()], repeat_last=True)
        _config(tmp_path, sim.url("vietcombank"))
        base = load_config(tmp_path / "portal-feeds.toml")
        # An attempt that outlives the stop grace (the shipped deadline is 20 s, the grace 5 s).
        feed = replace(base.feeds["rates"], timeout=30.0, deadline=30.0)
        cfg = replace(base, feeds={"rates": feed})
        d = Daemon(tmp_path / "portal-feeds.toml", cfg, notifier=Notifier(None))

        async def scenario() -> int:
            run = asyncio.create_task(d.run())
            for _ in range(400):
                if d.inflight:
                    break
                await asyncio.sleep(0.025)
            assert d.inflight, "no attempt started"
            d.stop_event.set()
            return await asyncio.wait_for(run, 20)

        assert asyncio.run(scenario()) == 0
    logging.getLogger("feeds").removeHandler(caplog.handler)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "attempt interrupted by stop feed=rates" in text
    assert not any(r.exc_info for r in caplog.records), [r.getMessage() for r in caplog.records if r.exc_info]
    assert "job_error" not in text and "Error running job" not in text
    store = open_store(cfg.cache_dir)
    try:
        assert "job_error" not in (store.get("scheduler/rates") or {})
    finally:
        store.close()


def test_metrics_carry_a_last_run_timestamp_and_are_world_readable(tmp_path: Path) -> None:
    """A dead daemon freezes the textfile: time() - last_run catches it; node_exporter can read it."""
    import stat

    from prometheus_client.parser import text_string_to_metric_families

    from feeds.health import FeedRow
    from feeds.metrics import write_metrics

    row = FeedRow("rates", "exchange_rates", "fresh", 60.0, NOW - timedelta(seconds=60), NOW - timedelta(seconds=5),
                  "ok", None, 0, "closed", None, 900, "Vietcombank", False, False, {"ok": 1})
    path = tmp_path / "prom" / "portal_feeds.prom"
    old = os.umask(0o077)  # the unit's UMask
    try:
        write_metrics(path, [row], NOW)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    fams = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    assert fams["portal_feeds_last_run_timestamp_seconds"].samples[0].value == NOW.timestamp()
    sample = fams["portal_feeds_last_attempt_timestamp_seconds"].samples[0]
    assert sample.labels == {"feed": "rates"} and sample.value == (NOW - timedelta(seconds=5)).timestamp()
