"""Issue 19 §1: the Debian package's parts, checked without building; the build itself and
lintian run with PORTAL_FEEDS_DEB=1 (debhelper, python3-venv and lintian installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from feeds import cli
from feeds.config import parse_config

ROOT = Path(__file__).resolve().parent.parent


def test_conffile_has_var_lib_paths_and_passes_the_etc_check(tmp_path: Path) -> None:
    import tomllib

    text = subprocess.run([str(ROOT / "packaging" / "make-conffile"), str(ROOT / "config" / "portal-feeds.toml")],
                          capture_output=True, text=True, check=True).stdout
    from feeds.config import refuse_system_paths

    cfg = parse_config(tomllib.loads(text), Path("/etc/portal-feeds"), Path("/etc/portal-feeds/portal-feeds.toml"))
    refuse_system_paths(cfg)
    assert cfg.cache_dir == Path("/var/lib/portal-feeds/cache")
    assert cfg.snapshot_dir == Path("/var/lib/portal-feeds/snapshots")


def test_debian_uses_the_shipped_systemd_files() -> None:
    for ext in ("service", "sysusers", "tmpfiles"):
        link = ROOT / "debian" / f"portal-feeds.{ext}"
        assert link.resolve() == (ROOT / "systemd" / f"portal-feeds.{ext}").resolve()
    unit = (ROOT / "systemd" / "portal-feeds.service").read_text()
    assert "/opt/portal-feeds/venv/bin/portal-feeds run" in unit  # where debian/rules puts the venv
    assert "VENV := /opt/portal-feeds/venv" in (ROOT / "debian" / "rules").read_text()


def test_manpage_covers_every_command_and_exit_code() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "packaging" / "manpage.py")], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    for command in cli.COMMAND_EXITS:
        assert f".SS portal\\-feeds {command.replace('-', chr(92) + '-')}" in out, command
    for code in cli.EXIT_CODES:
        assert f"\\fB{code}\\fR" in out


def test_license_is_mit_as_pyproject_says() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text() or "MIT" in (
        ROOT / "pyproject.toml").read_text()


@pytest.mark.skipif(os.environ.get("PORTAL_FEEDS_DEB") != "1" or not shutil.which("dpkg-buildpackage")
                    or not shutil.which("lintian"), reason="opt-in: PORTAL_FEEDS_DEB=1 with debhelper and lintian")
def test_build_deb_and_lintian_has_no_errors() -> None:
    p = subprocess.run([str(ROOT / "packaging" / "build-deb")], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    print(p.stdout)
    deb = ROOT / p.stdout.split()[0]
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in ("./etc/portal-feeds/portal-feeds.toml", "./lib/systemd/system/portal-feeds.service",
                 "./usr/lib/sysusers.d/portal-feeds.conf", "./usr/lib/tmpfiles.d/portal-feeds.conf",
                 "./usr/bin/portal-feeds", "./usr/share/portal-feeds/widget/portal-feeds.js",
                 "./usr/share/portal-feeds/demo/index.html", "./usr/share/portal-feeds/nginx/portal-feeds.conf",
                 "./usr/share/man/man1/portal-feeds.1.gz", "./usr/share/doc/portal-feeds/copyright"):
        assert path in listing, path
    conffiles = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True)
    assert conffiles.returncode == 0
    lint = subprocess.run(["lintian", str(deb)], capture_output=True, text=True, timeout=600)
    assert not [ln for ln in lint.stdout.splitlines() if ln.startswith("E:")], lint.stdout
