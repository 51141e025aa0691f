"""The daemon as a real subprocess: warm start, READY/STATUS/WATCHDOG/STOPPING over a notify
socket the test owns, schedules firing, SIGHUP reload (a bad one refused), SIGTERM in time,
metrics textfile."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feeds.publish import build_snapshot, write_snapshot  # noqa: F401  (schema helpers)

CONFIG = """
[paths]
cache_dir = "cache"
snapshot_dir = "snapshots"

[monitoring]
metrics_file = "metrics/portal_feeds.prom"

[feeds.rates]
kind = "vietcombank"
url = "{rates_url}"
every = "1s"
min_interval = "0s"
timeout = "1s"
deadline = "2s"
max_stale = "1h"
"""


class Notify:
    """A datagram socket standing in for systemd's notify socket.

    A thread drains it all the time: the kernel queues only a few datagrams per socket
    (net.unix.max_dgram_qlen, 10 by default) and the daemon drops what does not fit, so a test
    busy elsewhere (running ``status``/``check`` on a loaded machine) must not miss STOPPING=1.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while not self._closing.is_set():
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            for line in data.decode("utf-8").splitlines():
                self.messages.append((time.monotonic(), line))

    def read_until(self, pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while not any(pred(m) for _, m in list(self.messages)) and time.monotonic() < end:
            time.sleep(0.02)
        return any(pred(m) for _, m in list(self.messages))

    def wait_for(self, cond, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
        """Wait until ``cond(messages)`` holds (an event, not a timed window)."""
        end = time.monotonic() + timeout
        while not cond(list(self.messages)) and time.monotonic() < end:
            time.sleep(0.02)
        return bool(cond(list(self.messages)))

    def close(self) -> None:
        self._closing.set()
        self._reader.join(5)
        self.sock.close()


def wait_for_file(path: Path, *needles: str, timeout: float = 30) -> str:
    """The file's text once it holds every needle (polled; the daemon writes it when it will)."""
    end = time.monotonic() + timeout
    text = ""
    while time.monotonic() < end:
        text = path.read_text() if path.exists() else ""
        if all(n in text for n in needles):
            break
        time.sleep(0.05)
    return text


@pytest.fixture
def daemon_env(tmp_path: Path) -> Iterator[tuple[Path, Notify]]:
    n = Notify(tmp_path / "notify.sock")
    yield tmp_path, n
    n.close()


def start(tmp_path: Path, notify: Notify, rates_url: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    cfg = tmp_path / "portal-feeds.toml"
    cfg.write_text(CONFIG.format(rates_url=rates_url), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")}
    env.update({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}, **(extra_env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "feeds", "run", "--config", str(cfg)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, str]:
    proc.send_signal(sig)
    t0 = time.monotonic()
    out, _ = proc.communicate(timeout=timeout)
    assert time.monotonic() - t0 < 10
    return proc.returncode, out


def test_notify_protocol_schedule_and_sigterm(daemon_env: tuple[Path, Notify]) -> None:
    tmp_path, notify = daemon_env
    proc = start(tmp_path, notify, "http://127.0.0.1:9/pXML.aspx")  # port 9: refused
    try:
        # Every wait below is for an event (a message, a line in a file) with a generous
        # bound, never a timed window: a loaded machine makes it slower, not wrong.
        assert notify.read_until(lambda m: m == "READY=1", 30), notify.messages
        # Warm start published before READY, even with a cold cache and a dead upstream.
        snap = json.loads((tmp_path / "snapshots" / "rates.json").read_text(encoding="utf-8"))
        assert snap["status"] == "unavailable"
        assert notify.read_until(lambda m: m.startswith("STATUS=1 feeds:"), 30), notify.messages
        # Watchdog pings (at half of WATCHDOG_USEC) keep coming after READY: two more.
        seen = sum(1 for _, m in notify.messages if m == "WATCHDOG=1")
        assert notify.wait_for(lambda ms: sum(1 for _, m in ms if m == "WATCHDOG=1") >= seen + 2), notify.messages
        # The 1 s schedule fired attempts (health in the cache).
        assert notify.read_until(lambda m: "rates: connect" in m, 30), notify.messages
        metrics = wait_for_file(
            tmp_path / "metrics" / "portal_feeds.prom",
            'portal_feeds_up{feed="rates"} 0.0', 'portal_feeds_attempts_total{feed="rates",outcome="connect"}',
        )
        assert 'portal_feeds_up{feed="rates"} 0.0' in metrics
        assert 'portal_feeds_attempts_total{feed="rates",outcome="connect"}' in metrics
        # status and check read the cache the running daemon writes (another process).
        cfg = str(tmp_path / "portal-feeds.toml")
        st = subprocess.run([sys.executable, "-m", "feeds", "status", "--json", "--config", cfg],
                            capture_output=True, text=True, timeout=30)
        row = json.loads(st.stdout)["feeds"][0]
        assert st.returncode == 1
        assert (row["feed"], row["status"], row["outcome"]) == ("rates", "unavailable", "connect")
        assert row["consecutive_failures"] >= 1 and row["attempts"]["connect"] >= 1
        ck = subprocess.run([sys.executable, "-m", "feeds", "check", "--config", cfg],
                            capture_output=True, text=True, timeout=30)
        assert ck.returncode == 2
        # CRITICAL for the feed either way; which reason comes first depends on how late the
        # loaded machine ran the 1 s schedule (the check's liveness rule: "not attempted for").
        assert ck.stdout.startswith("PORTAL-FEEDS CRITICAL - 0/1 feeds fresh; rates "), ck.stdout
        assert "rates unavailable" in ck.stdout or "rates not attempted for" in ck.stdout, ck.stdout
    finally:
        code, out = stop(proc)
    assert code == 0, out
    assert notify.read_until(lambda m: m == "STOPPING=1", 5)
    assert "Traceback" not in out
    assert "attempt feed=rates kind=connect detail=refused" in out


def test_sighup_reload_and_bad_reload_refused(daemon_env: tuple[Path, Notify]) -> None:
    tmp_path, notify = daemon_env
    proc = start(tmp_path, notify, "http://127.0.0.1:9/pXML.aspx")
    try:
        assert notify.read_until(lambda m: m == "READY=1", 15)
        cfg = tmp_path / "portal-feeds.toml"
        good = cfg.read_text()
        cfg.write_text(good + '\n[feeds.more]\nkind = "vietcombank"\nurl = "http://127.0.0.1:9/x"\nevery = "1s"\nmin_interval = "0s"\ntimeout = "1s"\ndeadline = "1s"\n')
        proc.send_signal(signal.SIGHUP)
        assert notify.read_until(lambda m: m.startswith("STATUS=2 feeds"), 10), notify.messages
        assert (tmp_path / "snapshots").exists()
        cfg.write_text(good.replace('every = "1s"', 'every = "soon"'))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None  # still running on the old configuration
        assert notify.read_until(lambda m: m.startswith("RELOADING=1"), 2)
    finally:
        code, out = stop(proc, signal.SIGINT)
    assert code == 0
    assert "reload refused, keeping the running configuration: feeds.rates.every" in out
    assert json.loads((tmp_path / "snapshots" / "more.json").read_text())["feed"] == "more"


def test_config_error_exits_78(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[feeds.x]\nkind = "nope"\n')
    p = subprocess.run([sys.executable, "-m", "feeds", "run", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 78
    assert "feeds.x.kind" in p.stderr and "Traceback" not in p.stderr
