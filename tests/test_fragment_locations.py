"""A weather fragment renders what it shows, not the whole feed (issue 20): the configured
``[widget] locations`` however many, else the feed's first ``FRAGMENT_LOCATIONS``."""

from __future__ import annotations

from typing import Any

from feeds.portal import PublishConfig, WidgetConfig
from feeds.render import FRAGMENT_LOCATIONS, fragment_context, render_fragment


def weather(n: int) -> dict[str, Any]:
    at = "2026-12-06T16:00:00+07:00"
    return {
        "schema_version": 1, "feed": "weather", "kind": "weather", "status": "fresh",
        "generated_at": at, "fetched_at": at, "as_of": at, "stale_since": None, "upstream_stale_since": None,
        "next_update_at": "2026-12-06T16:30:00+07:00", "expires_at": "2026-12-07T16:00:00+07:00",
        "source": {"name": "Open-Meteo", "url": "https://open-meteo.com/"},
        "data": {"locations": [
            {"id": f"loc-{i}", "name": f"Place {i}", "lat": 10.0, "lon": 106.0, "fetched_at": at,
             "current": {"time": at, "temperature_c": 20.5, "humidity_pct": 80, "weather_code": 1,
                         "condition": "mainly_clear", "condition_vi": "Ít mây"},
             "daily": []}
            for i in range(n)
        ]},
        "widget": None,
    }


def test_without_configured_locations_the_first_ones_are_shown() -> None:
    doc = weather(FRAGMENT_LOCATIONS + 36)
    ctx = fragment_context(doc, WidgetConfig(), PublishConfig().tz)
    assert [x["id"] for x in ctx["locations"]] == [f"loc-{i}" for i in range(FRAGMENT_LOCATIONS)]
    html = render_fragment(doc, WidgetConfig(), PublishConfig())
    assert f"Place {FRAGMENT_LOCATIONS - 1}<" in html and f"Place {FRAGMENT_LOCATIONS}<" not in html
    assert FRAGMENT_LOCATIONS >= 63  # every province of Vietnam fits


def test_configured_locations_are_all_shown_in_their_order() -> None:
    doc = weather(200)
    ids = tuple(f"loc-{i}" for i in range(199, 99, -1))  # 100 of them, past the first 64, reversed
    ctx = fragment_context(doc, WidgetConfig(locations=ids), PublishConfig().tz)
    assert tuple(x["id"] for x in ctx["locations"]) == ids


def test_a_small_feed_shows_every_location() -> None:
    ctx = fragment_context(weather(34), WidgetConfig(), PublishConfig().tz)
    assert len(ctx["locations"]) == 34
