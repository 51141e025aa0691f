"""The JS widget's files as shipped: size, no HTML injection sinks, no external requests, the
top-level widget/ is the package's, and both are in a normal (non-editable) install."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
JS = REPO / "feeds" / "widget" / "portal-feeds.js"
CSS = REPO / "feeds" / "widget" / "portal-feeds.css"


def test_widget_is_small() -> None:
    """Issue 17's budget for the script as served: 16 KB, 6 KB gzipped (nginx gzip_comp_level 6)."""
    raw = JS.read_bytes()
    assert len(raw) <= 16_000, len(raw)
    assert len(gzip.compress(raw, 6)) <= 6_000


def test_widget_is_ascii_and_the_build_of_its_source() -> None:
    """Any page encoding: the served script is ASCII (\\u escapes); it is widget/build.py's output."""
    raw = JS.read_bytes()
    assert all(b < 128 for b in raw)
    p = subprocess.run([sys.executable, str(REPO / "widget" / "build.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_both_forms_share_one_table_of_words() -> None:
    from feeds.portal import RATE_COLUMNS, WEATHER_COLUMNS
    from feeds.render import TEXTS, _js_table

    cols = _js_table("pf-columns")
    assert cols == {"exchange_rates": RATE_COLUMNS, "weather": WEATHER_COLUMNS}
    assert TEXTS["title_exchange_rates"] == "Tỷ giá ngoại tệ" and TEXTS["badge_frozen"] == "Nguồn chưa cập nhật"


def test_fragment_is_ascii() -> None:
    """A fragment reads the same on a UTF-8, windows-1258 or ISO-8859-1 page: ASCII, references."""
    from feeds.portal import PublishConfig, WidgetConfig
    from feeds.render import render_fragment
    from tests.test_render import rates_snapshot, weather_snapshot

    for doc in (rates_snapshot(), weather_snapshot(), rates_snapshot("stale"), rates_snapshot("unavailable")):
        html = render_fragment(doc, WidgetConfig(), PublishConfig())
        assert html.isascii()
        assert "Ngu&#7891;n" in html or "T&#7841;m" in html  # "Nguồn", "Tạm thời" as references


def test_widget_never_parses_data_as_html_nor_loads_code() -> None:
    js = JS.read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute(\"on", "import(", ".style"):
        assert sink not in js, sink
    # The only URL is the SVG namespace: no external request, no CDN.
    assert re.findall(r"https?://[^\"' ]+", js) == ["http://www.w3.org/2000/svg"]
    assert "@import" not in CSS.read_text(encoding="utf-8") and "url(" not in CSS.read_text(encoding="utf-8")


def test_css_is_themable_with_custom_properties() -> None:
    css = CSS.read_text(encoding="utf-8")
    used = set(re.findall(r"var\((--pf-[a-z-]+)", css))
    assert {"--pf-accent", "--pf-color", "--pf-bg", "--pf-font", "--pf-border", "--pf-muted"} <= used
    documented = (REPO / "docs" / "widgets.md").read_text(encoding="utf-8")
    assert all(name in documented for name in used), used - {n for n in used if n in documented}


def test_top_level_widget_folder_is_the_packaged_one() -> None:
    for name in ("portal-feeds.js", "portal-feeds.css"):
        assert (REPO / "widget" / name).read_bytes() == files("feeds").joinpath(f"widget/{name}").read_bytes()


@pytest.mark.skipif(not (REPO / "pyproject.toml").exists(), reason="needs the source tree")
def test_wheel_ships_widget_and_templates(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    (wheel,) = tmp_path.glob("portal_feeds-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("feeds/widget/portal-feeds.js", "feeds/widget/portal-feeds.css",
                   "feeds/templates/exchange_rates.html.j2", "feeds/templates/weather.html.j2",
                   "feeds/templates/_common.html.j2", "feeds/data/vn-provinces-2025.csv"):
        assert needed in names, needed
