"""Integration: the shipped unit under a real systemd booted with systemd-nspawn -b.

Opt-in (it debootstraps a Debian root on first use, a few minutes): run as root with
PORTAL_FEEDS_NSPAWN=1, debootstrap and systemd-container installed.  The root is kept in
$PORTAL_FEEDS_NSPAWN_ROOT (default /var/tmp/portal-feeds-nspawn) between runs.

It proves what the unit promises (issue 10 §5), step by step inside one boot
(tests/integration_nspawn.sh): the watchdog pings keep a 5 s WatchdogSec happy; a good
reload applies and a broken one fails ``systemctl reload`` while the old configuration keeps
running; SIGKILL is restarted with the snapshots intact; SIGSTOP is killed by the watchdog
and restarted; a stop during an in-flight attempt is ``Result=success`` without a
traceback; a broken configuration leaves the unit ``failed`` (exit 78), never restarting.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from feeds.testing.upstream import Fault, UpstreamSimulator

pytestmark = pytest.mark.skipif(
    os.environ.get("PORTAL_FEEDS_NSPAWN") != "1"
    or os.geteuid() != 0
    or not shutil.which("systemd-nspawn")
    or not shutil.which("debootstrap"),
    reason="opt-in: PORTAL_FEEDS_NSPAWN=1 as root with systemd-container and debootstrap",
)

SCRIPT = Path(__file__).parent / "integration_nspawn.sh"


def _props(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_unit_under_real_systemd(tmp_path: Path) -> None:
    root = os.environ.get("PORTAL_FEEDS_NSPAWN_ROOT", "/var/tmp/portal-feeds-nspawn")
    t0 = time.monotonic()
    with UpstreamSimulator() as sim, UpstreamSimulator() as hanging:
        hanging.set_faults("vietcombank", [Fault.hang()], repeat_last=True)
        subprocess.run([str(SCRIPT), root, str(sim.port), str(hanging.port), str(tmp_path)], check=True, timeout=900)
        assert sim.request_count("vietcombank") >= 2
    print(f"nspawn integration: {time.monotonic() - t0:.1f} s")
    journal = (tmp_path / "probe-journal.txt").read_text()
    assert "Traceback" not in journal, journal

    # Boot: the watchdog pings keep the unit alive through several 5 s windows.
    boot = _props(tmp_path / "probe-boot.txt")
    assert (boot["ActiveState"], boot["SubState"], boot["User"]) == ("active", "running", "portal-feeds")
    assert boot["NRestarts"] == "0", boot
    assert boot["StatusText"] == "2 feeds: 2 fresh"
    ls = (tmp_path / "probe-ls.txt").read_text().splitlines()
    assert ls[0] == "750 portal-feeds portal-feeds /var/lib/portal-feeds/snapshots"
    assert all(line.startswith("644 portal-feeds portal-feeds ") for line in ls[1:])
    # The two snapshots, and the rates history for the widget (issue 21).
    assert sorted(line.rsplit("/", 1)[1] for line in ls[1:]) == [
        "exchange-rates.history.json", "exchange-rates.json", "weather.json"]

    # Reload: a good file applies; a broken one fails the reload, the same process keeps running.
    assert (tmp_path / "probe-reload-rc.txt").read_text().strip() == "rc=0"
    assert "feeds.daemon: reloaded feeds=2" in journal
    assert (tmp_path / "probe-badreload-rc.txt").read_text().strip() != "rc=0"
    bad = _props(tmp_path / "probe-badreload.txt")
    assert (bad["ActiveState"], bad["MainPID"], bad["NRestarts"]) == ("active", boot["MainPID"], "0")
    assert "configuration error: feeds.broken.every" in journal

    # SIGKILL: restarted, the snapshots still there and whole.
    killed = _props(tmp_path / "probe-sigkill.txt")
    assert (killed["ActiveState"], killed["NRestarts"]) == ("active", "1") and killed["MainPID"] != boot["MainPID"]
    assert json.loads((tmp_path / "probe-before-kill.json").read_text())["status"] == "fresh"
    assert json.loads((tmp_path / "probe-after-kill.json").read_text())["status"] == "fresh"

    # SIGSTOP: the watchdog kills the stopped daemon and systemd restarts it.
    stopped = _props(tmp_path / "probe-sigstop.txt")
    assert (stopped["ActiveState"], stopped["NRestarts"]) == ("active", "2"), stopped
    assert stopped["MainPID"] != killed["MainPID"]
    assert "Watchdog timeout" in journal

    # Stop while an attempt hangs: a clean stop.
    stop = _props(tmp_path / "probe-stop.txt")
    assert (stop["ActiveState"], stop["Result"]) == ("inactive", "success"), stop
    assert "attempt interrupted by stop feed=slow-rates" in journal
    assert "job_error" not in journal

    # A broken configuration: exit 78 once, failed, no restart loop.
    assert (tmp_path / "probe-badstart-rc.txt").read_text().strip() != "rc=0"
    failed = _props(tmp_path / "probe-badstart.txt")
    assert (failed["ActiveState"], failed["Result"], failed["ExecMainStatus"]) == ("failed", "exit-code", "78"), failed
    assert failed["NRestarts"] == "0", failed
    assert "Scheduled restart job" not in journal.split("feeds.broken.every")[-1]
