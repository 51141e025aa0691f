"""The shipped unit: hardened to exposure <= 2.0 (offline analysis), verifies cleanly, and
keeps the service contract (notify, watchdog, reload, no restart on EX_CONFIG)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "portal-feeds.service"
needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def _settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_service_contract() -> None:
    s = _settings()
    assert s["Type"] == ["notify"]
    assert s["WatchdogSec"] and int(s["WatchdogSec"][0]) > 0
    assert s["RestartPreventExitStatus"] == ["78"]
    assert s["Restart"] == ["on-failure"]
    # A failing ExecStartPre is restarted for ever (RestartPreventExitStatus covers the main
    # process only): the daemon's own exit 78 is the one configuration check at start.
    assert "ExecStartPre" not in s
    # Reload validates first: a bad file fails `systemctl reload`, the old config keeps running.
    assert len(s["ExecReload"]) == 2
    assert s["ExecReload"][0] == s["ExecStart"][0].replace(" run --config ", " check-config --config ")
    assert "-HUP" in s["ExecReload"][1] and "$MAINPID" in s["ExecReload"][1]
    assert "DynamicUser" not in s
    assert s["User"] == ["portal-feeds"]
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert " run --config /etc/portal-feeds/portal-feeds.toml" in s["ExecStart"][0]
    tmpfiles = (UNIT.parent / "portal-feeds.tmpfiles").read_text()
    assert re.search(r"^d /var/lib/portal-feeds/snapshots\s+0750 portal-feeds portal-feeds", tmpfiles, re.M)
    # The folders come from systemd (StateDirectory=): no ReadWritePaths= that a deleted
    # folder turns into a 226/NAMESPACE loop (issue 19; tests/test_folders_heal.py).
    assert "ReadWritePaths" not in s and s["StateDirectory"] == ["portal-feeds"]
    # Sized from bench/bombs.py (a fetch peaks at ~45 MB whatever the upstream sends).
    assert s["MemoryHigh"] == ["128M"] and s["MemoryMax"] == ["192M"]


@needs_systemd
def test_exposure_at_most_2() -> None:
    p = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout + p.stderr)
    assert m, p.stdout + p.stderr
    assert float(m.group(1)) <= 2.0


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "portal-feeds.service"
    # ExecStart must name an existing binary for verify; everything else is the real unit.
    path.write_text(unit_text.replace("/opt/portal-feeds/venv/bin/portal-feeds", "/bin/true"))
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "--generators=no", str(path)],
        capture_output=True, text=True, timeout=60,
    )


@needs_systemd
def test_verify_passes_and_would_catch_a_typo(tmp_path: Path) -> None:
    text = UNIT.read_text()
    p = _verify(text, tmp_path)
    assert p.returncode == 0 and "portal-feeds.service" not in p.stderr, p.stderr
    bad = _verify(text.replace("WatchdogSec=", "WatchdogSecs="), tmp_path)
    assert "Unknown key" in bad.stderr or bad.returncode != 0
