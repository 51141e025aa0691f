"""Issue 20, item 3: a warm start's fragments after READY=1, never claiming more than their JSON.

Inside ``feeds.portal.fragments_later`` (the daemon's warm start) a republish writes the JSON
and leaves ``<feed>.html`` for ``LaterFragments.write`` only when the fragment on disk claims
what the new one would: the same state and status, the same data times, the same age in
words.  Any other fragment is rendered with its JSON at once, as outside the context.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.clock import FakeClock
from feeds.config import Config
from feeds.coordinator import Coordinator
from feeds.portal import fragments_later
from feeds.render import fragment_claim, fragment_context
from feeds.settings import WidgetConfig
from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_dated

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
timeout = "5s"
deadline = "20s"
min_interval = "0s"
"""

FEED = "exchange-rates"


def _published(tmp_path: Path) -> tuple[Config, Coordinator, FakeClock, Upstream]:
    cfg = config_file(tmp_path, RATES)
    # Quoted 5 minutes before the fake clock's start: fresh, not frozen.
    up = Upstream(default=ok(vcb_dated("11/24/2026 2:55:00 PM"), headers={"Content-Type": "text/xml"}))
    coord, clock, _, _ = make_coordinator(cfg, up)
    assert asyncio.run(coord.refresh(cfg.feeds[FEED])).status == "fresh"
    return cfg, coord, clock, up


def _files(tmp_path: Path) -> tuple[dict[str, Any], bytes]:
    folder = tmp_path / "snapshots"
    return json.loads((folder / f"{FEED}.json").read_text(encoding="utf-8")), (folder / f"{FEED}.html").read_bytes()


def _attr(html: bytes, name: str) -> str | None:
    m = re.search(rb'\s' + name.encode() + rb'="([^"]*)"', html)
    return m.group(1).decode() if m else None


def test_a_fragment_claiming_the_same_waits_and_is_then_what_a_republish_writes(tmp_path: Path) -> None:
    cfg, coord, clock, _ = _published(tmp_path)
    _, html_before = _files(tmp_path)
    clock.advance(60)
    with fragments_later() as later:
        assert coord.republish(cfg.feeds[FEED]).status == "fresh"
    doc, html_gap = _files(tmp_path)
    # In the gap: the new JSON, the old fragment (same state and data times, older generated_at).
    assert html_gap == html_before and len(later) == 1
    assert _attr(html_gap, "data-generated-at") != doc["generated_at"]
    assert _attr(html_gap, "data-pf-state") == "fresh" and _attr(html_gap, "data-fetched-at") == doc["fetched_at"]
    assert later.write() == 0 and len(later) == 0
    _, html_after = _files(tmp_path)
    assert _attr(html_after, "data-generated-at") == doc["generated_at"]
    # Byte for byte what the same republish writes outside the context.
    coord.republish(cfg.feeds[FEED])
    assert _files(tmp_path) == (doc, html_after)


def test_a_missing_fragment_waits(tmp_path: Path) -> None:
    cfg, coord, clock, _ = _published(tmp_path)
    html = tmp_path / "snapshots" / f"{FEED}.html"
    html.unlink()
    with fragments_later() as later:
        coord.republish(cfg.feeds[FEED])
    assert not html.exists() and len(later) == 1
    later.write()
    assert _attr(html.read_bytes(), "data-generated-at") == _files(tmp_path)[0]["generated_at"]


def _expired(tmp_path: Path, clock: FakeClock) -> None:
    clock.advance(3 * 86400)  # past max_stale: the republish says expired


