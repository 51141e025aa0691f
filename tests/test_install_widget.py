"""Issue 19 §4: ``portal-feeds install-widget DIR`` copies the widget files and demo pages out
of the installed package (pip installs have no source tree) and prints the two lines to paste."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from feeds import cli

ROOT = Path(__file__).resolve().parent.parent


def test_packaged_demo_pages_are_the_sources() -> None:
    src = sorted(p.name for p in (ROOT / "widget" / "demo").iterdir())
    packaged = ROOT / "feeds" / "data" / "widget-demo"
    assert sorted(p.name for p in packaged.iterdir()) == src
    for name in src:
        assert (packaged / name).read_bytes() == (ROOT / "widget" / "demo" / name).read_bytes(), name


def test_install_widget_copies_and_prints_two_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = os.umask(0o077)
    try:
        assert cli.main(["install-widget", str(tmp_path / "www")]) == 0
    finally:
        os.umask(old)
    www = tmp_path / "www"
    for name in ("portal-feeds.js", "portal-feeds.css"):
        assert (www / "widget" / name).read_bytes() == (ROOT / "feeds" / "widget" / name).read_bytes()
    for name in ("index.html", "all.html", "place.html", "ssi.html", "demo.css", "favicon.svg"):
        assert (www / "demo" / name).read_bytes() == (ROOT / "widget" / "demo" / name).read_bytes()
    # A web server reads what was copied, whatever the umask.
    for p in [www / "widget", www / "demo", *www.rglob("*.*")]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o004, p
    out = capsys.readouterr().out.splitlines()
    paste = [ln for ln in out if ln.startswith("<")]
    assert paste == ['<link rel="stylesheet" href="/widget/portal-feeds.css">',
                     '<script src="/widget/portal-feeds.js" defer></script>']


def test_install_widget_url_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["install-widget", str(tmp_path), "--url", "/static/pf/"]) == 0
    assert '<script src="/static/pf/portal-feeds.js" defer></script>' in capsys.readouterr().out


def test_install_widget_into_a_file_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert cli.main(["install-widget", str(tmp_path / "f")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("portal-feeds: cannot install the widget") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
