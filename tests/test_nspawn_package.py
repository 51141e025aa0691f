"""Integration: the .deb under a real systemd (systemd-nspawn -b, Debian 12), issue 19.

Opt-in like tests/test_nspawn.py: PORTAL_FEEDS_NSPAWN=1, root, systemd-container,
debootstrap, debhelper and python3-venv.  Builds two revisions with packaging/build-deb,
boots a fresh copy of a kept Debian root ($PORTAL_FEEDS_DEB_ROOT, default
/var/tmp/portal-feeds-deb-base) and proves: installed with apt, `check-config` as the
service user passes before and after the first start; nginx (www-data) serves snapshots,
fragments and per-location files with 200; deleted folders heal (while running, and by a
restart); an upgrade keeps the edited conffile and the data and restarts; remove stops and
keeps the data; purge leaves nothing; a plain install enables and starts the service.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from feeds.testing.upstream import UpstreamSimulator

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.environ.get("PORTAL_FEEDS_NSPAWN") != "1"
    or os.geteuid() != 0
    or not shutil.which("systemd-nspawn")
    or not shutil.which("debootstrap")
    or not shutil.which("dpkg-buildpackage"),
    reason="opt-in: PORTAL_FEEDS_NSPAWN=1 as root with systemd-container, debootstrap and debhelper",
)


def _props(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _build(revision: int) -> Path:
    p = subprocess.run([str(ROOT / "packaging" / "build-deb"), "--revision", str(revision)], capture_output=True,
                       text=True, timeout=900, cwd=ROOT, check=True)
    print(p.stdout.strip())
    return ROOT / p.stdout.split()[0]


def _codes(path: Path) -> dict[str, str]:
    return {u: c for c, u in (line.split() for line in path.read_text().splitlines())}


def test_package_under_real_systemd(tmp_path: Path) -> None:
    t0 = time.monotonic()
    deb1, deb2 = _build(1), _build(2)
    base = os.environ.get("PORTAL_FEEDS_DEB_ROOT", "/var/tmp/portal-feeds-deb-base")
    with UpstreamSimulator() as sim:
        subprocess.run([str(ROOT / "tests" / "integration_deb_nspawn.sh"), base, str(deb1), str(deb2),
                        str(sim.port), str(_free_port()), str(tmp_path)], check=True, timeout=1200)
    print(f"package integration: {time.monotonic() - t0:.1f} s")
    out = tmp_path
    journal = (out / "probe-journal.txt").read_text()
    assert "Traceback" not in journal, journal

    assert (out / "probe-install1.txt").read_text().strip() == "rc=0", (out / "probe-install1.log").read_text()
    before = (out / "probe-check-before.txt").read_text()
    assert before.rstrip().endswith("rc=0"), before
    ls = (out / "probe-ls-install.txt").read_text().splitlines()
    assert ls == ["750 portal-feeds portal-feeds /var/lib/portal-feeds",
                  "700 portal-feeds portal-feeds /var/lib/portal-feeds/cache",
                  "750 portal-feeds portal-feeds /var/lib/portal-feeds/snapshots"], ls

    started = _props(out / "probe-started.txt")
    assert (started["ActiveState"], started["SubState"]) == ("active", "running"), started
    assert started["StatusText"] == "2 feeds: 2 fresh", started
    assert started["UnitFileState"] == "enabled"
    assert (out / "probe-check-after.txt").read_text().rstrip().endswith("rc=0")
    assert (out / "probe-reload.txt").read_text().strip() == "rc=0"
    assert (out / "probe-cli.txt").read_text().startswith("portal-feeds ")
    assert set(_codes(out / "probe-http1.txt").values()) == {"200"}, (out / "probe-http1.txt").read_text()

    # Folders heal: deleted while running, and deleted with the cache before a restart.
    assert set(_codes(out / "probe-http-rm-running.txt").values()) == {"200"}, (out / "probe-http-rm-running.txt").read_text()
    assert _props(out / "probe-rm-running.txt")["NRestarts"] == "0"
    healed = _props(out / "probe-rm-restart.txt")
    assert (healed["ActiveState"], healed["StatusText"]) == ("active", "2 feeds: 2 fresh"), healed
    assert set(_codes(out / "probe-http-rm-restart.txt").values()) == {"200"}
    after = (out / "probe-ls-after.txt").read_text().splitlines()
    assert [line.split()[0] for line in after] == ["750", "750", "644"], after

    # Upgrade: conffile and data kept, restarted.
    assert (out / "probe-install2.txt").read_text().strip() == "rc=0", (out / "probe-install2.log").read_text()
    assert (out / "probe-version.txt").read_text().strip().endswith("-2")
    assert (out / "probe-conf-before.txt").read_text() == (out / "probe-conf-after.txt").read_text()
    upgraded = _props(out / "probe-upgraded.txt")
    assert upgraded["ActiveState"] == "active" and upgraded["MainPID"] != healed["MainPID"], upgraded
    assert set(_codes(out / "probe-http-upgraded.txt").values()) == {"200"}

    # Remove keeps data; purge leaves nothing; a plain install starts it.
    assert (out / "probe-remove-active.txt").read_text().strip() in ("inactive", "unknown")
    assert "exchange-rates.json" in (out / "probe-remove-data.txt").read_text()
    assert (out / "probe-remove-user.txt").read_text().startswith("portal-feeds:")
    assert (out / "probe-purge.txt").read_text().strip() == "rc=0", (out / "probe-purge.log").read_text()
    assert (out / "probe-purge-left.txt").read_text() == ""
    fresh = _props(out / "probe-fresh-install.txt")
    assert (fresh["ActiveState"], fresh["UnitFileState"]) == ("active", "enabled"), fresh