def _older_data(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "snapshots" / f"{FEED}.html"
    html = path.read_bytes()
    fetched = _attr(html, "data-fetched-at")
    assert fetched is not None
    path.write_bytes(html.replace(f'data-fetched-at="{fetched}"'.encode(), b'data-fetched-at="2020-01-01T00:00:00+07:00"'))


def _no_attributes(tmp_path: Path, clock: FakeClock) -> None:
    (tmp_path / "snapshots" / f"{FEED}.html").write_bytes(b'<div class="my-rates">26.081,50</div>\n')


def _other_state(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "snapshots" / f"{FEED}.html"
    path.write_bytes(path.read_bytes().replace(b'data-pf-state="fresh"', b'data-pf-state="overdue"'))


@pytest.mark.parametrize("change", [_expired, _older_data, _no_attributes, _other_state])
def test_a_fragment_claiming_otherwise_is_written_with_its_json(tmp_path: Path, change: Any) -> None:
    cfg, coord, clock, _ = _published(tmp_path)
    change(tmp_path, clock)
    clock.advance(1)
    with fragments_later() as later:
        coord.republish(cfg.feeds[FEED])
        doc, html = _files(tmp_path)
        assert len(later) == 0
        assert _attr(html, "data-generated-at") == doc["generated_at"]
        assert _attr(html, "data-pf-state") == ("expired" if change is _expired else "fresh")


def test_a_stale_fragment_waits_only_while_its_age_in_words_is_the_same(tmp_path: Path) -> None:
    cfg, coord, clock, up = _published(tmp_path)
    up.default = ok(b"", status=503)
    clock.advance(900)
    assert asyncio.run(coord.refresh(cfg.feeds[FEED])).status == "stale"
    _, stale_html = _files(tmp_path)
    assert b'class="pf-ago"' in stale_html
    clock.advance(20)  # still "15 minutes ago"
    with fragments_later() as later:
        coord.republish(cfg.feeds[FEED])
    assert _files(tmp_path)[1] == stale_html and len(later) == 1
    clock.advance(60)  # "16 minutes ago": the old words would make the data younger than it is
    with fragments_later() as later:
        coord.republish(cfg.feeds[FEED])
        doc, html = _files(tmp_path)
    assert len(later) == 0 and html != stale_html and _attr(html, "data-generated-at") == doc["generated_at"]


def test_a_fragment_that_cannot_be_written_later_is_one_error_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg, coord, clock, _ = _published(tmp_path)
    clock.advance(60)
    with fragments_later() as later:
        coord.republish(cfg.feeds[FEED])
    html = tmp_path / "snapshots" / f"{FEED}.html"
    html.unlink()
    html.mkdir()  # the rename onto it fails
    with caplog.at_level(logging.ERROR, logger="feeds.portal"):
        assert later.write() == 1
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1 and lines[0].startswith(f"fragment not written feed={FEED} kind=local detail=publish")
    shutil.rmtree(html)


TIMES = st.one_of(st.none(), st.just(""), st.just("garbage"), st.sampled_from(
    ["2026-11-24T15:00:00+07:00", "2026-11-24T14:40:00+07:00", "2026-11-20T09:00:00+07:00", "2020-07-20T08:30:57+07:00"]
))
ROWS = st.lists(st.one_of(st.fixed_dictionaries({"code": st.sampled_from(["USD", "EUR", "JPY"]), "sell": st.just(1)}),
                          st.just("not a row")), max_size=3)
PLACES = st.lists(st.one_of(st.fixed_dictionaries({"id": st.sampled_from(["hue", "ha-noi"])}), st.just(7)), max_size=3)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["exchange_rates", "weather", "other"]))
    data = draw(st.one_of(st.none(), st.just([]), st.fixed_dictionaries({"rates": ROWS}),
                          st.fixed_dictionaries({"locations": PLACES}), st.just({})))
    return {
        "feed": "f", "kind": kind, "data": data,
        "status": draw(st.sampled_from(["fresh", "stale", "expired", "unavailable", "bogus", None])),
        "generated_at": draw(TIMES), "fetched_at": draw(TIMES), "as_of": draw(TIMES),
        "upstream_stale_since": draw(TIMES),
    }


@settings(max_examples=300, deadline=None, derandomize=True)
@given(documents(), st.sampled_from([(), ("EUR",), ("GBP",)]), st.sampled_from([(), ("hue",), ("hcm",)]))
def test_the_claim_read_without_rows_is_the_contexts(doc: dict[str, Any], currencies: tuple[str, ...],
                                                     locations: tuple[str, ...]) -> None:
    widget = WidgetConfig(currencies=currencies, locations=locations)
    ctx = fragment_context(doc, widget, UTC)
    assert fragment_claim(doc, widget) == (ctx["state"], ctx["status"], ctx["notice"]["ago"] if ctx["notice"] else "")
