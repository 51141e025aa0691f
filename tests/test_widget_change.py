"""Issue 21 in the browser: after two days of tables, "▲ 20" beside USD's selling rate with its
spoken text ("tăng 20 đồng"), in the JS widget, the SSI fragment and the adopted fragment, a
sparkline from <feed>.history.json with ``data-history``, ``data-change="off"`` hides it; axe clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feeds.clock import FakeClock
from feeds.config import load_config
from feeds.render import TEXTS
from feeds.testing.upstream import UpstreamSimulator
from tests.helpers import vcb_moved
from tests.test_widget_browser import AXE, _tools
from tests.test_widget_browser import browser as browser  # the same Chromium, one per module
from tests.test_widget_states import LAYOUT, PAGE, _box, _open
from tests.webserver import Nginx

CONFIG = """
[paths]
cache_dir = "cache"
snapshot_dir = "feeds"

[feeds.exchange-rates]
kind = "vietcombank"
url = "{vcb}"
min_interval = "0s"
timeout = "2s"
deadline = "4s"

[feeds.exchange-rates.widget]
currencies = "USD,EUR"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from feeds.app import open_runtime

    _tools()
    root = tmp_path_factory.mktemp("change")
    folder = root / "change"
    (folder / "feeds").mkdir(parents=True)
    with UpstreamSimulator() as sim:
        (folder / "portal-feeds.toml").write_text(CONFIG.format(vcb=sim.url("vietcombank")), encoding="utf-8")
        cfg = load_config(folder / "portal-feeds.toml")
        now = datetime.now(UTC).replace(microsecond=0)
        clock = FakeClock(now - timedelta(days=1))
        sim.now = lambda: clock.now().timestamp()

        async def go() -> None:
            async with open_runtime(cfg, clock=clock) as rt:
                await rt.coordinator.refresh(cfg.feeds["exchange-rates"])
                clock.advance(86400)
                sim.set_rewrite("vietcombank", lambda body: vcb_moved(body, 20))
                await rt.coordinator.refresh(cfg.feeds["exchange-rates"])

        asyncio.run(go())
    pages = root / "pages"
    pages.mkdir()
    (pages / "layout.css").write_text(LAYOUT, encoding="ascii")
    for mode in ("js", "ssi", "ssijs"):
        box = _box("exchange-rates", mode)
        if mode == "js":
            box = box.replace("<div data-portal-feeds", '<div data-history="30" data-portal-feeds')
            box += _box("exchange-rates", mode).replace("<div data-portal-feeds", '<div class="off" data-change="off" data-portal-feeds')
        script = "" if mode == "ssi" else '<script src="/widget/portal-feeds.js" defer></script>'
        cols = f'<div class="col w260" data-width="260">{box}</div>'
        (pages / f"{mode}-utf8.html").write_text(PAGE.format(charset="utf-8", title=mode, script=script, columns=cols), encoding="utf-8")
    yield root


@pytest.fixture(scope="module")
def web(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    nginx, _ = _tools()
    with Nginx(site, tmp_path_factory.mktemp("nginx-change"), nginx) as server:
        yield server


@pytest.mark.parametrize("mode", ["js", "ssi", "ssijs"])
def test_the_days_change_is_shown_and_spoken(mode: str, site: Path, web: Nginx, browser: Any) -> None:
    ctx, page, errors = _open(browser, web, "change", mode, "utf8", js=True)  # the SSI page has no script
    try:
        if mode == "js":
            page.wait_for_selector(".pf-spark", timeout=10_000)
        usd = page.locator(".col > div").first.locator("tbody tr:has(.pf-code:text-is('USD')) td").last
        assert usd.locator(".pf-change [aria-hidden=true]").inner_text() == "▲ 20"
        assert usd.locator(".pf-sr").text_content() == f"{TEXTS['up']} 20 {TEXTS['dong']}"
        assert "pf-up" in (usd.locator(".pf-change").get_attribute("class") or "")
        if mode == "js":
            points = page.locator(".col > div").first.locator("tbody tr:has(.pf-code:text-is('USD')) .pf-spark polyline").get_attribute("points")
            assert points is not None and len(points.split()) == 2
            assert page.locator(".off .pf-change").count() == 0  # data-change="off"
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        found = page.evaluate("async () => (await axe.run(document)).violations.map(v => ({id: v.id, impact: v.impact}))")
        assert [v for v in found if v["impact"] in ("serious", "critical")] == []
        assert errors == []
    finally:
        ctx.close()
