"""Never older over newer (issue 16 §2, reproduction 5): a publish never replaces a snapshot
whose ``fetched_at`` is newer than the data it would write (per location for weather).

The road seen live: the cache could not be written for a while (its updates lived in memory),
the daemon restarted, and the warm start republished the cache's older data over the newer
file -- ``fetched_at`` went backwards once.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from feeds.store import GoodData, MemoryStore
from tests.helpers import Upstream, config_file, make_coordinator, ok, vcb_dated, vcb_fixture

RATES = """
[feeds.exchange-rates]
kind = "vietcombank"
url = "https://portal.vietcombank.com.vn/Usercontrols/TVPortal.TyGia/pXML.aspx?b=10"
every = "15m"
max_stale = "48h"
"""

WEATHER = """
[feeds.weather]
kind = "open-meteo"
url = "https://api.open-meteo.com/v1/forecast"
batch_size = 1
per_location_files = true
locations = [
  { id = "hn", name = "Hà Nội", lat = 21.03, lon = 105.85 },
  { id = "hue", name = "Huế", lat = 16.46, lon = 107.59 },
]
"""


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def _read(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc



def test_restart_after_a_cache_write_outage_keeps_the_newer_file(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    path = tmp_path / "snapshots" / "exchange-rates.json"
    up = Upstream(default=ok(vcb_dated("12/21/2022 2:00:00 PM")))
    coord, clock, store, _ = make_coordinator(cfg, up)
    run(coord.refresh(feed))
    old_good: GoodData = store.get("good/exchange-rates")
    # 15 minutes later a newer table is published; the cache never got it on disk.
    clock.advance(900)
    up.default = ok(vcb_dated("12/21/2022 2:15:00 PM"))
    run(coord.refresh(feed))
    newer = validate_snapshot(path)
    assert newer["as_of"] == "2022-12-21T14:15:00+07:00"

    # Restart: the cache holds the older data, the bank is down.
    clock.advance(60)
    restarted = MemoryStore()
    restarted.set("good/exchange-rates", old_good)
    coord2, _, _, _ = make_coordinator(cfg, Upstream(default=ok(b"down", status=503)), clock=clock, store=restarted)
    r = coord2.republish(feed)
    doc = validate_snapshot(path)
    assert doc["fetched_at"] == newer["fetched_at"], "fetched_at went backwards"
    assert doc["as_of"] == newer["as_of"] and doc["data"] == newer["data"]
    assert r.status == "fresh"
    # The newer data is what the store holds now: the next attempts keep it too.
    kept: GoodData = restarted.get("good/exchange-rates")
    assert kept.as_of is not None and kept.as_of.isoformat() == "2022-12-21T14:15:00+07:00"
    clock.advance(900)
    r = run(coord2.refresh(feed))
    assert (r.status, r.outcome) == ("stale", "http_status")
    assert validate_snapshot(path)["fetched_at"] == newer["fetched_at"]


def test_a_file_far_in_the_future_is_not_believed(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, RATES)
    feed = cfg.feeds["exchange-rates"]
    path = tmp_path / "snapshots" / "exchange-rates.json"
    coord, clock, store, _ = make_coordinator(cfg, Upstream(default=ok(vcb_fixture())))
    run(coord.refresh(feed))
    # A file claiming data fetched a week ahead (a forged file, a clock far off then).
    doc = _read(path)
    doc["fetched_at"] = (clock.now() + timedelta(days=7)).isoformat()
    path.write_text(json.dumps(doc), encoding="utf-8")
    clock.advance(900)
    r = run(coord.refresh(feed))
    assert (r.status, r.outcome) == ("fresh", "ok")
    assert _read(path)["fetched_at"] == (clock.now()).astimezone(cfg.publish.tz).replace(microsecond=0).isoformat()


def meteo(lat: float, lon: float, temp: float) -> bytes:
    return json.dumps(
        {
            "latitude": lat,
            "longitude": lon,
            "utc_offset_seconds": 25200,
            "current": {"time": "2026-11-24T15:00", "temperature_2m": temp, "weather_code": 3},
        }
    ).encode()


def test_weather_keeps_each_newer_location(tmp_path: Path, validate_snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = config_file(tmp_path, WEATHER)
    feed = cfg.feeds["weather"]
    answers = {"21.03": meteo(21.0, 105.85, 20.0), "16.46": meteo(16.5, 107.6, 25.0)}

    def handler(request):  # type: ignore[no-untyped-def]
        import httpx

        return httpx.Response(200, content=answers[request.url.params["latitude"]])

    coord, clock, store, _ = make_coordinator(cfg, handler)
    run(coord.refresh(feed))
    old_good: GoodData = store.get("good/weather")
    # 30 minutes later only Hà Nội answers (Huế fails): the file has a newer Hà Nội.
    clock.advance(1800)
    answers["21.03"] = meteo(21.0, 105.85, 21.5)
    answers["16.46"] = b"garbage"
    run(coord.refresh(feed))
    newer = validate_snapshot(tmp_path / "snapshots" / "weather.json")
    hn_new = newer["data"]["locations"][0]
    assert hn_new["current"]["temperature_c"] == 21.5

    # Restart with the cache from before; both upstream calls fail.
    clock.advance(60)
    restarted = MemoryStore()
    restarted.set("good/weather", old_good)
    import httpx

    coord2, _, _, _ = make_coordinator(cfg, lambda r: httpx.Response(503), clock=clock, store=restarted)
    coord2.republish(feed)
    doc = validate_snapshot(tmp_path / "snapshots" / "weather.json")
    by_id = {loc["id"]: loc for loc in doc["data"]["locations"]}
    assert by_id["hn"] == hn_new, "Hà Nội went back to older data"
    assert by_id["hue"] == newer["data"]["locations"][1]
    one = validate_snapshot(tmp_path / "snapshots" / "weather" / "hn.json")
    assert one["fetched_at"] == hn_new["fetched_at"]
    run(coord2.refresh(feed))
    doc = validate_snapshot(tmp_path / "snapshots" / "weather.json")
    assert {loc["id"]: loc["fetched_at"] for loc in doc["data"]["locations"]}["hn"] == hn_new["fetched_at"]
