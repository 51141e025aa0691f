"""Integration: the shipped unit under a real systemd booted with systemd-nspawn -b.

Opt-in (it debootstraps a Debian root on first use, a few minutes): run as root with
PORTAL_FEEDS_NSPAWN=1, debootstrap and systemd-container installed.  The root is kept in
$PORTAL_FEEDS_NSPAWN_ROOT (default /var/tmp/portal-feeds-nspawn) between runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from feeds.testing.upstream import UpstreamSimulator

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
    with UpstreamSimulator() as sim:
        subprocess.run([str(SCRIPT), root, str(sim.port), str(tmp_path)], check=True, timeout=900)
        assert sim.request_count("vietcombank") >= 2
    show = _props(tmp_path / "probe-show.txt")
    assert show["ActiveState"] == "active" and show["SubState"] == "running"
    assert show["User"] == "portal-feeds" and show["NRestarts"] == "0"
    assert show["StatusText"] == "2 feeds: 2 fresh"
    ls = (tmp_path / "probe-ls.txt").read_text().splitlines()
    assert ls[0] == "2750 portal-feeds www-data /var/lib/portal-feeds/snapshots"
    assert all(line.startswith("644 portal-feeds www-data ") for line in ls[1:]) and len(ls) == 3
    journal = (tmp_path / "probe-journal.txt").read_text()
    assert "feeds.daemon: reloaded feeds=2" in journal
    assert "Traceback" not in journal
    assert _props(tmp_path / "probe-after-reload.txt")["ActiveState"] == "active"
    stop = _props(tmp_path / "probe-stop.txt")
    assert (stop["ActiveState"], stop["Result"]) == ("inactive", "success")
